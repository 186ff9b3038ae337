"""The optimizer policy: a rolling-horizon LP (Pyomo model, HiGHS) solved every tick (MPC).

Each tick the snapshot becomes array data for :class:`ReplenishmentModel` (built once per run and
updated in place), the LP plans orders, expedites, DC->store shipments and transfers over the
horizon, and only day 0's decisions are returned, each with a reason and a confidence.

Uncertainty: the LP plans against mean demand plus a safety stock ``z * sigma`` (``z`` from
``service_quantile``; NB variance ``mu + mu^2/k`` from the snapshot) added as extra demand on the
first day each decision can affect: at a store on the day a shipment sent today arrives (sigma of
demand over the lane's transit days), at a DC on the day a purchase placed today arrives (pooled
sigma of the demand the DC serves over lead time + mean store transit, plus lead-time variance).
So the day-0 decisions cover a ``service_quantile`` of demand until the next decision can land,
as a base-stock policy would, while the LP handles scarcity, timing, expedites and transfers.

Failures (infeasible, time limit, numerical trouble, an error while building) are normal: the
affected SKUs fall back to :class:`~policies.heuristics.BaseStockPolicy` for that tick,
the lines' reasons start with ``"fallback: "`` and :attr:`OptimizerPolicy.last_failure` says why.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from promotwin.optimization import (
    UNLIMITED,
    LaneKind,
    NetworkStructure,
    ReplenishmentModel,
    SolveResult,
    TerminationStatus,
    TickInputs,
    make_sku_groups,
)
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
from promotwin.policies.forecast_terms import serving_matrix
from promotwin.policies.heuristics import BaseStockPolicy
from promotwin.policies.supply import dc_replenished, direct, supplier_only


@dataclass(frozen=True)
class SolverFailure:
    """A tick on which the optimizer fell back, for governance and the audit log."""

    day: int
    status: TerminationStatus
    message: str
    n_skus: int  # SKUs that fell back to base-stock


@dataclass
class OptimizerPolicy:
    """Rolling-horizon LP replenishment, allocation, transfer and expedite policy.

    ``max_cells_per_group``: SKUs are solved in groups of at most this many location x SKU
    cells (capacity shared by volume); ``None`` solves one monolithic LP. ``max_store_transfers``
    keeps each store's cheapest store->store lanes only (candidate transfer lanes).
    ``workers`` threads solve the groups (the plans do not depend on it).
    """

    name: str = "optimizer"
    horizon_days: int = 14
    service_quantile: float = 0.98
    max_cells_per_group: int | None = 4000
    time_limit: float = 20.0  # seconds per subproblem
    workers: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))
    crash_start: bool = True  # the first solve starts from a representative SKU's basis
    transfer_epochs: int = 3
    max_store_transfers: int = 2
    store_holding_factor: float = 1.05
    fallback_service_level: float = 0.95
    # a fractional LP quantity rounds up from this fraction of a unit: the fractions come from
    # the safety stocks (a demand quantile, which base-stock rounds up too); rounding them to
    # the nearest unit starved slow movers (appliance_promo, seed 0: total cost 801 k at 0.5,
    # 668 k at 0.2, 623 k at 0.01); below 1 % of a unit is solver noise
    round_up_from: float = 0.01
    last_failure: SolverFailure | None = field(default=None, init=False)
    failures: list[SolverFailure] = field(default_factory=list, init=False)
    last_result: SolveResult | None = field(default=None, init=False, repr=False)
    _model: ReplenishmentModel | None = field(default=None, init=False, repr=False)
    _model_key: tuple[object, ...] = field(default=(), init=False, repr=False)

    def start(self, context: RunContext) -> None:
        """Forget an earlier run: its failures, its last solve and the model (whose warm start
        would otherwise carry the last run's basis into this one's first solve)."""
        self.last_failure = None
        self.failures = []
        self.last_result = None
        if self._model is not None:
            self._model.close()
        self._model = None
        self._model_key = ()

    def decide(self, snapshot: PlanningSnapshot) -> Plan:
        self.last_failure = None
        s = snapshot
        try:
            net, lanes = network_structure(
                s, self.horizon_days, self.transfer_epochs, self.max_store_transfers
            )
            model = self._get_model(net, s)
            inputs = tick_inputs(s, net, lanes, self.service_quantile, self.store_holding_factor)
            result = model.solve(inputs)
        except Exception as exc:  # noqa: BLE001 - any failure falls back and is recorded
            return self._fallback(s, np.arange(s.n_skus), TerminationStatus.ERROR, repr(exc))
        self.last_result = result
        plan = optimizer_plan(self.name, s, net, lanes, inputs, result, self.round_up_from)
        plan = with_forecast_notes(plan, s)  # the fallback's base-stock lines have theirs
        if len(result.failed_skus):
            fb = self._fallback(s, result.failed_skus, result.status, result.message)
            plan = Plan.concat(self.name, plan, fb)
        return plan

    def _get_model(self, net: NetworkStructure, s: PlanningSnapshot) -> ReplenishmentModel:
        key = (net.key(), tuple(s.sku_supplier.tolist()), self.max_cells_per_group)
        if self._model is None or key != self._model_key:
            groups = (
                None
                if self.max_cells_per_group is None
                else make_sku_groups(s.sku_supplier, s.n_locations, self.max_cells_per_group)
            )
            if self._model is not None:
                self._model.close()
            self._model = ReplenishmentModel(
                net,
                s.sku_supplier,
                groups,
                time_limit=self.time_limit,
                workers=self.workers,
                crash_start=self.crash_start,
            )
            self._model_key = key
        self._model.set_time_limit(self.time_limit)
        return self._model

    def _fallback(
        self, s: PlanningSnapshot, skus: IntArray, status: TerminationStatus, message: str
    ) -> Plan:
        failure = SolverFailure(s.day, status, message, len(skus))
        self.last_failure = failure
        self.failures.append(failure)
        prefix = f"fallback: optimizer {status.value}"
        base = BaseStockPolicy(service_level=self.fallback_service_level).decide(s)
        base = base.select(np.isin(base.sku, skus))
        return dataclasses.replace(
            base, policy=self.name, reasons=tuple(f"{prefix}; {r}" for r in base.reasons)
        )


@dataclass(frozen=True)
class LaneTable:
    """The usable lanes of the snapshot, aligned with the model's lane index."""

    o: IntArray
    d: IntArray
    transit: IntArray
    cost: FloatArray
    capacity: FloatArray
    kind: IntArray  # LaneKind


