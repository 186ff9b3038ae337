"""Rule evaluation: each plan line is auto-approved, routed to a planner, or rejected.

Every rule has a name (its place in the config, e.g. ``purchase.max_value``); a routed or
rejected line carries the names of the rules that fired and a readable reason. Vectorised over
the plan's lines; only the fired lines get reason text.

Gates route (a planner may still approve). Hard limits reject (nothing overrides them):
``hard.blocked_sku`` and ``hard.blocked_supplier`` per line here; the cumulative ones (budget,
supplier capacity) in ``cumulative_limits`` over the lines about to be executed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from promotwin.arrays import ObjArray
from promotwin.policies.contract import ActionKind, BoolArray, FloatArray, IntArray, Plan
from promotwin.policies.contract import PlanningSnapshot as Snapshot
from promotwin.workflow.config import KINDS, GovernanceConfig

AUTO, ROUTE, REJECT = 0, 1, 2
DECISIONS = ("auto_approved", "routed", "rejected")
PRIORITIES = ("low", "medium", "high")


@dataclass(frozen=True)
class Evaluation:
    """Per plan line: the decision, the rules that fired and why, where a routed line goes."""

    decision: npt.NDArray[np.int8]  # AUTO | ROUTE | REJECT
    rules: ObjArray  # comma-separated rule names ("" when none fired)
    reason: ObjArray  # readable reasons, "; "-separated
    owner: ObjArray  # queue of a routed line ("" otherwise)
    priority: IntArray  # 0 low, 1 medium, 2 high (from value at risk)
    value: FloatArray  # qty x unit cost of the goods, currency
    value_at_risk: FloatArray  # qty x lost-sale cost, currency
    margin_impact: FloatArray  # extra cost beyond the goods, currency
    stockout_probability: FloatArray  # NaN where not computed (non-expedite lines)


def line_values(plan: Plan, s: Snapshot) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Goods value, value at risk and margin impact per line (currency)."""
    qty = plan.qty.astype(np.float64)
    value = qty * s.unit_cost[plan.sku]
    at_risk = qty * s.lost_sale_cost[plan.sku]
    extra = np.zeros(len(plan))
    exp = plan.kind == ActionKind.EXPEDITE
    extra[exp] = s.expedite_premium[plan.sku[exp]]
    moves = (plan.kind == ActionKind.SHIPMENT) | (plan.kind == ActionKind.TRANSFER)
    if moves.any() and len(s.lanes):
        n = s.n_locations
        cost = np.zeros(n * n)
        cost[s.lanes["o"].to_numpy() * n + s.lanes["d"].to_numpy()] = s.lanes[
            "cost_per_unit"
        ].to_numpy()
        extra[moves] = cost[plan.origin[moves] * n + plan.destination[moves]]
    return value, at_risk, qty * extra


def stockout_probability(plan: Plan, s: Snapshot, lines: BoolArray) -> FloatArray:
    """P(echelon demand over the supplier's regular lead time > echelon position), per line.

    The echelon of a DC is the DC and the stores it serves; demand is the sum of negative
    binomial cells over ``ceil(lead_time_mean)`` days (capped at the forecast horizon),
    approximated as normal with a continuity correction. NaN outside ``lines``.
    """
    out = np.full(len(plan), np.nan)
    if not lines.any() or s.horizon == 0:
        return out
    member = (s.serving_dc[None, :] == np.arange(s.n_dcs)[:, None]).astype(np.float64)  # [D, L]
    mean = s.forecast_mean
    cum_mu = np.cumsum(np.einsum("dl,hls->hds", member, mean), axis=0)
    cum_var = np.cumsum(np.einsum("dl,hls->hds", member, s.forecast_var(mean)), axis=0)
    position = member @ s.position  # [D, S]
    d, k, v = plan.destination[lines], plan.sku[lines], plan.origin[lines]
    h = np.clip(np.ceil(s.lead_time_mean[v]).astype(np.int64), 1, s.horizon) - 1
    mu, var = cum_mu[h, d, k], cum_var[h, d, k]
    z = (position[d, k] + 0.5 - mu) / np.sqrt(np.maximum(var, 1e-12))
    out[lines] = np.where(var > 0, 1.0 - ndtr(z), (mu > position[d, k]).astype(np.float64))
    return out


