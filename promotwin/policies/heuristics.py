"""Heuristic policies: the baselines the optimizer must beat.

- ``order-point``: an ERP's min/max order points from trailing average sales, recalculated monthly.
- ``base-stock``: order-up-to from the forecast over lead time + review, safety stock for a
  target cycle service level, echelon stock at the DCs, fair-share allocation when a DC is short.
- ``static-forecast``: order points fixed before the season from baseline x planned promotion
  uplift (a static uplift file); never updated from live sales.

Cover rule (review period R = 1 day): an order placed at the end of day t arrives at the start of
day t+L, and the next order lands at t+L+1, so the order-up-to level covers days t+1..t+L.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from promotwin.policies.allocation import cut_to_limit
from promotwin.policies.contract import (
    ActionKind,
    BoolArray,
    FloatArray,
    IntArray,
    Plan,
    PlanBuilder,
    PlanningSnapshot,
)


def store_transit(s: PlanningSnapshot) -> IntArray:
    """Transit days of each store's replenishment lane ``[stores]`` (1 when no lane is listed)."""
    n_stores = s.n_locations - s.n_dcs
    transit = np.ones(n_stores, np.int64)
    lanes = s.lanes
    if len(lanes):
        o, d = lanes["o"].to_numpy(), lanes["d"].to_numpy()
        mask = (d >= s.n_dcs) & (o == s.serving_dc[np.minimum(d, s.n_locations - 1)])
        transit[d[mask] - s.n_dcs] = lanes["transit_days"].to_numpy()[mask]
    return transit


def dc_assignment(s: PlanningSnapshot) -> FloatArray:
    """``[D, stores]`` 0/1 matrix: which DC replenishes each store."""
    stores = s.serving_dc[s.n_dcs :]
    a = np.zeros((s.n_dcs, len(stores)))
    a[stores, np.arange(len(stores))] = 1.0
    return a


def cover_sum(
    window: FloatArray,
    days: IntArray,
    per_day: Callable[[FloatArray], FloatArray] | None = None,
) -> FloatArray:
    """Sum of ``f(window[h, i, k])`` over h < days[i, k] (days beyond H repeat the last day).

    ``days`` broadcasts against ``window.shape[1:]``; ``f`` is ``per_day`` (identity if None),
    applied one day at a time. Days are added in order into one accumulator, so the sum equals a
    cumulative sum's bit for bit while reading only the days covered and making no ``[H, ...]``
    temporary (the window is large: 21 days x 1M cells on the big network).
    """
    h = window.shape[0]
    capped = np.minimum(days, h)
    total = np.zeros(np.broadcast_shapes(window.shape[1:], np.shape(days)))
    for j in range(int(capped.max(initial=0))):
        day = window[j] if per_day is None else per_day(window[j])
        np.add(total, day, out=total, where=capped > j)
    if (days > h).any():
        last = window[-1] if per_day is None else per_day(window[-1])
        total += np.maximum(days - h, 0) * last
    return total


def fair_share(request: IntArray, available: IntArray, dc_of_store: IntArray) -> IntArray:
    """Cut store requests ``[stores, S]`` to each DC's available units ``[D, S]``, pro rata."""
    n_skus = request.shape[1]
    group = (dc_of_store[:, None] * n_skus + np.arange(n_skus)[None, :]).ravel()
    return cut_to_limit(request.ravel(), group, available.ravel()).reshape(request.shape)


def add_store_shipments(
    plan: PlanBuilder, s: PlanningSnapshot, qty: IntArray, confidence: FloatArray, reason: str
) -> None:
    stores, skus = np.nonzero(qty)
    plan.add(
        ActionKind.SHIPMENT,
        s.serving_dc[stores + s.n_dcs],
        stores + s.n_dcs,
        skus,
        qty[stores, skus],
        0.0,
        confidence[stores, skus],
        reason,
    )


def add_purchases(
    plan: PlanBuilder, s: PlanningSnapshot, qty: IntArray, confidence: FloatArray, reason: str
) -> None:
    dcs, skus = np.nonzero(qty)
    plan.add(
        ActionKind.PURCHASE,
        s.sku_supplier[skus],
        dcs,
        skus,
        qty[dcs, skus],
        s.unit_cost[skus],
        confidence[dcs, skus],
        reason,
    )