def usable_lanes(s: PlanningSnapshot, max_store_transfers: int) -> LaneTable:
    """Serving lanes (DC->its stores), DC<->DC lanes and each store's cheapest store lanes."""
    lanes = s.lanes
    nd = s.n_dcs
    o = lanes["o"].to_numpy(np.int64)
    d = lanes["d"].to_numpy(np.int64)
    cost = lanes["cost_per_unit"].to_numpy(np.float64)
    transit = np.maximum(lanes["transit_days"].to_numpy(np.int64), 1)
    shipment = (o < nd) & (d >= nd) & (s.serving_dc[d] == o)
    if s.has_direct:  # no DC ships to a store only suppliers replenish
        shipment &= dc_replenished(s)[d]
    dc_dc = (o < nd) & (d < nd) & (o != d)
    store_store = (o >= nd) & (d >= nd) & (o != d)
    keep_ss = np.zeros(len(o), bool)
    if store_store.any() and max_store_transfers > 0:
        idx = np.flatnonzero(store_store)
        order = idx[np.lexsort((transit[idx], cost[idx], o[idx]))]
        first = np.searchsorted(o[order], o[order], side="left")
        rank = np.arange(len(order)) - first
        keep_ss[order[rank < max_store_transfers]] = True
    use = shipment | dc_dc | keep_ss
    kind = np.where(shipment, LaneKind.SHIPMENT, LaneKind.TRANSFER).astype(np.int64)
    return LaneTable(
        o=o[use],
        d=d[use],
        transit=transit[use],
        cost=cost[use],
        capacity=lanes["capacity"].to_numpy(np.float64)[use],
        kind=kind[use],
    )


