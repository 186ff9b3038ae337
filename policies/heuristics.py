"""Heuristic policies: the baselines the optimizer must beat.

- ``order-point``: an ERP's min/max order points from trailing average sales, recalculated monthly.
- ``base-stock``: order-up-to from the forecast over lead time + review, safety stock for a
  target cycle service level, echelon stock at the DCs (whose level adds the stores' own safety
  stocks; open purchase orders count at the supplier's expected fill), fair-share allocation
  when a DC is short.
- ``base-stock-expedite``: the same with a second, fast channel (a dual-index policy): expedite
  up to the level over the expedite lead time, counting only what arrives within it; the
  regular order then tops the whole position up. Only a fast channel turns a forecast raised
  in-season (sensing) into stock inside a three-week promotion when suppliers need 7-12 days.
- ``static-forecast``: order points fixed before the season from baseline x planned promotion
  uplift (a static uplift file); never updated from live sales.

Cover rule (review period R = 1 day): an order placed at the end of day t arrives at the start of
day t+L, and the next order lands at t+L+1, so the order-up-to level covers days t+1..t+L.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from promotwin.arrays import WorkBuffers
from promotwin.policies.allocation import cut_to_limit
from promotwin.policies.contract import (
    ActionKind,
    BoolArray,
    FloatArray,
    IntArray,
    Plan,
    PlanBuilder,
    PlanningSnapshot,
    RunContext,
)
from promotwin.policies.explain import with_forecast_notes
from promotwin.policies.forecast_terms import ForecastDay, forecast_day
from promotwin.policies.supply import (
    dc_replenished,
    direct,
    direct_lead_days,
    replenishing_matrix,
    supplier_only,
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


def cover_sum(
    window: FloatArray | Sequence[FloatArray],
    days: IntArray,
    per_day: Callable[[FloatArray], FloatArray] | None = None,
    out: FloatArray | None = None,
) -> FloatArray:
    """Sum of ``f(window[h, i, k])`` over h < days[i, k] (days beyond H repeat the last day).

    ``window`` is an ``[H, ...]`` array or a sequence of H same-shaped day arrays. ``days``
    broadcasts against one day's shape; ``f`` is ``per_day`` (identity if None), applied one day at
    a time. Days are added in order into one accumulator, so the sum equals a cumulative sum's bit
    for bit while reading only the days covered and making no ``[H, ...]`` temporary (the window
    is large: 21 days x 1M cells on the big network). ``out``, if given, receives the sum.
    """
    h = len(window)
    capped = np.minimum(days, h)
    day_shape = window.shape[1:] if isinstance(window, np.ndarray) else np.shape(window[0])
    shape = np.broadcast_shapes(day_shape, np.shape(days))
    total = np.empty(shape) if out is None else out
    n_days = int(capped.max(initial=0))
    if not (capped > 0).all():  # else the first day is copied in below
        total.fill(0.0)
    for j in range(n_days):
        day = window[j] if per_day is None else per_day(window[j])
        covered = capped > j
        if not covered.all():
            np.add(total, day, out=total, where=covered)
        elif j == 0:  # every cell covers the first day: it is the sum so far, as in a cumsum
            np.copyto(total, day)
        else:
            np.add(total, day, out=total)
    if (days > h).any():
        last = window[-1] if per_day is None else per_day(window[-1])
        total += np.maximum(days - h, 0) * last
    return total


def share_groups(dc_of_store: IntArray, n_skus: int) -> IntArray:
    """Fair-share group (DC x SKU) of each store cell, flattened ``[stores * S]``."""
    return (dc_of_store[:, None] * n_skus + np.arange(n_skus)[None, :]).ravel()


def fair_share(request: IntArray, available: IntArray, dc_of_store: IntArray) -> IntArray:
    """Cut store requests ``[stores, S]`` to each DC's available units ``[D, S]``, pro rata."""
    group = share_groups(dc_of_store, request.shape[1])
    return cut_to_limit(request.ravel(), group, available.ravel()).reshape(request.shape)


def add_store_shipments(
    plan: PlanBuilder,
    s: PlanningSnapshot,
    qty: IntArray,
    confidence: FloatArray | float,
    reason: str,
) -> None:
    """One shipment line per store cell with ``qty > 0``; ``confidence`` per cell or for all."""
    stores, skus = np.nonzero(qty)
    if not len(stores):  # nothing to ship today
        return
    conf = confidence if isinstance(confidence, float) else confidence[stores, skus]
    add_store_lines(plan, s, stores, skus, qty[stores, skus], conf, reason)


