"""Governance rules: one table per rule with boundary values, hard limits, routing, config."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from promotwin.policies.contract import ActionKind, Plan, PlanningSnapshot
from promotwin.workflow.config import GovernanceConfigError, parse_config
from promotwin.workflow.rules import AUTO, REJECT, ROUTE, Spend, cumulative_limits, evaluate

P, E, S, T = ActionKind.PURCHASE, ActionKind.EXPEDITE, ActionKind.SHIPMENT, ActionKind.TRANSFER


def snapshot(**over: Any) -> PlanningSnapshot:
    """1 DC (index 0) serving stores 1 and 2; SKUs A (cost 10) and B (cost 4); suppliers V0, V1.
    Flat forecast of 2 units/day per store for 10 days, nearly Poisson."""
    n_loc, n_sku, h = 3, 2, 10
    fields: dict[str, Any] = dict(
        day=5,
        date=dt.date(2026, 1, 6),
        location_ids=("DC", "S1", "S2"),
        sku_ids=("A", "B"),
        n_dcs=1,
        serving_dc=np.array([0, 0, 0]),
        on_hand=np.full((n_loc, n_sku), 10, np.int64),
        in_transit=np.zeros((n_loc, n_sku), np.int64),
        on_order=np.zeros((n_loc, n_sku), np.int64),
        inbound=(),
        forecast_mean=np.tile(np.array([[0.0, 0.0], [2.0, 2.0], [2.0, 2.0]]), (h, 1, 1)),
        forecast_dispersion=1e9,
        history_mean=np.ones((n_loc, n_sku)),
        baseline_mean=np.ones((n_loc, n_sku)),
        promotions=pd.DataFrame({"id": ["P1"], "start_day": [8], "end_day": [20]}),
        promotion_cells={"P1": np.array([[False, False], [True, False], [False, False]])},
        sku_supplier=np.array([0, 1]),
        supplier_ids=("V0", "V1"),
        lead_time_mean=np.array([4.0, 4.0]),
        lead_time_sd=np.zeros(2),
        expedite_lead_time=np.array([1, 1]),
        supplier_capacity=np.array([100.0, 100.0]),
        moq=np.zeros(2),
        fill_rate=np.ones(2),
        lanes=pd.DataFrame(
            {
                "o": [0, 0, 1],
                "d": [1, 2, 2],
                "transit_days": [1, 1, 1],
                "cost_per_unit": [0.5, 0.5, 2.0],
                "capacity": [1e9, 1e9, 1e9],
            }
        ),
        dc_throughput=np.array([1e9]),
        price=np.array([20.0, 8.0]),
        unit_cost=np.array([10.0, 4.0]),
        holding_cost=np.array([0.01, 0.01]),
        lost_sale_cost=np.array([12.0, 5.0]),
        expedite_premium=np.array([3.0, 1.0]),
    )
    fields.update(over)
    return PlanningSnapshot(**fields)


def plan(*lines: tuple[int, int, int, int, int, float]) -> Plan:
    """Lines of (kind, origin, destination, sku, qty, confidence)."""
    cols = np.array(lines, dtype=np.float64).reshape(-1, 6)
    i = cols[:, :5].astype(np.int64)
    return Plan(
        policy="test",
        kind=i[:, 0],
        origin=i[:, 1],
        destination=i[:, 2],
        sku=i[:, 3],
        qty=i[:, 4],
        unit_cost=np.zeros(len(cols)),
        confidence=cols[:, 5],
        reason=np.zeros(len(cols), np.int64),
        reasons=("because",),
    )


def config(text: str) -> Any:
    return parse_config("name: t\n" + text)


# value of a purchase of SKU A (unit cost 10): qty 9 -> 90, 10 -> 100, 11 -> 110
@pytest.mark.parametrize(
    ("at", "qty", "expected"),
    [
        ("auto_approve", 9, AUTO),
        ("auto_approve", 10, AUTO),  # exactly at the limit: the config says auto-approve
        ("auto_approve", 11, ROUTE),
        ("route", 9, AUTO),
        ("route", 10, ROUTE),  # exactly at the limit: the config says route
        ("route", 11, ROUTE),
    ],
)
def test_value_threshold_boundary(at: str, qty: int, expected: int) -> None:
    cfg = config(f"at_threshold: {at}\nthresholds: {{purchase: {{max_value: 100}}}}")
    ev = evaluate(plan((P, 0, 0, 0, qty, 1.0)), snapshot(), cfg)
    assert ev.decision.tolist() == [expected]
    assert ev.rules[0] == ("purchase.max_value" if expected == ROUTE else "")
    assert ev.value[0] == qty * 10


@pytest.mark.parametrize(
    ("kind", "origin", "dest", "limit", "qty", "expected"),
    [
        # max_qty on shipments: 5 ok, 6 routed
        (S, 0, 1, "shipment.max_qty: 5", 5, AUTO),
        (S, 0, 1, "shipment.max_qty: 5", 6, ROUTE),
        # margin impact of a transfer S1->S2 (2.0/unit): 10 units = 20
        (T, 1, 2, "transfer.max_margin_impact: 20", 10, AUTO),
        (T, 1, 2, "transfer.max_margin_impact: 20", 11, ROUTE),
        # expedite premium of SKU A is 3/unit: 4 units = 12
        (E, 0, 0, "expedite.max_margin_impact: 12", 4, AUTO),
        (E, 0, 0, "expedite.max_margin_impact: 12", 5, ROUTE),
        # a limit on another kind does not apply
        (P, 0, 0, "shipment.max_qty: 0", 5, AUTO),
    ],
)
def test_thresholds_per_action_type(
    kind: int, origin: int, dest: int, limit: str, qty: int, expected: int
) -> None:
    which, field = limit.split(".")
    cfg = config(f"thresholds: {{{which}: {{{field}}}}}")
    ev = evaluate(plan((kind, origin, dest, 0, qty, 1.0)), snapshot(), cfg)
    assert ev.decision.tolist() == [expected]
    if expected == ROUTE:
        assert ev.rules[0] == limit.split(":")[0]
        assert "over limit" in ev.reason[0]


@pytest.mark.parametrize(
    ("at", "confidence", "expected"),
    [
        ("auto_approve", 0.49, ROUTE),
        ("auto_approve", 0.5, AUTO),
        ("auto_approve", 0.51, AUTO),
        ("route", 0.5, ROUTE),
        ("route", 0.51, AUTO),
    ],
)
def test_confidence_gate_boundary(at: str, confidence: float, expected: int) -> None:
    cfg = config(f"at_threshold: {at}\nconfidence: {{min: 0.5}}")
    ev = evaluate(plan((S, 0, 1, 0, 1, confidence)), snapshot(), cfg)
    assert ev.decision.tolist() == [expected]
    assert (ev.rules[0] == "confidence.min") == (expected == ROUTE)


def test_confidence_gate_per_kind_override() -> None:
    cfg = config("confidence: {min: 0.2, by_kind: {expedite: 0.9}}")
    ev = evaluate(plan((S, 0, 1, 0, 1, 0.5), (E, 0, 0, 0, 1, 0.5)), snapshot(), cfg)
    assert ev.decision.tolist() == [AUTO, ROUTE]


def test_expedite_risk_gate_uses_projected_stockout_probability() -> None:
    cfg = config("risk: {expedite_min_stockout_probability: 0.5}")
    line = (E, 0, 0, 0, 5, 1.0)
    # echelon demand over the 4-day lead time: 2 stores x 2/day x 4 = 16 units
    short = snapshot(on_hand=np.array([[0, 0], [2, 10], [2, 10]]))  # position 4 << 16
    ample = snapshot(on_hand=np.array([[40, 0], [2, 10], [2, 10]]))  # position 44 >> 16
    ev_short, ev_ample = evaluate(plan(line), short, cfg), evaluate(plan(line), ample, cfg)
    assert ev_short.stockout_probability[0] > 0.99 and ev_short.decision[0] == AUTO
    assert ev_ample.stockout_probability[0] < 0.01 and ev_ample.decision[0] == ROUTE
    assert ev_ample.rules[0] == "risk.expedite_min_stockout_probability"
    # the gate concerns expedites only; a purchase in the same state goes through
    assert evaluate(plan((P, 0, 0, 0, 5, 1.0)), ample, cfg).decision[0] == AUTO


def test_stockout_probability_when_position_equals_mean_demand() -> None:
    cfg = config("risk: {expedite_min_stockout_probability: 0.5}")
    # position 16, demand D ~ N(16, 16): P(D > 16) with continuity = 1 - Phi(0.5 / 4) = 0.4503
    s = snapshot(on_hand=np.array([[12, 0], [2, 10], [2, 10]]))
    p = evaluate(plan((E, 0, 0, 0, 5, 1.0)), s, cfg).stockout_probability[0]
    assert p == pytest.approx(0.4503, abs=1e-4)


@pytest.mark.parametrize(("score", "expected"), [(0.59, ROUTE), (0.6, AUTO), (0.9, AUTO)])
def test_readiness_gate_routes_to_merchandising(score: float, expected: int) -> None:
    cfg = config(f"risk: {{readiness_min: 0.6, readiness: {{P1: {score}}}}}")
    # SKU A at store S1 is in promotion P1; SKU B and store S2 are not
    lines = plan(
        (S, 0, 1, 0, 1, 1.0), (S, 0, 2, 0, 1, 1.0), (S, 0, 1, 1, 1, 1.0), (P, 0, 0, 0, 1, 1)
    )
    ev = evaluate(lines, snapshot(), cfg)
    assert ev.decision.tolist() == [expected, AUTO, AUTO, expected]  # the DC buys for S1
    if expected == ROUTE:
        assert ev.owner[0] == "merchandising" and ev.rules[0] == "risk.readiness_min"
        assert "P1" in ev.reason[0]


def test_readiness_gate_ignores_finished_promotions() -> None:
    cfg = config("risk: {readiness_min: 0.6, readiness: {P1: 0.1}}")
    ev = evaluate(plan((S, 0, 1, 0, 1, 1.0)), snapshot(day=21), cfg)
    assert ev.decision.tolist() == [AUTO]


def test_blocked_sku_and_supplier_are_rejected_even_when_a_gate_routes() -> None:
    cfg = config(
        "confidence: {min: 0.9}\nhard_limits: {blocked_skus: [A], blocked_suppliers: [V1]}"
    )
    lines = plan(
        (P, 0, 0, 0, 1, 0.1),  # SKU A, supplier V0: blocked SKU (and low confidence)
        (P, 1, 0, 1, 1, 1.0),  # SKU B from V1: blocked supplier
        (S, 0, 1, 0, 1, 1.0),  # a shipment of A is not an order: allowed
    )
    ev = evaluate(lines, snapshot(), cfg)
    assert ev.decision.tolist() == [REJECT, REJECT, AUTO]
    assert ev.rules[0] == "hard.blocked_sku,confidence.min"
    assert ev.rules[1] == "hard.blocked_supplier"


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        # purchases of 100, 100, 50 (SKU A x 10, 10, 5); budget 200: the third goes over
        ("budget_per_day: 200", [False, False, True]),
        ("budget_per_day: 250", [False, False, False]),  # exactly at the budget: fits
        ("budget_per_week: 150", [False, True, False]),  # later lines that still fit go through
        ("supplier_capacity: true", [False, False, False]),
    ],
)
def test_budget_limits_in_plan_order(limits: str, expected: list[bool]) -> None:
    cfg = config(f"hard_limits: {{{limits}}}")
    lines = plan((P, 0, 0, 0, 10, 1), (P, 0, 0, 0, 10, 1), (P, 0, 0, 0, 5, 1), (S, 0, 1, 0, 99, 1))
    rejected, rules, _ = cumulative_limits(lines, snapshot(), cfg, Spend())
    assert rejected.tolist() == [*expected, False]  # shipments spend no budget
    assert all(r.startswith("hard.budget") for r in rules[rejected])


def test_week_budget_carries_over_days_and_resets_each_week() -> None:
    cfg = config("hard_limits: {budget_per_week: 150}")
    spend = Spend()
    one = plan((P, 0, 0, 0, 10, 1))  # 100
    assert not cumulative_limits(one, snapshot(day=7), cfg, spend)[0][0]
    assert cumulative_limits(one, snapshot(day=8), cfg, spend)[0][0]  # 200 > 150 this week
    assert not cumulative_limits(one, snapshot(day=14), cfg, spend)[0][0]  # a new week


def test_supplier_capacity_is_per_supplier_per_day() -> None:
    cfg = config("hard_limits: {supplier_capacity: true}")
    s = snapshot(supplier_capacity=np.array([10.0, 100.0]))
    lines = plan((P, 0, 0, 0, 6, 1), (P, 1, 0, 1, 50, 1), (P, 0, 0, 0, 4, 1), (E, 0, 0, 0, 1, 1))
    rejected, rules, _ = cumulative_limits(lines, s, cfg, Spend())
    assert rejected.tolist() == [False, False, False, True]  # 6 + 4 = 10 fits, the 11th not
    assert rules[3] == "hard.supplier_capacity"
    off = config("hard_limits: {supplier_capacity: false}")
    assert not cumulative_limits(lines, s, off, Spend())[0].any()


def test_routing_owner_and_priority_from_value_at_risk() -> None:
    cfg = config(
        "confidence: {min: 1.0}\nrouting: {finance_above_value: 1000, "
        "priority: {high: 120, medium: 12}}"
    )
    # value at risk = qty x lost-sale cost (A: 12): 1 -> 12 (medium), 10 -> 120 (high)
    lines = plan(
        (S, 0, 1, 0, 1, 0.5), (P, 0, 0, 0, 10, 0.5), (P, 0, 0, 0, 100, 0.5), (S, 0, 1, 1, 1, 0.5)
    )
    ev = evaluate(lines, snapshot(), cfg)
    assert ev.decision.tolist() == [ROUTE] * 4
    assert ev.owner.tolist() == ["store_ops", "supply_chain", "finance", "store_ops"]
    assert ev.priority.tolist() == [1, 2, 2, 0]  # B: 5 at risk -> low


def test_every_fired_rule_is_named_with_a_reason() -> None:
    cfg = config("confidence: {min: 0.5}\nthresholds: {purchase: {max_value: 10, max_qty: 1}}")
    ev = evaluate(plan((P, 0, 0, 0, 3, 0.2)), snapshot(), cfg)
    assert ev.rules[0] == "confidence.min,purchase.max_value,purchase.max_qty"
    assert ev.reason[0].count(";") == 2 and "confidence 0.200 below 0.500" in ev.reason[0]


def test_malformed_config_lists_every_problem() -> None:
    text = """
