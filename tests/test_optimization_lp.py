"""Hand-solved tiny instances: the LP's day-0 decisions and objective against known optima."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest
from scipy.stats import norm

from promotwin.optimization import TerminationStatus, build_sku_model
from promotwin.policies.contract import ActionKind, Plan, PlanningSnapshot
from promotwin.policies.optimizer import OptimizerPolicy, network_structure, tick_inputs
from promotwin.testing.snapshots import tiny_snapshot

ORDER_COST = 1e-4  # tie-breaker per ordered unit in TickInputs


def solve(s: PlanningSnapshot, **kw: object) -> tuple[Plan, OptimizerPolicy]:
    """Deterministic plan (median quantile = no safety stock), equal holding everywhere."""
    options: dict[str, object] = {
        "service_quantile": 0.5,
        "horizon_days": s.horizon,
        "store_holding_factor": 1.0,
    }
    options.update(kw)
    policy = OptimizerPolicy(**options)  # type: ignore[arg-type]
    plan = policy.decide(s)
    assert policy.last_failure is None
    assert policy.last_result is not None and policy.last_result.status is TerminationStatus.OPTIMAL
    return plan, policy


def lines(plan: Plan, kind: ActionKind) -> list[tuple[int, int, int, int]]:
    p = plan.of_kind(kind)
    return sorted(
        zip(p.origin.tolist(), p.destination.tolist(), p.sku.tolist(), p.qty.tolist(), strict=True)
    )


def objective(policy: OptimizerPolicy) -> float:
    assert policy.last_result is not None
    return policy.last_result.objective


def test_single_store_deterministic_just_in_time() -> None:
    # DC holds 10, the store sells 2/day for 5 days over a 1-day lane: ship 2 a day.
    # Holding 0.1 on DC stock after each day's dispatch: 6 + 4 + 2 + 0 + 0 = 12 units -> 1.2
    s = tiny_snapshot(horizon=5, on_hand=[[10], [0]], demand=2.0)
    plan, policy = solve(s)
    assert lines(plan, ActionKind.SHIPMENT) == [(0, 1, 0, 2)]
    assert len(plan) == 1
    assert np.isclose(objective(policy), 1.2)
    assert 0.0 <= plan.confidence[0] <= 1.0
    assert "1-day transit" in plan.reasons[plan.reason[0]]
    assert "projected stockout day 1" in plan.reasons[plan.reason[0]]


def test_lead_time_first_days_lost_then_order_each_day() -> None:
    # Nothing anywhere, 2-day lead, 1-day lane, 6 days of 2/day: days 1-2 are lost (4 x 10);
    # orders of 2 placed on days 0..3 serve days 3..6 just in time (no holding).
    s = tiny_snapshot(horizon=6, demand=2.0, lead_time=2.0, expedite_lead_time=2)
    plan, policy = solve(s)
    assert lines(plan, ActionKind.PURCHASE) == [(0, 0, 0, 2)]
    assert len(plan) == 1
    assert np.isclose(objective(policy), 40.0 + 4 * 2 * ORDER_COST)
    assert "2-day lead time" in plan.reasons[plan.reason[0]]
    assert policy.last_result is not None
    assert np.isclose(policy.last_result.planned_lost[1, 0], 4.0)


def test_capacity_binding_allocation_serves_the_store_that_runs_out_first() -> None:
    # DC ships at most 2/day. Store A (loc 1) has 2 for day 1; store B (loc 2) has nothing.
    # Today's 2 units must go to B (A's on-hand covers its day 1); tomorrow 2 more to either
    # store; 2 units are lost whatever happens: objective 2 x 10 = 20 (no holding left).
    s = tiny_snapshot(n_stores=2, horizon=2, on_hand=[[4], [2], [0]], demand=2.0, dc_throughput=2.0)
    plan, policy = solve(s)
    assert lines(plan, ActionKind.SHIPMENT) == [(0, 2, 0, 2)]
    assert np.isclose(objective(policy), 20.0)


def test_transfer_beats_ordering() -> None:
    # Store A (loc 1) has 10 idle units, store B (loc 2) sells 2/day; the DC is empty, an order
    # (2-day lead) plus the DC->B lane (cost 2) lands on day 3 only. Transfers A->B cost 1 and
    # arrive next day: transfer 2 a day. Cost 6 x 1 + holding at A (6 + 4 + 4) x 0.1 = 7.4.
    s = tiny_snapshot(
        n_stores=2,
        horizon=3,
        on_hand=[[0], [10], [0]],
        demand=[[[0], [0], [2]]] * 3,
        lanes=[(0, 1, 1, 2.0, 1e9), (0, 2, 1, 2.0, 1e9), (1, 2, 1, 1.0, 1e9), (2, 1, 1, 1.0, 1e9)],
        lead_time=2.0,
        expedite_lead_time=2,
    )
    plan, policy = solve(s)
    assert lines(plan, ActionKind.TRANSFER) == [(1, 2, 0, 2)]
    assert lines(plan, ActionKind.PURCHASE) == []
    assert np.isclose(objective(policy), 7.4)
    assert plan.reasons[plan.reason[0]].startswith("transfer beats waiting for supply")


def test_expedite_when_regular_lead_time_is_too_late() -> None:
    # Empty network, 3-day regular lead, 1-day expedite (premium 1), 4 days of 2/day.
    # Day 1 is lost (20); expedites today and tomorrow serve days 2-3 (premium 4); a regular
    # order today serves day 4. Objective 20 + 4 + 6 ordered units x tie-breaker.
    s = tiny_snapshot(horizon=4, demand=2.0, lead_time=3.0, expedite_lead_time=1)
    plan, policy = solve(s)
    assert lines(plan, ActionKind.EXPEDITE) == [(0, 0, 0, 2)]
    assert lines(plan, ActionKind.PURCHASE) == [(0, 0, 0, 2)]
    assert np.isclose(objective(policy), 24.0 + 6 * ORDER_COST)
    exp = plan.of_kind(ActionKind.EXPEDITE)
    assert "expedite" in plan.reasons[exp.reason[0]]
    assert np.isclose(exp.unit_cost[0], 10.0 + 1.0)


def test_fill_rate_orders_gross_quantities() -> None:
    # Half of every order arrives: order 4 to receive 2.
    s = tiny_snapshot(horizon=6, demand=2.0, lead_time=2.0, expedite_lead_time=2, fill_rate=0.5)
    plan, _ = solve(s)
    assert lines(plan, ActionKind.PURCHASE) == [(0, 0, 0, 4)]


def test_safety_stock_raises_the_shipment() -> None:
    """The store gets mean + z * sigma of next-day demand, rounded up (the fraction is safety
    stock: ``OptimizerPolicy.round_up_from``). At the 0.8 quantile the level is 6.38 units:
    rounded up 7, to the nearest 6."""
    s = tiny_snapshot(horizon=5, on_hand=[[100], [0]], demand=4.0, dispersion=4.0)
    plan, policy = solve(s, service_quantile=0.8)
    level = 4.0 + norm.ppf(0.8) * np.sqrt(4.0 + 16.0 / 4.0)  # NB variance mu + mu^2 / k
    expected = int(np.floor(level)) + int(level - np.floor(level) >= policy.round_up_from)
    assert expected == 7
    assert lines(plan, ActionKind.SHIPMENT) == [(0, 1, 0, expected)]


def test_pyomo_model_solved_directly_matches_the_fast_path() -> None:
    """The Pyomo model with its mutable parameters set, solved by HiGHS through Pyomo."""
    s = tiny_snapshot(
        n_stores=2,
        horizon=4,
        on_hand=[[3], [1], [0]],
        demand=2.0,
        lead_time=2.0,
        expedite_lead_time=1,
        dc_throughput=3.0,
    )
    _, policy = solve(s)
    net, lanes = network_structure(s, 4, 3, 2)
    x = tick_inputs(s, net, lanes, 0.5, 1.0)
    m = build_sku_model(net, 0)
    for loc, h in m.demand:
        m.demand[loc, h] = x.demand[h, loc, 0]
    for loc, k in m.supply:
        m.supply[loc, k] = x.supply[k, loc, 0]
    for d, e in m.throughput:
        m.throughput[d, e] = x.dc_throughput[d, e]
    for e in m.E:
        m.supplier_capacity[e] = 1e9
    m.lost_sale_cost = x.lost_sale_cost[0]
    m.holding_cost = x.holding_cost[0]
    m.expedite_premium = x.expedite_premium[0]
    m.order_cost = x.order_cost
    m.store_holding_factor = x.store_holding_factor
    for a in m.lane_cost:
        m.lane_cost[a] = x.lane_cost[a]
    solver = pyo.SolverFactory("appsi_highs")
    if not solver.available():
        pytest.skip("appsi_highs not available")
    res = solver.solve(m)
    assert res.solver.termination_condition == pyo.TerminationCondition.optimal
    constant = x.lost_sale_cost[0] * x.demand.sum()
    assert np.isclose(pyo.value(m.cost) + constant, objective(policy))
