"""The ledger: every unit movement, appended as array chunks, one tidy DataFrame at the end.

Columns: ``day, kind, location, counterparty, sku, channel, promoted, qty, value, cost, lines``.
``value`` is the goods' worth (revenue at the selling price for sales and lost sales, purchase
cost for stock moves, the vendor funding for FUNDING); ``cost`` is what the movement cost the
business (cost of goods for a sale, transport for a dispatch, the premium for an expedite
receipt, lost margin + goodwill for a lost sale).

Detail ``sku`` keeps one line per location x SKU; ``summary`` sums over SKUs per location
(split by promoted or not; ``lines`` counts the SKU lines summed) for networks too large to
keep every line. KPIs come out the same either way.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

Detail = Literal["sku", "summary"]
CHANNELS = ("walk_in", "pickup", "ecommerce")
NO_CHANNEL = -1
COLUMNS = (
    "day",
    "kind",
    "location",
    "counterparty",
    "sku",
    "channel",
    "promoted",
    "qty",
    "value",
    "cost",
    "lines",
)


class Kind(IntEnum):
    INITIAL = 0  # opening stock
    SUPPLIER_RECEIPT = 1  # units delivered by a supplier into a DC
    EXPEDITE_RECEIPT = 2  # same, expedited
    DISPATCH = 3  # units leave a location into transit (counterparty = destination)
    RECEIPT = 4  # units arrive from transit (counterparty = origin)
    SALE = 5  # units sold to a customer
    LOST = 6  # demand not met: moves no unit
    SHORT = 7  # units a supplier failed to deliver: moves no unit
    FUNDING = 8  # vendor funding earned on promoted units sold: moves no unit


class Ledger:
    def __init__(self, detail: Detail):
        self.detail = detail
        self._chunks: list[dict[str, npt.NDArray]] = []

    def cells(
        self,
        day: int,
        kind: Kind,
        qty: npt.NDArray,
        value: npt.NDArray,
        cost: npt.NDArray,
        location_offset: int = 0,
        channel: int = NO_CHANNEL,
        promoted: npt.NDArray[np.bool_] | None = None,
    ) -> None:
        """Record a ``[locations, S]`` array of movements (row i is location i + offset)."""
        if self.detail == "sku":
            loc, sku = np.nonzero(qty)
            if not len(loc):
                return
            self._append(
                day,
                kind,
                loc + location_offset,
                np.full(len(loc), -1),
                sku,
                channel,
                np.zeros(len(loc), bool) if promoted is None else promoted[loc, sku],
                qty[loc, sku],
                value[loc, sku],
                cost[loc, sku],
                np.ones(len(loc), np.int64),
            )
            return
        flags = (False, True) if promoted is not None else (False,)
        for flag in flags:
            if promoted is None:
                mask: npt.NDArray[np.bool_] | bool = True
            else:
                mask = promoted if flag else ~promoted
            q = np.where(mask, qty, 0)
            q_sum = q.sum(axis=1)
            rows = np.nonzero(q_sum)[0]
            if not len(rows):
                continue
            self._append(
                day,
                kind,
                rows + location_offset,
                np.full(len(rows), -1),
                np.full(len(rows), -1),
                channel,
                np.full(len(rows), flag),
                q_sum[rows],
                np.where(mask, value, 0).sum(axis=1)[rows],
                np.where(mask, cost, 0).sum(axis=1)[rows],
                np.count_nonzero(q, axis=1)[rows],
            )

    def lines(
        self,
        day: int,
        kind: Kind,
        location: int,
        counterparty: int,
        sku: npt.NDArray,
        qty: npt.NDArray,
        value: npt.NDArray,
        cost: npt.NDArray,
    ) -> None:
        """Record one shipment's lines (all between the same two parties)."""
        keep = qty != 0
        if not keep.any():
            return
        n = int(keep.sum())
        if self.detail == "sku":
            self._append(
                day,
                kind,
                np.full(n, location),
                np.full(n, counterparty),
                sku[keep],
                NO_CHANNEL,
                np.zeros(n, bool),
                qty[keep],
                value[keep],
                cost[keep],
                np.ones(n, np.int64),
            )
        else:
            self._append(
                day,
                kind,
                np.array([location]),
                np.array([counterparty]),
                np.array([-1]),
                NO_CHANNEL,
                np.array([False]),
                np.array([qty[keep].sum()]),
                np.array([value[keep].sum()]),
                np.array([cost[keep].sum()]),
                np.array([n]),
            )

    def _append(
        self,
        day: int,
        kind: Kind,
        location: npt.NDArray,
        counterparty: npt.NDArray,
        sku: npt.NDArray,
        channel: int,
        promoted: npt.NDArray,
        qty: npt.NDArray,
        value: npt.NDArray,
        cost: npt.NDArray,
        lines: npt.NDArray,
    ) -> None:
        n = len(location)
        self._chunks.append(
            {
                "day": np.full(n, day, np.int32),
                "kind": np.full(n, int(kind), np.int8),
                "location": location.astype(np.int32),
                "counterparty": counterparty.astype(np.int32),
                "sku": sku.astype(np.int32),
                "channel": np.full(n, channel, np.int8),
                "promoted": promoted.astype(bool),
                "qty": qty.astype(np.int64),
                "value": value.astype(np.float64),
                "cost": cost.astype(np.float64),
                "lines": lines.astype(np.int64),
            }
        )

    def frame(self) -> pd.DataFrame:
        if not self._chunks:
            return pd.DataFrame({c: pd.Series(dtype=np.int64) for c in COLUMNS})
        return pd.DataFrame({c: np.concatenate([ch[c] for ch in self._chunks]) for c in COLUMNS})