def add_store_lines(
    plan: PlanBuilder,
    s: PlanningSnapshot,
    stores: IntArray,
    skus: IntArray,
    qty: IntArray,
    confidence: FloatArray | float,
    reason: str,
) -> None:
    """Shipment lines from each store's DC, ``stores`` counted from the first store (0-based)."""
    plan.add(
        ActionKind.SHIPMENT,
        s.serving_dc[stores + s.n_dcs],
        stores + s.n_dcs,
        skus,
        qty,
        0.0,
        confidence,
        reason,
    )


def add_purchases(
    plan: PlanBuilder,
    s: PlanningSnapshot,
    qty: IntArray,
    confidence: FloatArray | float,
    reason: str,
) -> None:
    """One purchase line per cell with ``qty > 0`` (``qty`` ``[D, S]`` for DCs, or ``[L, S]``
    with rows of stores supplied directly); ``confidence`` per cell or for all."""
    dcs, skus = np.nonzero(qty)
    if not len(dcs):  # nothing to order today
        return
    plan.add(
        ActionKind.PURCHASE,
        s.sku_supplier[skus],
        dcs,
        skus,
        qty[dcs, skus],
        s.unit_cost[skus],
        confidence[dcs, skus] if isinstance(confidence, np.ndarray) else confidence,
        reason,
    )


@dataclass(frozen=True)
class _Routes:
    """What base-stock derives from the network alone, kept while the snapshots show the same one.

    ``serving_dc`` and ``lanes`` are held (and compared by identity), so a new network, even one
    allocated where an old one was, is never mistaken for the kept one.
    """

    serving_dc: IntArray
    lanes: pd.DataFrame
    n_skus: int
    transit: IntArray  # [stores] days
    assign: FloatArray  # [D, stores] which DC replenishes each store
    mean_transit: FloatArray  # [D] days
    share_group: IntArray  # [stores * S] fair-share group of each store cell
    supplier_only: BoolArray  # [stores] replenished by suppliers only (no DC shipments)
    second_source: BoolArray  # [stores] supplied by their DC and by suppliers (``both``)

    @classmethod
    def of(cls, s: PlanningSnapshot) -> _Routes:
        assign = replenishing_matrix(s)
        transit = store_transit(s)
        nd = s.n_dcs
        return cls(
            serving_dc=s.serving_dc,
            lanes=s.lanes,
            n_skus=s.n_skus,
            transit=transit,
            assign=assign,
            mean_transit=(assign @ transit) / np.maximum(assign.sum(axis=1), 1),
            share_group=share_groups(s.serving_dc[s.n_dcs :], s.n_skus),
            supplier_only=supplier_only(s)[nd:],
            second_source=(direct(s) & dc_replenished(s))[nd:],
        )

    def fits(self, s: PlanningSnapshot) -> bool:
        return (
            s.serving_dc is self.serving_dc
            and s.lanes is self.lanes
            and s.n_skus == self.n_skus
            and bool(np.array_equal(supplier_only(s)[s.n_dcs :], self.supplier_only))
        )