def network_structure(
    s: PlanningSnapshot, horizon_days: int, transfer_epochs: int, max_store_transfers: int
) -> tuple[NetworkStructure, LaneTable]:
    """What fixes the LP's shape, from the snapshot."""
    lanes = usable_lanes(s, max_store_transfers)
    T = max(1, min(horizon_days, s.horizon))
    net = NetworkStructure(
        n_locations=s.n_locations,
        n_dcs=s.n_dcs,
        horizon=T,
        lane_o=lanes.o,
        lane_d=lanes.d,
        lane_transit=lanes.transit,
        lane_kind=lanes.kind,
        lane_limited=lanes.capacity < UNLIMITED,
        lead_time=supplier_lead_days(s),
        expedite_lead_time=np.maximum(np.asarray(s.expedite_lead_time, np.int64), 1),
        fill_rate=np.clip(np.asarray(s.fill_rate, np.float64), 0.05, 1.0),
        supplier_limited=np.asarray(s.supplier_capacity) < UNLIMITED,
        transfer_epochs=transfer_epochs,
        direct_stores=np.flatnonzero(direct(s)),
    )
    return net, lanes


def replenishing_all(s: PlanningSnapshot) -> FloatArray:
    """``[D, L]`` 0/1: each DC itself and the stores it replenishes (not the stores only
    suppliers replenish)."""
    assign = serving_matrix(s.serving_dc, s.n_dcs)
    if s.has_direct:
        assign[:, supplier_only(s)] = 0.0
    return assign


def supplier_lead_days(s: PlanningSnapshot) -> IntArray:
    """Planned lead time per supplier: the mean rounded to whole days, at least one."""
    return np.maximum(np.rint(np.asarray(s.lead_time_mean, np.float64)), 1).astype(np.int64)


def store_transit(s: PlanningSnapshot, lanes: LaneTable) -> IntArray:
    """Transit days of every location's serving lane ``[L]`` (1 for DCs and unlisted stores)."""
    transit = np.ones(s.n_locations, np.int64)
    ship = lanes.kind == LaneKind.SHIPMENT
    transit[lanes.d[ship]] = lanes.transit[ship]
    return transit


def pipeline(s: PlanningSnapshot, T: int) -> FloatArray:
    """Expected arrivals ``[T+1, L, S]`` by day offset k=1..T (k=0 unused, zero).

    Open purchase/expedite quantities are scaled by the supplier's fill rate; overdue lines are
    expected tomorrow. Units in ``in_transit``/``on_order`` without inbound detail (an ERP that
    only reports totals) are expected after the lane transit / supplier lead time.
    """
    L, S = s.on_hand.shape
    arr = np.zeros((T + 1, L, S))
    fill = np.clip(np.asarray(s.fill_rate, np.float64), 0.0, 1.0)
    listed = np.zeros((L, S))
    for sh in s.inbound:
        qty = np.asarray(sh.qty, np.float64)
        sku = np.asarray(sh.sku, np.int64)
        np.add.at(listed[sh.destination], sku, qty)
        k = max(1, int(sh.due_day) - s.day)
        if k > T:
            continue
        if sh.kind in ("purchase", "expedite"):
            qty = qty * fill[sh.origin]
        np.add.at(arr[k, sh.destination], sku, qty)
    residual = np.maximum(s.in_transit + s.on_order - listed, 0.0)
    if residual.any():
        days = np.ones((L, S), np.int64)
        days[: s.n_dcs] = supplier_lead_days(s)[s.sku_supplier][None, :]
        days[direct(s)] = supplier_lead_days(s)[s.sku_supplier][None, :]
        days = np.minimum(days, T)
        ll, ss = np.nonzero(residual)
        np.add.at(arr, (days[ll, ss], ll, ss), residual[ll, ss])
    return arr