def _promotion_lines(
    plan: Plan, s: Snapshot, scores: dict[str, float], floor: float, route_at: bool
) -> tuple[BoolArray, ObjArray]:
    """Lines serving a current or upcoming promotion whose readiness is below ``floor``."""
    fired = np.zeros(len(plan), bool)
    names = np.full(len(plan), "", dtype=object)
    if not len(s.promotions):
        return fired, names
    supply = (plan.kind == ActionKind.PURCHASE) | (plan.kind == ActionKind.EXPEDITE)
    member = s.serving_dc[None, :] == np.arange(s.n_dcs)[:, None]  # [D, L]
    for pid, end in zip(s.promotions["id"], s.promotions["end_day"], strict=True):
        score = scores.get(str(pid))
        if score is None or end < s.day or pid not in s.promotion_cells:
            continue
        if not (score <= floor if route_at else score < floor):
            continue
        cells = s.promotion_cells[pid]
        echelon = (member.astype(np.int64) @ cells.astype(np.int64)) > 0  # [D, S]
        hit = np.where(
            supply,
            echelon[np.minimum(plan.destination, s.n_dcs - 1), plan.sku],
            cells[plan.destination, plan.sku],
        )
        names[hit & ~fired] = f"{pid} (readiness {score:.2f} < {floor:.2f})"
        fired |= hit
    return fired, names


def _over(
    x: FloatArray, unit: str, limit: float, route_at: bool
) -> Callable[[npt.NDArray[np.intp]], list[str]]:
    word = "at or over" if route_at else "over"
    return lambda i: [f"{unit} {v:,.0f} {word} limit {limit:,.0f}" for v in x[i]]


def evaluate(plan: Plan, s: Snapshot, config: GovernanceConfig) -> Evaluation:
    """Apply every gate and per-line hard limit of ``config`` to ``plan``."""
    n = len(plan)
    value, at_risk, margin = line_values(plan, s)
    route_at = config.at_threshold == "route"

    def above(x: FloatArray, limit: FloatArray) -> BoolArray:
        return np.asarray(x >= limit if route_at else x > limit)

    def below(x: FloatArray, floor: FloatArray) -> BoolArray:
        return np.asarray(x <= floor if route_at else x < floor)

    fired: list[tuple[str, int, BoolArray, Callable[[npt.NDArray[np.intp]], list[str]]]] = []

    # hard limits, per line
    hard = config.hard_limits
    supply = (plan.kind == ActionKind.PURCHASE) | (plan.kind == ActionKind.EXPEDITE)
    if hard.blocked_skus:
        blocked = np.isin(np.asarray(s.sku_ids, dtype=object)[plan.sku], hard.blocked_skus)
        fired.append(
            ("hard.blocked_sku", REJECT, supply & blocked, lambda i: ["SKU is blocked"] * len(i))
        )
    if hard.blocked_suppliers:
        sup_ids = np.asarray(s.supplier_ids, dtype=object)
        origin = sup_ids[np.where(supply, plan.origin, 0)] if len(sup_ids) else np.full(n, "")
        blocked = supply & np.isin(origin, hard.blocked_suppliers)
        fired.append(
            ("hard.blocked_supplier", REJECT, blocked, lambda i: ["supplier is blocked"] * len(i))
        )

    # risk gates
    risk = config.risk
    if risk.readiness_min is not None and risk.readiness:
        hit, promo = _promotion_lines(plan, s, dict(risk.readiness), risk.readiness_min, route_at)
        fired.append(
            (
                "risk.readiness_min",
                ROUTE,
                hit,
                lambda i: [f"promotion {p} not ready: back to merchandising" for p in promo[i]],
            )
        )
    p_out = np.full(n, np.nan)
    if risk.expedite_min_stockout_probability is not None:
        exp = plan.kind == ActionKind.EXPEDITE
        p_out = stockout_probability(plan, s, exp)
        floor = risk.expedite_min_stockout_probability
        fired.append(
            (
                "risk.expedite_min_stockout_probability",
                ROUTE,
                exp & below(np.nan_to_num(p_out, nan=0.0), np.full(n, floor)),
                lambda i: [
                    f"stockout probability without it {p:.0%} does not justify an expedite "
                    f"(limit {floor:.0%})"
                    for p in p_out[i]
                ],
            )
        )

    # confidence gate
    conf = config.confidence
    floors = np.array([conf.by_kind.get(k, conf.min) for k in KINDS])[plan.kind]
    fired.append(
        (
            "confidence.min",
            ROUTE,
            below(plan.confidence, floors),
            lambda i: [
                f"confidence {c:.3f} below {f:.3f}"
                for c, f in zip(plan.confidence[i], floors[i], strict=True)
            ],
        )
    )

    # thresholds per action type
    for code, name in enumerate(KINDS):
        t = getattr(config.thresholds, name)
        of_kind = plan.kind == code
        for field, x, unit in (
            ("max_value", value, "value"),
            ("max_qty", plan.qty.astype(np.float64), "qty"),
            ("max_margin_impact", margin, "margin impact"),
        ):
            limit = getattr(t, field)
            if limit is None or not of_kind.any():
                continue
            fired.append(
                (
                    f"{name}.{field}",
                    ROUTE,
                    of_kind & above(x, np.full(n, limit)),
                    _over(x, unit, float(limit), route_at),
                )
            )

    decision = np.zeros(n, np.int8)
    rules = np.full(n, "", dtype=object)
    reason = np.full(n, "", dtype=object)
    first_route = np.full(n, "", dtype=object)
    for rule, outcome, mask, why in fired:
        idx = np.nonzero(mask)[0]
        if not len(idx):
            continue
        decision[idx] = np.maximum(decision[idx], outcome)
        sep = np.where(rules[idx] == "", "", ",")
        rules[idx] = rules[idx] + sep + rule
        text = np.asarray(why(idx), dtype=object)
        reason[idx] = reason[idx] + np.where(reason[idx] == "", "", "; ") + text
        if outcome == ROUTE:
            first_route[idx] = np.where(first_route[idx] == "", rule, first_route[idx])

    routing = config.routing
    owners = np.array([str(routing.owners.get(k, "supply_chain")) for k in KINDS], dtype=object)
    owner = np.where(decision == ROUTE, owners[plan.kind], "").astype(object)
    owner[(decision == ROUTE) & (first_route == "risk.readiness_min")] = routing.readiness_owner
    if routing.finance_above_value is not None:
        owner[(decision == ROUTE) & (value >= routing.finance_above_value)] = "finance"
    prio = routing.priority
    priority = (at_risk >= prio.medium).astype(np.int64) + (at_risk >= prio.high)
    return Evaluation(decision, rules, reason, owner, priority, value, at_risk, margin, p_out)


