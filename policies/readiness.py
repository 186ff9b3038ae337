"""Readiness of a planned promotion, from a ``PlanningSnapshot``: can the network serve its demand
at an upper quantile, where and when does it fall short, and which mitigation helps how much.

Per DC network (the DC and the stores it replenishes; a store only suppliers replenish is a network
of its own, its supply the orders placed direct with the supplier) and promoted SKU, for each day
``t`` from tomorrow to the promotion's last day: cumulative demand at quantile ``q`` (gamma matched
to the negative-binomial variance plus the uplift's own uncertainty, a log-normal factor with sd
``uplift_log_sd`` shared by the whole promotion x SKU) against supply by ``t`` = on hand + inbound
due by ``t`` + what a new order placed today can deliver by ``t`` (supplier lead time at quantile
``q``, capped by supplier capacity). Two more checks: DC outbound throughput over the window, and
each store's stock until a shipment dispatched today can arrive (allocation timing).

Score = 100 x (1 - units short / units of demand at ``q``). Every mitigation is applied to a
copy of the snapshot and scored again by the same function: its effect is measured, not asserted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from promotwin.policies.contract import (
    BoolArray,
    FloatArray,
    InboundShipment,
    IntArray,
    PlanningSnapshot,
)
from promotwin.policies.supply import supplier_only

EXPEDITE_TOP = 5  # expedite the largest shortfalls
DEPTH_STEP = 0.10  # "limit depth" lowers the discount by this much in short networks
SHIFT_DAYS = (3, 7)


@dataclass(frozen=True)
class Reason:
    kind: str  # stock | throughput | allocation
    where: str  # DC network or store
    sku: str
    units: float
    day: int | None
    text: str


@dataclass(frozen=True)
class Mitigation:
    action: str  # expedite | rebalance | limit_depth | cap_ecommerce | move_start
    detail: str
    score_after: float
    gain: float
    cost: float


@dataclass(frozen=True)
class ReadinessReport:
    promotion: str
    score: float
    quantile: float
    demand_units: float  # at the quantile, promoted SKUs, tomorrow .. promotion end
    short_units: float
    reasons: tuple[Reason, ...]
    mitigations: tuple[Mitigation, ...] = ()

    def summary(self) -> str:
        lines = [f"{self.promotion}: readiness {self.score:.0f}/100 at P{self.quantile * 100:.0f}"]
        lines += [f"  - {r.text}" for r in self.reasons]
        lines += [
            f"  * {m.action}: {m.detail} -> {m.score_after:.0f} ({m.gain:+.0f})"
            for m in self.mitigations
        ]
        return "\n".join(lines)


def network_of(s: PlanningSnapshot) -> IntArray:
    """``[L]`` the network each location is assessed in: its DC's, or for a store only
    suppliers replenish, its own (its index)."""
    net = s.serving_dc
    if not s.has_direct:
        return net
    only = supplier_only(s)
    return np.where(only, np.arange(s.n_locations), net)


def _gamma_q(mean: FloatArray, var: FloatArray, q: float) -> FloatArray:
    """Quantile of a gamma with the given mean and variance (0 where the mean is 0)."""
    safe_m = np.maximum(mean, 1e-12)
    shape = safe_m**2 / np.maximum(var, 1e-12)
    out = stats.gamma.ppf(q, shape, scale=safe_m / shape)
    return np.where(mean > 0, out, 0.0)


def _promo_row(s: PlanningSnapshot, promotion: str) -> tuple[int, int]:
    p = s.promotions
    row = p[p["id"] == promotion]
    if row.empty:
        raise ValueError(
            f"no promotion {promotion!r}; known: {', '.join(map(str, p['id'])) or 'none'}"
        )
    return int(row["start_day"].iloc[0]), int(row["end_day"].iloc[0])


def assess(
    s: PlanningSnapshot,
    promotion: str,
    quantile: float = 0.8,
    uplift_log_sd: float = 0.25,
) -> ReadinessReport:
    """Score ``promotion`` on snapshot ``s`` (no mitigations; see :func:`readiness`)."""
    start, end = _promo_row(s, promotion)
    cells = s.promotion_cells[promotion]
    first = s.day + 1
    n_days = min(end - s.day, s.horizon)
    if n_days < 1:
        return ReadinessReport(promotion, 100.0, quantile, 0.0, 0.0, ())
    f = s.forecast_mean[:n_days]  # [T, L, S]
    skus = np.nonzero(cells.any(axis=0))[0]
    nd = s.n_dcs
    net = network_of(s)  # [L] -> the DC, or a store supplied by suppliers only
    z = float(stats.norm.ppf(quantile))
    days_abs = first + np.arange(n_days)
    in_promo = (days_abs >= start) & (days_abs <= end)
    extra = np.where(
        cells[None] & in_promo[:, None, None], np.maximum(f - s.baseline_mean[None], 0.0), 0.0
    )
    reasons: list[Reason] = []
    demand_total = 0.0
    short_total = 0.0
    k = s.forecast_dispersion
    inbound_due = np.zeros((n_days, s.n_locations, s.n_skus))
    for sh in s.inbound:
        h = min(max(sh.due_day - first, 0), n_days)
        if h < n_days:
            np.add.at(inbound_due[h, sh.destination], sh.sku, sh.qty)
    lead_q = s.lead_time_mean + z * s.lead_time_sd
    for d in np.unique(net).tolist():
        members = net == d
        for sku in skus:
            mu = f[:, members, sku]  # [T, members]
            mean_t = np.cumsum(mu.sum(axis=1))
            nb_var = np.cumsum((mu + mu**2 / k).sum(axis=1))
            e_t = np.cumsum(extra[:, members, sku].sum(axis=1))
            var_t = nb_var + e_t**2 * np.expm1(uplift_log_sd**2)
            q_t = _gamma_q(mean_t, var_t, quantile)
            if q_t[-1] <= 0:
                continue
            v = int(s.sku_supplier[sku])
            supply_t = s.on_hand[members, sku].sum() + np.cumsum(
                inbound_due[:, members, sku].sum(axis=1)
            )
            lead = float(lead_q[v])
            can_order = np.maximum(days_abs - (s.day + np.ceil(lead)) + 1, 0)
            new_t = np.minimum(can_order * s.supplier_capacity[v], 1e12)
            short_t = np.maximum(q_t - supply_t - new_t, 0.0)
            demand_total += float(q_t[-1])
            short = float(short_t.max())
            if short >= 1:
                t_first = int(np.argmax(short_t > 0))
                day = int(days_abs[t_first])
                to_launch = start - s.day
                why = (
                    f"; supplier {s.supplier_ids[v]} lead time {lead:.0f} days > "
                    f"{to_launch} days to launch"
                    if lead > to_launch
                    else ""
                )
                what = "network" if d < nd else "(supplied direct)"
                reasons.append(
                    Reason(
                        "stock",
                        s.location_ids[d],
                        s.sku_ids[sku],
                        short,
                        day,
                        f"{s.location_ids[d]} {what} short {short:,.0f} units of "
                        f"{s.sku_ids[sku]} by {_date(s, day)} at the {quantile * 100:.0f}th "
                        f"percentile{why}",
                    )
                )
                short_total += short
        if d >= nd:  # a store supplied direct: no DC outbound, no allocation to time
            continue
        # DC outbound: store replenishment of every SKU + ecommerce, over the window
        stores = members.copy()
        stores[:nd] = False
        need_store = np.maximum(
            f[:, stores].sum(axis=(0, 1))
            - s.on_hand[stores].sum(axis=0)
            - s.in_transit[stores].sum(axis=0),
            0.0,
        ).sum()
        need = float(need_store + f[:, d].sum())
        cap = float(s.dc_throughput[d]) * n_days
        if need > cap * 1.0 + 1:
            units = need - cap
            reasons.append(
                Reason(
                    "throughput",
                    s.location_ids[d],
                    "",
                    units,
                    None,
                    f"{s.location_ids[d]} must ship {need / n_days:,.0f} units/day but can ship "
                    f"{cap / n_days:,.0f}/day over the next "
                    f"{n_days} day{'' if n_days == 1 else 's'}",
                )
            )
            short_total += units
    # allocation timing: promoted cells of each store until today's shipment can arrive
    transit = {int(d): int(t) for d, t in zip(s.lanes["d"], s.lanes["transit_days"], strict=True)}
    for store in range(nd, s.n_locations):
        if net[store] == store:  # supplied by suppliers only: no shipment to wait for
            continue
        t = min(transit.get(store, 1), n_days)
        mu = f[:t, store][:, skus]
        q = _gamma_q(mu.sum(axis=0), (mu + mu**2 / k).sum(axis=0), quantile)
        have = s.on_hand[store, skus] + s.in_transit[store, skus]
        gap = np.maximum(q - have, 0.0)
        units = float(gap.sum())
        if units >= 1 and start - s.day <= t:
            worst = int(skus[np.argmax(gap)])
            reasons.append(
                Reason(
                    "allocation",
                    s.location_ids[store],
                    s.sku_ids[worst],
                    units,
                    int(first + t - 1),
                    f"{s.location_ids[store]} needs {units:,.0f} more units of promoted SKUs "
                    f"before a shipment can arrive ({t} days transit, launch in "
                    f"{start - s.day} days)",
                )
            )
            short_total += units
    score = 100.0 if demand_total <= 0 else 100.0 * max(0.0, 1.0 - short_total / demand_total)
    reasons.sort(key=lambda r: -r.units)
    return ReadinessReport(promotion, score, quantile, demand_total, short_total, tuple(reasons))


# -- mitigations ------------------------------------------------------------------------------


def _with_inbound(s: PlanningSnapshot, extra: Sequence[InboundShipment]) -> PlanningSnapshot:
    on_order = s.on_order.copy()
    in_transit = s.in_transit.copy()
    for sh in extra:
        target = on_order if sh.kind in ("purchase", "expedite") else in_transit
        np.add.at(target[sh.destination], sh.sku, sh.qty)
    return dataclasses.replace(
        s, inbound=(*s.inbound, *extra), on_order=on_order, in_transit=in_transit
    )


def _scaled(s: PlanningSnapshot, factor: FloatArray) -> PlanningSnapshot:
    return dataclasses.replace(s, forecast_mean=s.forecast_mean * factor)


@dataclass(frozen=True)
class _Candidate:
    """A mitigation before it is scored: the snapshot as it would be after the action."""

    action: str
    detail: str
    snapshot: PlanningSnapshot
    cost: float  # currency


@dataclass(frozen=True)
class _Shortfalls:
    """What every mitigation family reads from the base assessment."""

    stock: list[Reason]  # stock reasons, largest first
    location: dict[str, int]  # location id -> index
    sku: dict[str, int]  # SKU id -> index
    cells: BoolArray  # [L, S] the promotion's cells
    in_promo: BoolArray  # [T, 1, 1] snapshot forecast days inside the promotion


def _expedite(s: PlanningSnapshot, f: _Shortfalls) -> _Candidate | None:
    """Expedite the ``EXPEDITE_TOP`` largest stock shortfalls, each up to the supplier's
    capacity; costs the expedite premium per unit."""
    if not f.stock:
        return None
    lines = []
    cost = 0.0
    for r in f.stock[:EXPEDITE_TOP]:
        d, k = f.location[r.where], f.sku[r.sku]
        v = int(s.sku_supplier[k])
        qty = int(min(np.ceil(r.units), s.supplier_capacity[v]))
        lines.append(
            InboundShipment(
                "expedite",
                v,
                d,
                s.day + int(s.expedite_lead_time[v]),
                np.array([k], np.int64),
                np.array([qty], np.int64),
            )
        )
        cost += qty * float(s.expedite_premium[k])
    detail = ", ".join(
        f"{int(ln.qty[0]):,} x {s.sku_ids[int(ln.sku[0])]} to {s.location_ids[ln.destination]}"
        for ln in lines
    )
    return _Candidate("expedite", detail, _with_inbound(s, lines), cost)


def _rebalance(s: PlanningSnapshot, f: _Shortfalls) -> _Candidate | None:
    """Move each short DC's SKU from the first other DC with a lane to it and a surplus over its
    own network's forecast (and not short of the SKU itself); costs the lane's cost per unit."""
    lanes = s.lanes
    moves = []
    cost = 0.0
    on_hand = s.on_hand.copy()
    short_by = {(f.location[r.where], f.sku[r.sku]): r.units for r in f.stock}
    for (d, k), units in short_by.items():
        for o in range(s.n_dcs):
            if o == d or (o, k) in short_by:
                continue
            lane = lanes[(lanes["o"] == o) & (lanes["d"] == d)]
            if lane.empty:
                continue
            surplus = int(on_hand[o, k] - s.forecast_mean[:, s.serving_dc == o, k].sum())
            qty = int(min(surplus, np.ceil(units)))
            if qty > 0:
                on_hand[o, k] -= qty
                transit = int(lane["transit_days"].iloc[0])
                cost += float(lane["cost_per_unit"].iloc[0]) * qty
                moves.append(
                    InboundShipment(
                        "transfer", o, d, s.day + transit, np.array([k]), np.array([qty])
                    )
                )
                break
    if not moves:
        return None
    detail = ", ".join(
        f"{int(m.qty[0]):,} x {s.sku_ids[int(m.sku[0])]} "
        f"{s.location_ids[m.origin]}->{s.location_ids[m.destination]}"
        for m in moves
    )
    moved = dataclasses.replace(s, on_hand=on_hand)
    return _Candidate("rebalance", detail, _with_inbound(moved, moves), cost)


def _limit_depth(
    s: PlanningSnapshot, f: _Shortfalls, elasticity: FloatArray | None, depth: float | None
) -> _Candidate | None:
    """Lower the discount by ``DEPTH_STEP`` in the short DC networks: promoted demand scales by
    ``((1 - new depth) / (1 - depth)) ** elasticity`` per SKU."""
    short_dcs = sorted({f.location[r.where] for r in f.stock})
    if elasticity is None or depth is None or depth <= 0 or not short_dcs:
        return None
    new_depth = max(depth - DEPTH_STEP, 0.0)
    ratio = ((1 - new_depth) / (1 - depth)) ** elasticity  # [S] (< 1 for elasticity < 0)
    where = np.isin(network_of(s), short_dcs)[:, None] & f.cells
    factor = np.where(f.in_promo & where[None], ratio[None, None, :], 1.0)
    names = ", ".join(s.location_ids[d] for d in short_dcs)
    detail = f"{depth:.0%} -> {new_depth:.0%} in {names}"
    return _Candidate("limit_depth", detail, _scaled(s, factor), 0.0)


def _cap_ecommerce(s: PlanningSnapshot, f: _Shortfalls) -> _Candidate | None:
    """No promotion uplift on ecommerce (the DC rows): their forecast capped at the baseline."""
    dc_cells = f.cells.copy()
    dc_cells[s.n_dcs :] = False
    if not dc_cells.any():
        return None
    fm = s.forecast_mean
    capped = np.where(f.in_promo & dc_cells[None], np.minimum(fm, s.baseline_mean[None]), fm)
    return _Candidate(
        "cap_ecommerce",
        "no promotion uplift on ecommerce",
        dataclasses.replace(s, forecast_mean=capped),
        0.0,
    )


def _date(s: PlanningSnapshot, day: int) -> dt.date:
    """The calendar date of simulation day ``day`` (planners read dates, not day numbers)."""
    return s.date + dt.timedelta(days=day - s.day)


def _move_start(s: PlanningSnapshot, promotion: str, f: _Shortfalls) -> list[_Candidate]:
    """Start ``SHIFT_DAYS`` later (where the snapshot's horizon reaches the moved end): the
    promotion's extra demand shifts by as many days."""
    start, end = _promo_row(s, promotion)
    out = []
    for shift in SHIFT_DAYS:
        if end + shift - s.day > s.horizon:
            continue
        fm = s.forecast_mean
        ex = np.where(f.cells[None] & f.in_promo, np.maximum(fm - s.baseline_mean[None], 0.0), 0.0)
        moved_ex = np.zeros_like(ex)
        moved_ex[shift:] = ex[:-shift]
        promos = s.promotions.copy()
        row = promos["id"] == promotion
        promos.loc[row, "start_day"] += shift
        promos.loc[row, "end_day"] += shift
        out.append(
            _Candidate(
                "move_start",
                f"start {shift} days later (on {_date(s, start + shift)})",
                dataclasses.replace(s, forecast_mean=fm - ex + moved_ex, promotions=promos),
                0.0,
            )
        )
    return out


def _shortfalls(s: PlanningSnapshot, promotion: str, base: ReadinessReport) -> _Shortfalls:
    start, end = _promo_row(s, promotion)
    days_abs = s.day + 1 + np.arange(s.horizon)
    return _Shortfalls(
        stock=[r for r in base.reasons if r.kind == "stock"],
        location={x: i for i, x in enumerate(s.location_ids)},
        sku={x: i for i, x in enumerate(s.sku_ids)},
        cells=s.promotion_cells[promotion],
        in_promo=((days_abs >= start) & (days_abs <= end))[:, None, None],
    )


def readiness(
    s: PlanningSnapshot,
    promotion: str,
    quantile: float = 0.8,
    uplift_log_sd: float = 0.25,
    elasticity: FloatArray | None = None,
    depth: float | None = None,
) -> ReadinessReport:
    """:func:`assess` plus mitigations, each re-scored on a modified snapshot.

    ``elasticity`` [S] and the promotion's ``depth`` enable "limit depth".
    """
    base = assess(s, promotion, quantile, uplift_log_sd)
    if not base.reasons:
        return base
    f = _shortfalls(s, promotion, base)
    candidates = [
        _expedite(s, f),
        _rebalance(s, f),
        _limit_depth(s, f, elasticity, depth),
        _cap_ecommerce(s, f),
        *_move_start(s, promotion, f),
    ]
    mitigations = []
    for c in candidates:
        if c is None:
            continue
        after = assess(c.snapshot, promotion, quantile, uplift_log_sd)
        mitigations.append(
            Mitigation(c.action, c.detail, after.score, after.score - base.score, c.cost)
        )
    mitigations.sort(key=lambda m: -m.gain)
    return dataclasses.replace(base, mitigations=tuple(mitigations))