def safety_stock(
    s: PlanningSnapshot, lanes: LaneTable, T: int, z: float
) -> tuple[FloatArray, IntArray]:
    """Safety stock ``[L, S]`` (units) and the demand index it is planned on ``[L, S]``.

    Store: ``z * sqrt(sum_{h<tau} var[h])`` on day tau (a shipment sent today arrives then).
    DC: ``z * sqrt(sum_{h<lead+tau_mean} var_pool[h] + (sd_lead * mu_pool)^2)`` on day ``lead``,
    pooled over the locations the DC serves (its ecommerce and its stores), plus the safety
    stock of the stores it serves. A store only suppliers replenish is in no DC's pool: its own
    ``z * sqrt(sum_{h<lead} var[h] + (sd_lead * mu)^2)`` on day ``lead``, as a DC's.
    """
    mu = np.maximum(s.forecast_mean[:T], 0.0)
    var = s.forecast_var(mu)
    cumvar = np.cumsum(var, axis=0)  # [T, L, S]
    L = s.n_locations
    nd = s.n_dcs
    tau = np.minimum(store_transit(s, lanes), T)  # [L]
    ss = np.zeros((L, s.n_skus))
    day = np.zeros((L, s.n_skus), np.int64)
    ss[nd:] = z * np.sqrt(cumvar[tau[nd:] - 1, np.arange(nd, L)])
    day[nd:] = (tau[nd:] - 1)[:, None]
    assign = replenishing_all(s)
    lead = supplier_lead_days(s)[s.sku_supplier]  # [S]
    lead_sd = np.asarray(s.lead_time_sd, np.float64)[s.sku_supplier]
    if s.has_direct:  # a store only suppliers replenish: its own buffer over the lead time
        only = np.flatnonzero(supplier_only(s))
        window = np.minimum(lead, T) - 1  # [S]
        v_only = cumvar[window[None, :], only[:, None], np.arange(s.n_skus)[None, :]]
        ss[only] = z * np.sqrt(v_only + (lead_sd[None, :] * mu[0, only]) ** 2)
        day[only] = window[None, :]
    mean_tau = (assign @ tau) / np.maximum(assign.sum(axis=1), 1)  # [D]
    window = np.minimum(np.rint(lead[None, :] + mean_tau[:, None]).astype(np.int64), T)  # [D, S]
    pooled_var = np.einsum("dl,hls->hds", assign, cumvar)  # [T, D, S]
    pooled_mu = assign @ mu[0]  # [D, S]
    v = np.take_along_axis(pooled_var, (window - 1)[None], axis=0)[0]
    # each store holds its own safety stock, far more than the pooled DC sigma covers: the DC
    # buys it too, or the plan runs the stores' buffers down and the DCs stay short (as the
    # echelon base-stock level does)
    held_at_stores = assign[:, nd:] @ ss[nd:]
    ss[:nd] = z * np.sqrt(v + (lead_sd[None, :] * pooled_mu) ** 2) + held_at_stores
    day[:nd] = np.minimum(lead, T)[None, :] - 1
    return ss, day


def tick_inputs(
    s: PlanningSnapshot,
    net: NetworkStructure,
    lanes: LaneTable,
    service_quantile: float,
    store_holding_factor: float,
) -> TickInputs:
    """The tick's data for the model: planned demand, supply, capacities and costs."""
    T = net.horizon
    z = float(norm.ppf(min(max(service_quantile, 0.5), 0.9999)))
    demand = np.maximum(s.forecast_mean[:T], 0.0).copy()
    if z > 0:
        ss, day = safety_stock(s, lanes, T, z)
        ll, kk = np.indices(ss.shape)
        np.add.at(demand, (day.ravel(), ll.ravel(), kk.ravel()), ss.ravel())
    supply = pipeline(s, T)
    supply[0] = s.on_hand
    V = len(s.supplier_ids)
    return TickInputs(
        demand=demand,
        supply=supply,
        dc_throughput=np.repeat(np.asarray(s.dc_throughput, np.float64)[:, None], T, axis=1),
        lane_capacity=np.repeat(lanes.capacity[:, None], T, axis=1),
        supplier_capacity=np.repeat(
            np.asarray(s.supplier_capacity, np.float64).reshape(V, 1), T, axis=1
        ),
        lane_cost=lanes.cost,
        lost_sale_cost=np.asarray(s.lost_sale_cost, np.float64),
        holding_cost=np.asarray(s.holding_cost, np.float64),
        expedite_premium=np.asarray(s.expedite_premium, np.float64),
        sku_supplier=np.asarray(s.sku_supplier, np.int64),
        store_holding_factor=store_holding_factor,
    )