@dataclass
class Spend:
    """What the hard budget limits have committed so far (currency), per day and per week."""

    day: int = -1
    week: int = -1
    today: float = 0.0
    this_week: float = 0.0

    def roll(self, day: int) -> None:
        if day != self.day:
            self.day, self.today = day, 0.0
        if day // 7 != self.week:
            self.week, self.this_week = day // 7, 0.0


def cumulative_limits(
    plan: Plan, s: Snapshot, config: GovernanceConfig, spend: Spend
) -> tuple[BoolArray, ObjArray, ObjArray]:
    """Budget and supplier-capacity limits over the lines about to be executed, in plan order.

    A line is rejected when it would take today's (this week's) purchase and expedite spend,
    or its supplier's units today, over the limit; lines after it that still fit go through.
    Returns (rejected, rule names, reasons) and adds the accepted spend to ``spend``.
    """
    n = len(plan)
    reject = np.zeros(n, bool)
    rules = np.full(n, "", dtype=object)
    reason = np.full(n, "", dtype=object)
    hard = config.hard_limits
    supply = np.nonzero((plan.kind == ActionKind.PURCHASE) | (plan.kind == ActionKind.EXPEDITE))[0]
    spend.roll(s.day)
    if not len(supply):
        return reject, rules, reason
    value = plan.qty[supply] * s.unit_cost[plan.sku[supply]]
    units: dict[int, float] = {}
    for j, i in enumerate(supply.tolist()):  # sequential by nature: each line uses up the limit
        why = []
        v, q, sup = float(value[j]), float(plan.qty[i]), int(plan.origin[i])
        if hard.budget_per_day is not None and spend.today + v > hard.budget_per_day:
            why.append(("hard.budget_per_day", f"day budget {hard.budget_per_day:,.0f} used up"))
        if hard.budget_per_week is not None and spend.this_week + v > hard.budget_per_week:
            why.append(("hard.budget_per_week", f"week budget {hard.budget_per_week:,.0f} used up"))
        cap = float(s.supplier_capacity[sup]) if hard.supplier_capacity else np.inf
        if units.get(sup, 0.0) + q > cap:
            why.append(("hard.supplier_capacity", f"supplier capacity {cap:,.0f} units/day"))
        if why:
            reject[i] = True
            rules[i] = ",".join(r for r, _ in why)
            reason[i] = "; ".join(t for _, t in why)
            continue
        spend.today += v
        spend.this_week += v
        units[sup] = units.get(sup, 0.0) + q
    return reject, rules, reason