@dataclass
class BaseStockPolicy:
    """Order up to forecast over the cover period + z x sigma, at stores and (echelon) at DCs."""

    service_level: float = 0.98
    name: str = "base-stock"
    horizon_days: int = 21
    expedite: bool = False  # dual index: also expedite up to the expedite-lead-time level
    # a forecast date's terms cost passes over every store cell: they come from the forecast
    # provider with the snapshot (the twin computes each date's once) or are computed here
    _routes: _Routes | None = field(default=None, repr=False, compare=False)
    _buffers: WorkBuffers = field(default_factory=WorkBuffers, repr=False, compare=False)

    def start(self, context: RunContext) -> None:
        """Forget the network kept from an earlier run."""
        self._routes = None

    def _network(self, s: PlanningSnapshot) -> _Routes:
        if self._routes is None or not self._routes.fits(s):
            self._routes = _Routes.of(s)
        return self._routes

    def _forecast_days(self, s: PlanningSnapshot, routes: _Routes, n: int) -> list[ForecastDay]:
        """Terms of forecast rows ``0..n-1`` (dates ``day+1..day+n``): the provider's, if the
        snapshot has them, else computed from ``forecast_mean``."""
        if s.forecast_terms is not None:
            return list(s.forecast_terms.days[:n])
        fc = s.forecast_mean
        return [
            forecast_day(fc[j], s.n_dcs, routes.assign, s.forecast_dispersion) for j in range(n)
        ]

    def decide(self, s: PlanningSnapshot) -> Plan:
        z = float(norm.ppf(self.service_level))
        plan = PlanBuilder(self.name)
        routes = self._network(s)
        # DC echelon cover: supplier lead + store transit
        lead = s.lead_time_mean[s.sku_supplier]  # [S]
        days = np.rint(lead[None, :] + routes.mean_transit[:, None]).astype(np.int64)
        # forecast days the covers read (all H if any cover runs past it)
        h, transit = s.horizon, routes.transit
        n_echelon = h if (days > h).any() else max(int(days.max(initial=1)), 1)
        n_store = h if (transit > h).any() else max(int(transit.max(initial=1)), 1)
        terms = self._forecast_days(s, routes, max(n_echelon, n_store))
        store_safety, store_position = self._ship_to_stores(plan, s, routes, terms[:n_store], z)
        self._order_for_dcs(
            plan, s, routes, terms[:n_echelon], days, z, store_safety, store_position
        )
        if routes.supplier_only.any():
            self._order_direct(plan, s, routes, z)
        return with_forecast_notes(plan.build(), s)

    def _ship_to_stores(
        self,
        plan: PlanBuilder,
        s: PlanningSnapshot,
        routes: _Routes,
        terms: list[ForecastDay],
        z: float,
    ) -> tuple[FloatArray, IntArray]:
        """Ship each store cell up to its level (fair share when its DC is short); returns the
        safety stock the stores hold per DC ``[D, S]`` and the stores' position ``[stores, S]``.
        """
        nd = s.n_dcs
        store_days = routes.transit[:, None]  # a store's level covers its lane's transit days
        store_shape = (s.n_locations - nd, s.n_skus)
        mu = cover_sum(
            s.forecast_mean[:, nd:],
            store_days,
            out=self._buffers.get("mu", store_shape, np.float64),
        )
        upper = cover_sum(
            [t.store_var for t in terms],
            store_days,
            out=self._buffers.get("upper", store_shape, np.float64),
        )
        # upper = mu + z * sd and need = max(ceil(upper) - position, 0), in place
        np.sqrt(upper, out=upper)
        np.multiply(upper, z, out=upper)
        np.add(mu, upper, out=upper)
        need = np.ceil(upper, out=self._buffers.get("need", store_shape, np.float64))  # the levels
        # each store holds its own safety stock (its level above the mean cover): the DC echelon
        # level must include their sum, or the pooled echelon safety (far smaller than the sum)
        # leaves the stores below their levels and every DC short, day after day
        held = np.subtract(need, mu, out=self._buffers.get("held", store_shape, np.float64))
        store_safety = routes.assign @ held  # [D, S]
        # the stores' inventory position (s.position's rows), summed into a kept buffer
        position = self._buffers.get("position", store_shape, np.int64)
        np.add(s.on_hand[nd:], s.in_transit[nd:], out=position)
        np.add(position, s.on_order[nd:], out=position)
        np.subtract(need, position, out=need)
        np.maximum(need, 0, out=need)
        if routes.supplier_only.any():  # no DC ships to them: _order_direct buys their stock
            need[routes.supplier_only] = 0.0
        # fair share over the cells with a need only (row-major, as np.nonzero): a cell without
        # one neither adds to its DC's total nor gets a unit when the DC is short
        lines = np.flatnonzero(need > 0)  # a mask: nonzero on floats is five times slower
        ship = cut_to_limit(
            need.ravel()[lines].astype(np.int64),
            routes.share_group[lines],
            s.on_hand[:nd].ravel(),
        )
        shipped = ship > 0
        lines, ship = lines[shipped], ship[shipped]
        # confidence only on the cells that ship
        confidence = mu.ravel()[lines] / np.maximum(upper.ravel()[lines], 1e-9)
        stores, skus = np.divmod(lines, s.n_skus)
        add_store_lines(
            plan, s, stores, skus, ship, confidence, "base-stock: below order-up-to level"
        )
        if routes.second_source.any():
            short = need.copy()
            short.ravel()[lines] -= ship
            add_second_source(plan, s, routes.second_source, short, "base-stock")
        return store_safety, position

    def _order_for_dcs(
        self,
        plan: PlanBuilder,
        s: PlanningSnapshot,
        routes: _Routes,
        terms: list[ForecastDay],
        days: IntArray,
        z: float,
        store_safety: FloatArray,
        store_position: IntArray,
    ) -> None:
        """Order each DC x SKU up to its echelon level: the demand of the DC and its stores over
        lead time + transit (``days``), pooled safety, plus the stores' own safety stock."""
        nd = s.n_dcs
        echelon_fc = [t.echelon_mean for t in terms]
        mu_e = cover_sum(echelon_fc, days)
        var_e = cover_sum([t.echelon_var for t in terms], days)
        lead_sd = s.lead_time_sd[s.sku_supplier]
        var_e += (lead_sd[None, :] * echelon_fc[0]) ** 2
        level_e = np.ceil(mu_e + z * np.sqrt(var_e) + store_safety)
        # the stores' position summed per DC: a [D, stores] @ [stores, S] product of floats
        # (BLAS; whole units, so the sums are exact), in the stores' "held" buffer (done with)
        as_float = self._buffers.get("held", store_position.shape, np.float64)
        np.copyto(as_float, store_position)
        stores_e = routes.assign @ as_float
        # open purchase orders count at the supplier's expected fill: the units it will not
        # deliver are reordered now rather than a lead time late, when the receipt falls short
        unfilled = s.on_order[:nd] * (1.0 - s.fill_rate[s.sku_supplier])
        dc_position = s.on_hand[:nd] + s.in_transit[:nd] + s.on_order[:nd]
        position_e = dc_position - unfilled + stores_e
        if self.expedite:
            position_e += self._expedite(plan, s, routes, terms, z, store_safety, stores_e)
        order = np.maximum(level_e - position_e, 0).astype(np.int64)
        conf_e = mu_e / np.maximum(level_e, 1e-9)
        add_purchases(
            plan, s, order, conf_e, "base-stock: echelon position below order-up-to level"
        )

    def _expedite(
        self,
        plan: PlanBuilder,
        s: PlanningSnapshot,
        routes: _Routes,
        terms: list[ForecastDay],
        z: float,
        store_safety: FloatArray,
        stores_e: FloatArray,
    ) -> IntArray:
        """Expedite each DC x SKU up to its level over the expedite lead time + transit, against
        the units that arrive within it (on hand, in transit, the stores', purchase orders due
        by then); returns the units expedited ``[D, S]``."""
        nd = s.n_dcs
        fast = s.expedite_lead_time[s.sku_supplier]  # [S] days
        days = np.rint(fast[None, :] + routes.mean_transit[:, None]).astype(np.int64)
        mu = cover_sum([t.echelon_mean for t in terms], days)
        var = cover_sum([t.echelon_var for t in terms], days)
        level = np.ceil(mu + z * np.sqrt(var) + store_safety)
        dcs = np.arange(nd)
        due_soon = _supply_due_within(s, dcs, fast)
        position = s.on_hand[:nd] + s.in_transit[:nd] + due_soon + stores_e
        qty = np.maximum(level - position, 0).astype(np.int64)
        _add_expedites(
            plan,
            s,
            dcs,
            qty,
            mu / np.maximum(level, 1e-9),
            "base-stock: position due within the expedite lead time below its level",
        )
        return qty

    def _order_direct(
        self, plan: PlanBuilder, s: PlanningSnapshot, routes: _Routes, z: float
    ) -> None:
        """Order each cell of a store only suppliers replenish up to its level over the
        supplier's lead time (its own safety stock, lead-time variance included); open orders
        count at the supplier's expected fill. With ``expedite``, first expedite up to the
        level over the expedite lead time, as at a DC."""
        rows = np.flatnonzero(routes.supplier_only) + s.n_dcs  # location indices
        fc = s.forecast_mean[:, rows]  # [H, n, S]
        lead = direct_lead_days(s)[None, :]
        mu = cover_sum(fc, lead)
        var = cover_sum(fc, lead, per_day=s.forecast_var)
        var += (s.lead_time_sd[s.sku_supplier][None, :] * fc[0]) ** 2
        level = np.ceil(mu + z * np.sqrt(var))
        on_order = s.on_order[rows]
        position = s.on_hand[rows] + s.in_transit[rows] + on_order
        if self.expedite:
            position = position + self._expedite_direct(plan, s, rows, fc, z)
        unfilled = on_order * (1.0 - s.fill_rate[s.sku_supplier])
        order = np.maximum(level - (position - unfilled), 0).astype(np.int64)
        at, skus = np.nonzero(order)
        plan.add(
            ActionKind.PURCHASE,
            s.sku_supplier[skus],
            rows[at],
            skus,
            order[at, skus],
            s.unit_cost[skus],
            (mu / np.maximum(level, 1e-9))[at, skus],
            "base-stock: direct-store position below order-up-to level",
        )

    def _expedite_direct(
        self, plan: PlanBuilder, s: PlanningSnapshot, rows: IntArray, fc: FloatArray, z: float
    ) -> IntArray:
        """Expedite the supplier-only store cells ``rows`` up to their level over the expedite
        lead time, against what arrives within it; returns the units expedited ``[n, S]``."""
        fast = s.expedite_lead_time[s.sku_supplier]  # [S] days
        mu = cover_sum(fc, fast[None, :])
        level = np.ceil(mu + z * np.sqrt(cover_sum(fc, fast[None, :], per_day=s.forecast_var)))
        position = s.on_hand[rows] + s.in_transit[rows] + _supply_due_within(s, rows, fast)
        qty = np.maximum(level - position, 0).astype(np.int64)
        _add_expedites(
            plan,
            s,
            rows,
            qty,
            mu / np.maximum(level, 1e-9),
            "base-stock: direct-store position due within the expedite lead time below its level",
        )
        return qty