@dataclass(frozen=True)
class _Outlook:
    """Per-cell projections without any new action, for reasons and confidence."""

    stockout_day: IntArray  # [L, S] first day offset (1..T) with projected stock < 0; 0 = none
    promoted: BoolArray  # [L, S] a promotion touches the cell (or a cell it serves) in the horizon
    cum_mu: FloatArray  # [T, L, S] cumulative mean demand (echelon at DCs)
    cum_sd: FloatArray  # [T, L, S]
    cum_supply: FloatArray  # [T, L, S] on hand + arrivals by each day (echelon at DCs)


def outlook(s: PlanningSnapshot, inputs: TickInputs) -> _Outlook:
    T = inputs.demand.shape[0]
    nd = s.n_dcs
    mu = np.maximum(s.forecast_mean[:T], 0.0)
    cum_mu = np.cumsum(mu, axis=0)
    cum_var = np.cumsum(s.forecast_var(mu), axis=0)
    cum_supply = s.on_hand[None].astype(np.float64) + np.cumsum(inputs.supply[1:], axis=0)
    # stores: own stock; DCs: echelon (its own ecommerce plus what its stores will need)
    store_short = np.maximum(cum_mu[:, nd:] - cum_supply[:, nd:], 0.0)  # [T, stores, S]
    assign = replenishing_all(s)[:, nd:]  # [D, stores]
    proj = cum_supply - cum_mu
    proj[:, :nd] -= np.einsum("dl,tls->tds", assign, store_short)
    neg = proj < -1e-9
    stockout = np.where(neg.any(axis=0), neg.argmax(axis=0) + 1, 0)
    promoted = np.zeros(s.on_hand.shape, bool)
    if len(s.promotions):
        lo, hi = s.day + 1, s.day + T
        starts = s.promotions["start_day"].to_numpy(np.int64)
        ends = s.promotions["end_day"].to_numpy(np.int64)
        for pid, start, end in zip(s.promotions["id"].astype(str), starts, ends, strict=True):
            cells = s.promotion_cells.get(pid)
            if start <= hi and end >= lo and cells is not None:
                promoted |= cells
    promoted[:nd] |= (replenishing_all(s) @ promoted.astype(float)) > 0
    ech_mu, ech_var = cum_mu.copy(), cum_var.copy()
    ech_mu[:, :nd] += np.einsum("dl,tls->tds", assign, cum_mu[:, nd:])
    ech_var[:, :nd] += np.einsum("dl,tls->tds", assign, cum_var[:, nd:])
    ech_supply = cum_supply.copy()
    ech_supply[:, :nd] += np.einsum("dl,tls->tds", assign, cum_supply[:, nd:])
    return _Outlook(stockout, promoted, ech_mu, np.sqrt(ech_var), ech_supply)


def need_probability(o: _Outlook, dest: IntArray, sku: IntArray, days: IntArray) -> FloatArray:
    """P(demand through the arrival day exceeds what the cell has by then, without the line)."""
    T = o.cum_mu.shape[0]
    h = np.clip(days, 1, T) - 1
    mu = o.cum_mu[h, dest, sku]
    sd = np.maximum(o.cum_sd[h, dest, sku], 1e-9)
    have = o.cum_supply[h, dest, sku]
    return np.asarray(norm.sf((have + 0.5 - mu) / sd), np.float64)


def _reason(kind: ActionKind, promo: bool, days: int, stockout: int, T: int, lead: int) -> str:
    driver = "promotion uplift" if promo else "forecast demand"
    risk = (
        f"projected stockout day {stockout}"
        if stockout > 0
        else f"safety stock (no stockout projected within {T} days)"
    )
    if kind == ActionKind.PURCHASE:
        return f"{driver} + {days}-day lead time; {risk}"
    if kind == ActionKind.EXPEDITE:
        return f"{driver} + {days}-day expedite (regular lead time {lead} days too late); {risk}"
    if kind == ActionKind.SHIPMENT:
        return f"{driver} + {days}-day transit; {risk}"
    return f"transfer beats waiting for supply: {driver} + {days}-day transit; {risk}"