@dataclass
class BaseStockPolicy:
    """Order up to forecast over the cover period + z x sigma, at stores and (echelon) at DCs."""

    service_level: float = 0.98
    name: str = "base-stock"
    horizon_days: int = 21

    def decide(self, s: PlanningSnapshot) -> Plan:
        z = float(norm.ppf(self.service_level))
        plan = PlanBuilder(self.name)
        nd = s.n_dcs
        fc = s.forecast_mean
        position = s.position  # a property that adds three [L, S] arrays: take it once
        transit = store_transit(s)
        # stores: cover the transit days
        store_days = transit[:, None]
        mu = cover_sum(fc[:, nd:], store_days)
        sd = np.sqrt(cover_sum(fc[:, nd:], store_days, s.forecast_var))
        upper = mu + z * sd
        level = np.ceil(upper)
        need = np.maximum(level - position[nd:], 0).astype(np.int64)
        ship = fair_share(need, s.on_hand[:nd], s.serving_dc[nd:])
        confidence = mu / np.maximum(upper, 1e-9)
        add_store_shipments(plan, s, ship, confidence, "base-stock: below order-up-to level")
        # DCs: echelon stock over supplier lead + store transit
        assign = dc_assignment(s)
        lead = s.lead_time_mean[s.sku_supplier]  # [S]
        lead_sd = s.lead_time_sd[s.sku_supplier]
        mean_transit = (assign @ transit) / np.maximum(assign.sum(axis=1), 1)  # [D]
        days = np.rint(lead[None, :] + mean_transit[:, None]).astype(np.int64)
        # echelon forecast only for the days the cover reads (all H if any cover runs past it),
        # one day at a time: the stores' sum per DC is a [D, stores] @ [stores, S] product
        h = s.horizon
        n_days = h if (days > h).any() else max(int(days.max(initial=1)), 1)
        echelon_fc = np.stack([fc[j, :nd] + assign @ fc[j, nd:] for j in range(n_days)])
        echelon_var = np.stack(
            [
                s.forecast_var(fc[j, :nd]) + assign @ s.forecast_var(fc[j, nd:])
                for j in range(n_days)
            ]
        )
        mu_e = cover_sum(echelon_fc, days)
        daily = echelon_fc[0]
        var_e = cover_sum(echelon_var, days) + (lead_sd[None, :] * daily) ** 2
        level_e = np.ceil(mu_e + z * np.sqrt(var_e))
        position_e = position[:nd] + assign @ position[nd:]
        order = np.maximum(level_e - position_e, 0).astype(np.int64)
        conf_e = mu_e / np.maximum(level_e, 1e-9)
        add_purchases(
            plan, s, order, conf_e, "base-stock: echelon position below order-up-to level"
        )
        return plan.build()


@dataclass
class MinMax:
    """Order points per cell: order up to ``maximum`` when position falls to ``minimum``."""

    minimum: FloatArray
    maximum: FloatArray

    def order(self, position: IntArray, rows: slice) -> IntArray:
        lo, hi = self.minimum[rows], self.maximum[rows]
        due = position <= lo
        return np.where(due, np.maximum(hi - position, 0), 0).astype(np.int64)


def min_max_from_usage(
    s: PlanningSnapshot, usage: FloatArray, safety_days: float, order_days: float
) -> MinMax:
    """ERP-style min/max from average daily usage ``[L, S]`` (DC usage includes its stores)."""
    nd = s.n_dcs
    transit = store_transit(s)
    dc_usage = usage[:nd] + dc_assignment(s) @ usage[nd:]
    lead = s.lead_time_mean[s.sku_supplier][None, :]
    minimum = np.empty_like(usage)
    minimum[nd:] = np.ceil(usage[nd:] * (transit[:, None] + safety_days))
    minimum[:nd] = np.ceil(dc_usage * (lead + safety_days))
    maximum = minimum + np.ceil(np.vstack([dc_usage, usage[nd:]]) * order_days)
    return MinMax(minimum, maximum)