def _supply_due_within(s: PlanningSnapshot, rows: IntArray, fast: IntArray) -> FloatArray:
    """``[len(rows), S]`` units of purchase and expedite orders to the locations ``rows`` due
    within each SKU's expedite lead time ``fast`` (what an expedite today would arrive with)."""
    row_of = np.full(s.n_locations, -1, np.int64)
    row_of[rows] = np.arange(len(rows))
    due_soon = np.zeros((len(rows), s.n_skus))
    for ship in s.inbound:
        r = row_of[ship.destination]
        if ship.kind in ("purchase", "expedite") and r >= 0:
            arrives = ship.due_day <= s.day + fast[ship.sku]
            np.add.at(due_soon[r], ship.sku[arrives], ship.qty[arrives])
    return due_soon


def _add_expedites(
    plan: PlanBuilder,
    s: PlanningSnapshot,
    rows: IntArray,
    qty: IntArray,
    cover: FloatArray,
    reason: str,
) -> None:
    """Expedite lines for the positive cells of ``qty`` ``[len(rows), S]`` (location ``rows``)."""
    at, skus = np.nonzero(qty)
    plan.add(
        ActionKind.EXPEDITE,
        s.sku_supplier[skus],
        rows[at],
        skus,
        qty[at, skus],
        s.unit_cost[skus] + s.expedite_premium[skus],
        cover[at, skus],
        reason,
    )


