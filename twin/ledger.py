"""The ledger: every unit movement, written into preallocated column blocks, one tidy DataFrame
at the end.

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

import functools
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

Detail = Literal["sku", "summary"]
CHANNELS = ("walk_in", "pickup", "ecommerce")
NO_CHANNEL = -1
SUMMARY_BLOCK_ROWS = 32  # rows summed per step in summary detail (32 x 2,000 SKUs: 0.5 MB)
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
DTYPES: dict[str, type] = {
    "day": np.int32,
    "kind": np.int8,
    "location": np.int32,
    "counterparty": np.int32,
    "sku": np.int32,
    "channel": np.int8,
    "promoted": np.bool_,
    "qty": np.int64,
    "value": np.float64,
    "cost": np.float64,
    "lines": np.int64,
}


class Kind(IntEnum):
    INITIAL = 0  # opening stock
    SUPPLIER_RECEIPT = 1  # units delivered by a supplier into a DC (or a store, direct)
    EXPEDITE_RECEIPT = 2  # same, expedited
    DISPATCH = 3  # units leave a location into transit (counterparty = destination)
    RECEIPT = 4  # units arrive from transit (counterparty = origin)
    SALE = 5  # units sold to a customer
    LOST = 6  # demand not met: moves no unit
    SHORT = 7  # units a supplier failed to deliver: moves no unit
    FUNDING = 8  # vendor funding earned on promoted units sold: moves no unit


FIRST_BLOCK_ROWS = 4096  # rows the column blocks start with; they double when full


def _per(unit: npt.ArrayLike, *index: npt.NDArray) -> npt.ArrayLike:
    """A per-unit value or cost at the recorded lines: a scalar as it is (it broadcasts), else
    the array at ``index`` (no broadcast view is made: a day writes a dozen of these)."""
    return unit if np.ndim(unit) == 0 else np.asarray(unit)[index[-np.ndim(unit) :]]


class Ledger:
    def __init__(self, detail: Detail):
        self.detail = detail
        # column blocks, preallocated and doubled when full: a line costs slice writes, not
        # eleven fresh arrays per call and one concatenation of thousands of chunks at the end
        self._columns: dict[str, npt.NDArray] = {
            c: np.empty(FIRST_BLOCK_ROWS, DTYPES[c]) for c in COLUMNS
        }
        self._rows = 0

    def cells(
        self,
        day: int,
        kind: Kind,
        qty: npt.NDArray,
        unit_value: npt.ArrayLike,
        unit_cost: npt.ArrayLike,
        location_offset: int = 0,
        channel: int = NO_CHANNEL,
        promoted: npt.NDArray[np.bool_] | None = None,
        promoted_only: bool = False,
    ) -> None:
        """Record a ``[locations, S]`` array of movements (row i is location i + offset).

        ``value`` and ``cost`` of a cell are ``qty`` times ``unit_value`` / ``unit_cost`` (each
        broadcast against ``qty``: per SKU ``[S]``, per cell, or a scalar), formed only where
        needed rather than as full arrays by the caller. ``promoted`` flags the cells of active
        promotions (lines are split by it); ``promoted_only`` records those cells alone.
        """
        if self.detail == "sku":
            if promoted_only:
                assert promoted is not None
                qty = np.where(promoted, qty, 0)
            loc, sku = np.nonzero(qty)
            if not len(loc):
                return
            q = qty[loc, sku]
            self._append(
                day,
                kind,
                loc + location_offset,
                -1,
                sku,
                channel,
                False if promoted is None else promoted[loc, sku],
                q,
                q * _per(unit_value, loc, sku),
                q * _per(unit_cost, loc, sku),
                1,
            )
            return
        value_per = np.broadcast_to(unit_value, qty.shape)
        cost_per = np.broadcast_to(unit_cost, qty.shape)
        groups: list[tuple[bool, npt.NDArray[np.bool_] | None]] = [(False, None)]
        if promoted is not None:
            groups = [(True, promoted)] if promoted_only else [(False, ~promoted), (True, promoted)]
        for flag, mask in groups:
            sums = _row_sums(qty, value_per, cost_per, mask)
            self._summary(day, kind, location_offset, channel, flag, sums)

    def listed(
        self,
        day: int,
        kind: Kind,
        where: CellList,
        qty: npt.NDArray,
        unit_value: npt.ArrayLike,
        unit_cost: npt.ArrayLike,
        location_offset: int,
        channel: int,
        promoted: bool = False,
    ) -> None:
        """Record movements on listed cells (``qty[i]`` on row ``where.rows[i] + offset``, SKU
        ``where.skus[i]``), as ``cells()`` does for a whole array: for arrays that are mostly
        zero. ``unit_value`` and ``unit_cost`` are per listed cell or scalars; ``promoted``
        flags them all."""
        if self.detail == "sku":
            keep = qty != 0
            q = qty[keep]
            if not len(q):
                return
            self._append(
                day,
                kind,
                where.rows[keep] + location_offset,
                -1,
                where.skus[keep],
                channel,
                promoted,
                q,
                q * _per(unit_value, keep),
                q * _per(unit_cost, keep),
                1,
            )
            return
        starts, row_ids = where.runs
        if not len(starts):
            return
        # rows are sorted, so each row's cells are one run: sums by run, no scatter
        sums = (
            np.add.reduceat(qty, starts),
            np.add.reduceat(qty * np.broadcast_to(unit_value, qty.shape), starts),
            np.add.reduceat(qty * np.broadcast_to(unit_cost, qty.shape), starts),
            np.add.reduceat(qty != 0, starts, dtype=np.int64),
        )
        self._summary(day, kind, row_ids + location_offset, channel, promoted, sums)

    def _summary(
        self,
        day: int,
        kind: Kind,
        location: int | npt.NDArray,
        channel: int,
        promoted: bool,
        sums: tuple[npt.NDArray, npt.NDArray, npt.NDArray, npt.NDArray],
    ) -> None:
        """Summary rows from per-row sums (row i is ``location + i``, or ``location[i]``)."""
        q_sum, value, cost, lines = sums
        rows = np.nonzero(q_sum)[0]
        if not len(rows):
            return
        where = location + rows if isinstance(location, int) else location[rows]
        self._append(
            day,
            kind,
            where,
            -1,
            -1,
            channel,
            promoted,
            q_sum[rows],
            value[rows],
            cost[rows],
            lines[rows],
        )

    def shipments(
        self,
        day: int,
        kind: Kind,
        location: npt.NDArray,
        counterparty: npt.NDArray,
        bounds: npt.NDArray,
        sku: npt.NDArray,
        qty: npt.NDArray,
        value: npt.NDArray,
        cost: npt.NDArray,
    ) -> None:
        """Record many shipments at once: shipment ``g`` is lines ``bounds[g]:bounds[g + 1]``,
        all at ``location[g]`` with ``counterparty[g]`` (one chunk, not one per shipment)."""
        counts = np.diff(bounds)
        if self.detail == "sku":
            keep = qty != 0
            if keep.all():  # the usual shipment: every line moves units
                at, party = np.repeat(location, counts), np.repeat(counterparty, counts)
                self._append(day, kind, at, party, sku, NO_CHANNEL, False, qty, value, cost, 1)
                return
            at = np.repeat(location, counts)[keep]
            if not len(at):
                return
            self._append(
                day,
                kind,
                at,
                np.repeat(counterparty, counts)[keep],
                sku[keep],
                NO_CHANNEL,
                False,
                qty[keep],
                value[keep],
                cost[keep],
                1,
            )
            return
        full = counts > 0
        starts = bounds[:-1][full]
        if not len(starts):
            return
        lines = np.add.reduceat(qty != 0, starts)
        sent = lines > 0
        self._append(
            day,
            kind,
            location[full][sent],
            counterparty[full][sent],
            -1,
            NO_CHANNEL,
            False,
            np.add.reduceat(qty, starts)[sent],
            np.add.reduceat(value, starts)[sent],
            np.add.reduceat(cost, starts)[sent],
            lines[sent],
        )

    def _append(
        self,
        day: int,
        kind: Kind,
        location: npt.NDArray,
        counterparty: npt.ArrayLike,
        sku: npt.ArrayLike,
        channel: int,
        promoted: npt.ArrayLike,
        qty: npt.NDArray,
        value: npt.NDArray,
        cost: npt.NDArray,
        lines: npt.ArrayLike,
    ) -> None:
        """Write lines into the column blocks (scalars fill their column for every line)."""
        n = len(location)
        a, b = self._rows, self._rows + n
        if b > len(self._columns["day"]):
            self._grow(b)
        cols = self._columns
        cols["day"][a:b] = day
        cols["kind"][a:b] = int(kind)
        cols["location"][a:b] = location
        cols["counterparty"][a:b] = counterparty
        cols["sku"][a:b] = sku
        cols["channel"][a:b] = channel
        cols["promoted"][a:b] = promoted
        cols["qty"][a:b] = qty
        cols["value"][a:b] = value
        cols["cost"][a:b] = cost
        cols["lines"][a:b] = lines
        self._rows = b

    def _grow(self, rows: int) -> None:
        size = max(rows, 2 * len(self._columns["day"]))
        for c, old in self._columns.items():
            new = np.empty(size, old.dtype)
            new[: self._rows] = old[: self._rows]
            self._columns[c] = new

    def frame(self) -> pd.DataFrame:
        if not self._rows:
            return pd.DataFrame({c: pd.Series(dtype=np.int64) for c in COLUMNS})
        return pd.DataFrame({c: self._columns[c][: self._rows] for c in COLUMNS})  # copied


@dataclass(frozen=True)
class CellList:
    """Cells of a ``[rows, S]`` array listed by row (sorted) and SKU."""

    rows: npt.NDArray[np.int64]
    skus: npt.NDArray[np.int64]

    @functools.cached_property
    def runs(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Where each row's run of cells starts, and that row."""
        rows = self.rows
        first = np.empty(len(rows), bool)
        first[:1] = True
        np.not_equal(rows[1:], rows[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        return starts, rows[starts]

    def subset(self, mask: npt.NDArray[np.bool_]) -> CellList:
        return CellList(self.rows[mask], self.skus[mask])


def _row_sums(
    qty: npt.NDArray,
    value_per: npt.NDArray,
    cost_per: npt.NDArray,
    mask: npt.NDArray[np.bool_] | None = None,
) -> tuple[npt.NDArray, npt.NDArray, npt.NDArray, npt.NDArray]:
    """Per row of ``qty`` (cells outside ``mask`` left out): units, value, cost, nonzero cells.

    Works through a few rows at a time so the products stay in cache; each row is still summed
    by numpy's own pairwise reduction over that row, so the sums do not depend on the blocking.
    """
    n_rows = qty.shape[0]
    q_sum = np.empty(n_rows, np.int64)
    value = np.empty(n_rows)
    cost = np.empty(n_rows)
    lines = np.empty(n_rows, np.int64)
    for a in range(0, n_rows, SUMMARY_BLOCK_ROWS):
        b = slice(a, a + SUMMARY_BLOCK_ROWS)
        q = qty[b] if mask is None else np.where(mask[b], qty[b], 0)
        q_sum[b] = q.sum(axis=1)
        if not q_sum[b].any():  # rows without units are not recorded: skip the products
            value[b], cost[b], lines[b] = 0.0, 0.0, 0
            continue
        value[b] = (q * value_per[b]).sum(axis=1)
        cost[b] = (q * cost_per[b]).sum(axis=1)
        lines[b] = np.count_nonzero(q, axis=1)
    return q_sum, value, cost, lines