def min_max_plan(
    name: str, s: PlanningSnapshot, points: MinMax, confidence: float, why: str
) -> Plan:
    plan = PlanBuilder(name)
    nd = s.n_dcs
    position = s.position
    need = points.order(position[nd:], slice(nd, None))
    ship = fair_share(need, s.on_hand[:nd], s.serving_dc[nd:])
    conf = np.full(ship.shape, confidence)
    add_store_shipments(plan, s, ship, conf, f"{why}: store position at or below min")
    order = points.order(position[:nd], slice(0, nd))
    add_purchases(
        plan, s, order, np.full(order.shape, confidence), f"{why}: DC position at or below min"
    )
    return plan.build()


@dataclass
class OrderPointPolicy:
    """What an ERP does today: min/max from trailing sales, recalculated every ``recalc_days``."""

    safety_days: float = 3.0
    order_days: float = 7.0
    recalc_days: int = 28
    name: str = "order-point"
    horizon_days: int = 1
    _points: MinMax | None = field(default=None, repr=False)
    _computed_on: int = field(default=-(10**9), repr=False)

    def decide(self, s: PlanningSnapshot) -> Plan:
        if self._points is None or s.day - self._computed_on >= self.recalc_days:
            self._points = min_max_from_usage(s, s.history_mean, self.safety_days, self.order_days)
            self._computed_on = s.day
        return min_max_plan(self.name, s, self._points, 0.6, "order point")


def read_uplift_file(path: str | Path) -> dict[str, float]:
    """A static uplift file: CSV with columns ``promotion,uplift`` (uplift > 0, a multiplier)."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the uplift file ({exc.strerror})") from None
    if not rows or not {"promotion", "uplift"} <= set(rows[0]):
        raise ValueError(f"{path}: need a CSV with columns promotion,uplift")
    uplifts = {}
    for line, row in enumerate(rows, start=2):
        try:
            uplifts[row["promotion"]] = float(row["uplift"])
        except (TypeError, ValueError):
            raise ValueError(
                f"{path}, line {line}: uplift {row['uplift']!r} is not a number"
            ) from None
        if uplifts[row["promotion"]] <= 0:
            raise ValueError(f"{path}, line {line}: uplift must be > 0 (1.0 means no uplift)")
    return uplifts


@dataclass
class StaticForecastPolicy:
    """The traditional plan: order points from baseline x planned uplift, fixed pre-season.

    Promoted cells get raised min/max for the promotion window, shifted earlier by the lead time,
    from the uplift in ``uplifts`` (a static uplift file), else the promotion's ``planned_uplift``,
    else ``default_uplift``. It never looks at live sales.
    """

    uplifts: dict[str, float] = field(default_factory=dict)
    default_uplift: float = 1.5
    safety_days: float = 3.0
    order_days: float = 7.0
    name: str = "static-forecast"
    horizon_days: int = 1
    _frozen: tuple[FloatArray, list[tuple[int, int, BoolArray, float]]] | None = field(
        default=None, repr=False
    )

    def _freeze(
        self, s: PlanningSnapshot
    ) -> tuple[FloatArray, list[tuple[int, int, BoolArray, float]]]:
        promos = []
        for row in s.promotions.to_dict("records"):
            uplift = self.uplifts.get(str(row["id"]))
            if uplift is None:
                planned = row["planned_uplift"]
                uplift = float(planned) if pd.notna(planned) else self.default_uplift
            cells = s.promotion_cells[str(row["id"])]
            promos.append((int(row["start_day"]), int(row["end_day"]), cells, float(uplift)))
        return s.baseline_mean.copy(), promos

    def planned(self, day: int) -> FloatArray:
        """Planned daily demand ``[L, S]`` on ``day`` from the frozen plan."""
        assert self._frozen is not None
        base, promos = self._frozen
        out = base
        for start, end, cells, uplift in promos:
            if start <= day <= end:
                out = np.where(cells, out * uplift, out)
        return out

    def decide(self, s: PlanningSnapshot) -> Plan:
        if self._frozen is None:
            self._frozen = self._freeze(s)
        # average planned usage over the next lead time: promotions raise min/max ahead of time
        lookahead = int(np.ceil(s.lead_time_mean.max(initial=1))) + 2
        usage = np.mean([self.planned(s.day + 1 + h) for h in range(lookahead)], axis=0)
        points = min_max_from_usage(s, usage, self.safety_days, self.order_days)
        return min_max_plan(self.name, s, points, 0.5, "static plan order point")