def add_second_source(
    plan: PlanBuilder, s: PlanningSnapshot, both: BoolArray, short: FloatArray, policy: str
) -> None:
    """Order from the supplier, direct to the store, what a store supplied by its DC and by
    suppliers (``both``) needs but its DC could not ship today (``short`` ``[stores, S]``)."""
    stores, skus = np.nonzero((short > 0) & both[:, None])
    plan.add(
        ActionKind.PURCHASE,
        s.sku_supplier[skus],
        stores + s.n_dcs,
        skus,
        short[stores, skus].astype(np.int64),
        s.unit_cost[skus],
        0.5,
        f"{policy}: DC short, ordered direct from the supplier",
    )


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
    dc_usage = usage[:nd] + replenishing_matrix(s) @ usage[nd:]
    lead = s.lead_time_mean[s.sku_supplier][None, :]
    minimum = np.empty_like(usage)
    minimum[nd:] = np.ceil(usage[nd:] * (transit[:, None] + safety_days))
    if s.has_direct:  # a store only suppliers replenish covers the supplier's lead time
        only = np.flatnonzero(supplier_only(s)[nd:]) + nd
        minimum[only] = np.ceil(usage[only] * (lead + safety_days))
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
    direct_need = None
    if s.has_direct:  # the stores only suppliers replenish order from them, not the DC
        only = supplier_only(s)[nd:]
        direct_need = np.where(only[:, None], need, 0)
        need = np.where(only[:, None], 0, need)
    ship = fair_share(need, s.on_hand[:nd], s.serving_dc[nd:])
    add_store_shipments(plan, s, ship, confidence, f"{why}: store position at or below min")
    order = points.order(position[:nd], slice(0, nd))
    add_purchases(plan, s, order, confidence, f"{why}: DC position at or below min")
    if direct_need is not None:
        direct_order = np.vstack([np.zeros_like(order), direct_need])  # [L, S]
        add_purchases(
            plan, s, direct_order, confidence, f"{why}: direct-store position at or below min"
        )
        both = (direct(s) & dc_replenished(s))[nd:]
        add_second_source(plan, s, both, (need - ship).astype(np.float64), why)
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

    def start(self, context: RunContext) -> None:
        """Forget the order points of an earlier run: they are recalculated on the first day."""
        self._points = None
        self._computed_on = -(10**9)

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

    def start(self, context: RunContext) -> None:
        """Forget the plan frozen in an earlier run (it is frozen from the run's first day)."""
        self._frozen = None

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