name: bad
at_threshold: maybe
thresholds: {purchase: {max_value: -1, max_cost: 3}}
confidence: {min: 1.5}
routing: {priority: {high: 10, medium: 20}, owners: {purchase: nobody}, expiry_days: 0}
planners: {capacity_per_day: -2}
surprise: 1
"""
    with pytest.raises(GovernanceConfigError) as info:
        parse_config(text, "bad.yaml")
    where = {p.where for p in info.value.problems}
    assert {
        "at_threshold",
        "thresholds.purchase.max_value",
        "thresholds.purchase.max_cost",
        "confidence.min",
        "routing.priority",
        "routing.owners.purchase",
        "routing.expiry_days",
        "planners.capacity_per_day",
        "surprise",
    } <= where
    assert "remove it or check its spelling" in str(info.value)


def test_config_ids_are_checked_against_the_scenario(appliance: Any) -> None:
    text = "hard_limits: {blocked_skus: [NOPE]}\nrisk: {readiness: {NO-PROMO: 0.5}}"
    with pytest.raises(GovernanceConfigError) as info:
        parse_config("name: t\n" + text, scenario=appliance)
    assert [p.where for p in info.value.problems] == [
        "hard_limits.blocked_skus",
        "risk.readiness.NO-PROMO",
    ]


def test_the_library_default_is_valid(appliance: Any) -> None:
    from promotwin.workflow.config import load_config

    assert load_config("default", appliance).name == "default"