def _add_lines(
    plan: PlanBuilder,
    o: _Outlook,
    T: int,
    kind: ActionKind,
    origin: IntArray,
    dest: IntArray,
    sku: IntArray,
    qty: IntArray,
    unit_cost: FloatArray,
    days: IntArray,
    lead: IntArray,
) -> None:
    keep = qty > 0
    if not keep.any():
        return
    origin, dest, sku, qty = origin[keep], dest[keep], sku[keep], qty[keep]
    unit_cost, days, lead = unit_cost[keep], days[keep], lead[keep]
    conf = need_probability(o, dest, sku, days)
    promo = o.promoted[dest, sku].astype(np.int64)
    stock = o.stockout_day[dest, sku]
    # one reason per (promoted, days, stockout day, lead time), in that lexicographic order:
    # the four small non-negative integers packed into one code (np.unique on rows is slow)
    fields = np.stack([promo, days, stock, lead]).astype(np.int64)
    base = int(fields.max()) + 1
    code = ((fields[0] * base + fields[1]) * base + fields[2]) * base + fields[3]
    uniq, first, inv = np.unique(code, return_index=True, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(len(uniq) + 1))
    for i, j in enumerate(first.tolist()):
        m = order[bounds[i] : bounds[i + 1]]
        p, dd, so, ld = fields[:, j].tolist()
        text = _reason(kind, bool(p), int(dd), int(so), T, int(ld))
        plan.add(kind, origin[m], dest[m], sku[m], qty[m], unit_cost[m], conf[m], text)


def optimizer_plan(
    policy: str,
    s: PlanningSnapshot,
    net: NetworkStructure,
    lanes: LaneTable,
    inputs: TickInputs,
    r: SolveResult,
    round_up_from: float = 0.01,
) -> Plan:
    """Round the LP's day-0 decisions to units and explain each line."""
    shift = 1.0 - round_up_from
    plan = PlanBuilder(policy)
    T = net.horizon
    o = outlook(s, inputs)
    lead_v = net.lead_time
    moq = np.asarray(s.moq, np.float64)
    for kind, values, days_v in (
        (ActionKind.PURCHASE, r.order, lead_v),
        (ActionKind.EXPEDITE, r.expedite, net.expedite_lead_time),
    ):
        q = np.floor(values + shift - 1e-6).astype(np.int64)
        dcs, skus = np.nonzero(q > 0)
        qty = q[dcs, skus]
        v = s.sku_supplier[skus]
        qty = np.maximum(qty, np.ceil(moq[v]).astype(np.int64))  # MOQ: round small lines up
        cost = s.unit_cost[skus] + (s.expedite_premium[skus] if kind == ActionKind.EXPEDITE else 0)
        _add_lines(plan, o, T, kind, v, dcs, skus, qty, cost, days_v[v], lead_v[v])
    if r.direct is not None:  # purchase orders into the stores suppliers deliver to
        q = np.floor(r.direct + shift - 1e-6).astype(np.int64)
        stores, skus = np.nonzero(q > 0)
        v = s.sku_supplier[skus]
        qty = np.maximum(q[stores, skus], np.ceil(moq[v]).astype(np.int64))
        kind = ActionKind.PURCHASE
        _add_lines(plan, o, T, kind, v, stores, skus, qty, s.unit_cost[skus], lead_v[v], lead_v[v])
    q = np.floor(r.move + shift - 1e-6).astype(np.int64)  # [A, S]
    a, skus = np.nonzero(q > 0)
    qty = q[a, skus]
    origin = lanes.o[a]
    flat = origin * s.n_skus + skus
    qty = cut_to_limit(qty, flat, np.maximum(s.on_hand, 0).ravel())  # rounding never overdraws
    for kind, lk in (
        (ActionKind.SHIPMENT, LaneKind.SHIPMENT),
        (ActionKind.TRANSFER, LaneKind.TRANSFER),
    ):
        m = lanes.kind[a] == lk
        _add_lines(
            plan,
            o,
            T,
            kind,
            origin[m],
            lanes.d[a[m]],
            skus[m],
            qty[m],
            lanes.cost[a[m]],
            lanes.transit[a[m]],
            lanes.transit[a[m]],
        )
    return plan.build()
