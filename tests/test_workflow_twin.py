"""Governance in the twin: strict vs loose thresholds, simulated planners, the ledger stays
conserved, KPIs from the audit trail, nothing executed that was not committed first."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from promotwin.policies.heuristics import BaseStockPolicy
from promotwin.scenarios import Scenario
from promotwin.testing.scenarios import ledger_stock, small_scenario
from promotwin.twin import model, simulate
from promotwin.twin.ledger import Kind
from promotwin.twin.model import Twin
from promotwin.workflow import AutoApprove, GovernedWorkflow, Store, StoreError, parse_config
from promotwin.workflow.kpis import KPI_NAMES

DAYS, SEED = 30, 7
STRICT = """
name: strict
thresholds:
  purchase: {max_qty: 0}
  expedite: {max_qty: 0}
  shipment: {max_qty: 0}
  transfer: {max_qty: 0}
routing: {expiry_days: 2}
planners: {capacity_per_day: 0}
"""
LOOSE = "name: loose\nplanners: {capacity_per_day: 0}\n"
SOME = """
name: some
confidence: {min: 0.35}
routing: {expiry_days: 3}
planners: {capacity_per_day: 3, response_delay_days: 1, approve_share: 1.0}
"""


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return small_scenario(horizon_days=DAYS, warmup_days=5)


def _run(
    scenario: Scenario, config: str, store: Store | None = None
) -> tuple[Twin, GovernedWorkflow]:
    workflow = GovernedWorkflow(parse_config(config), store or Store())
    workflow.begin_run(f"test-{hash(config) % 10_000}")
    twin = Twin(scenario, BaseStockPolicy(), SEED, workflow)
    twin.run()
    return twin, workflow


def _assert_ledger_conserved(twin: Twin) -> None:
    """The ledger's unit movements alone rebuild every location x SKU's final stock."""
    ledger = twin.ledger.frame()
    stock = ledger_stock(ledger, *twin.on_hand.shape)
    np.testing.assert_array_equal(stock, twin.on_hand)
    assert twin.on_hand.min() >= 0 and twin.in_transit.min() >= 0 and twin.on_order.min() >= 0
    # units in transit now = dispatched - received
    moved = ledger.loc[ledger["kind"] == int(Kind.DISPATCH), "qty"].sum()
    arrived = ledger.loc[ledger["kind"] == int(Kind.RECEIPT), "qty"].sum()
    assert moved - arrived == twin.in_transit.sum()


def test_strict_thresholds_route_everything_and_with_no_planners_it_expires(
    scenario: Scenario,
) -> None:
    twin, workflow = _run(scenario, STRICT)
    audit = workflow.store.audit_frame(workflow.run_id)
    events = audit["event"].value_counts()
    assert events["proposed"] == events["routed"] == twin.exceptions > 0
    assert "auto_approved" not in events and "executed" not in events

    # exceptions raised on day d expire at day d + 2; the last two days' are still open
    routed_day = audit.loc[audit["event"] == "routed", "sim_day"]
    expired = audit[audit["event"] == "expired"]
    assert len(expired) == (routed_day <= DAYS - 3).sum()
    assert (expired["actor"] == "governance").all()
    assert workflow.store.list_exceptions("open")  # the rest are waiting

    kpis = workflow.kpis(DAYS, scenario.warmup_days)
    after = routed_day >= scenario.warmup_days
    assert kpis["exceptions_raised"] == after.sum()
    assert kpis["auto_approved_share"] == 0.0
    assert kpis["planner_touches_per_day"] == 0.0
    assert kpis["decisions_expired"] == (expired["sim_day"] >= scenario.warmup_days).sum()
    assert kpis["value_waiting_for_approval"] > 0

    # nothing was executed: no supplier receipts and no dispatches, stock only sells down
    ledger = twin.ledger.frame()
    moves = (Kind.SUPPLIER_RECEIPT, Kind.EXPEDITE_RECEIPT, Kind.DISPATCH)
    assert not ledger["kind"].isin([int(k) for k in moves]).any()
    _assert_ledger_conserved(twin)
    assert workflow.store.verify().ok


def test_loose_thresholds_route_nothing_and_change_nothing(scenario: Scenario) -> None:
    plain = simulate(scenario, BaseStockPolicy(), SEED, governance=AutoApprove())
    workflow = GovernedWorkflow(parse_config(LOOSE))
    governed = simulate(scenario, BaseStockPolicy(), SEED, governance=workflow)
    for key, value in plain.kpis.items():  # the twin behaves exactly as without governance
        assert governed.kpis[key] == value or (
            value != value and governed.kpis[key] != governed.kpis[key]
        ), key
    pd.testing.assert_frame_equal(plain.ledger, governed.ledger)
    assert set(KPI_NAMES) <= governed.kpis.keys() and not set(KPI_NAMES) & plain.kpis.keys()
    assert governed.kpis["exceptions"] == governed.kpis["exceptions_raised"] == 0
    assert governed.kpis["auto_approved_share"] == 1.0
    assert governed.run_id != plain.run_id and workflow.run_id == governed.run_id

    events = workflow.store.audit_frame(governed.run_id)["event"].value_counts()
    assert events["proposed"] == events["auto_approved"] == events["executed"]
    assert set(events.index) == {"proposed", "auto_approved", "executed"}


def test_simulated_planners_approve_within_capacity_and_approved_lines_execute(
    scenario: Scenario,
) -> None:
    twin, workflow = _run(scenario, SOME)
    store = workflow.store
    audit = store.audit_frame(workflow.run_id)
    approved = audit[audit["event"] == "approved"]
    assert len(approved) > 0 and approved["actor"].str.startswith("planner-").all()
    assert approved.groupby("sim_day").size().max() <= 3  # capacity per day
    routed = audit[audit["event"] == "routed"].set_index("exception_id")["sim_day"]
    delay = approved["sim_day"].to_numpy() - routed.loc[approved["exception_id"]].to_numpy()
    assert delay.min() >= 1  # response delay

    # approved exceptions are executed at the next review, recorded against their id
    executed = audit[(audit["event"] == "executed") & audit["exception_id"].notna()]
    assert set(executed["exception_id"]) <= set(approved["exception_id"])
    assert executed["exception_id"].is_unique  # released once, never executed twice
    assert len(executed) >= len(approved) - 1  # all but (at most) the last day's
    statuses = {r["status"] for r in store.list_exceptions(None)}
    assert statuses <= {"open", "approved", "executed", "expired", "blocked"}
    assert "executed" in statuses

    kpis = workflow.kpis(DAYS, scenario.warmup_days)
    assert 0 < kpis["auto_approved_share"] < 1
    assert 0 < kpis["planner_touches_per_day"] <= 3
    decisions = pd.concat([pd.DataFrame(d) for d in twin.decisions])
    assert decisions["reason"].str.startswith("approved exception: ").any()
    _assert_ledger_conserved(twin)
    assert store.verify().ok


def test_decisions_are_committed_before_execution(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A crash during execution loses nothing: the day's approvals are already in the store."""
    path = tmp_path / "crash.db"
    workflow = GovernedWorkflow(parse_config(LOOSE), Store(path))
    workflow.begin_run("crash")
    twin = Twin(scenario, BaseStockPolicy(), SEED, workflow)
    execute = model.execute

    def crash_on_day_3(day: int, plan: Any, *args: Any) -> Any:
        if day == 3:
            raise KeyboardInterrupt("power cut")
        return execute(day, plan, *args)

    monkeypatch.setattr(model, "execute", crash_on_day_3)
    with pytest.raises(KeyboardInterrupt):
        twin.run()
    workflow.store.close()
    reopened = Store(path, create=False)  # what a restarted process finds
    audit = reopened.audit_frame("crash")
    day3 = audit[audit["sim_day"] == 3]["event"].value_counts()
    assert day3["auto_approved"] == day3["proposed"] > 0 and "executed" not in day3
    assert reopened.verify().ok


def test_same_seed_same_decisions(scenario: Scenario) -> None:
    a = _run(scenario, SOME)[1]
    b = _run(scenario, SOME)[1]
    cols = ["event", "sim_day", "actor", "exception_id", "kind", "sku", "qty", "value", "rules"]
    frame_a = a.store.audit_frame(a.run_id)[cols]
    pd.testing.assert_frame_equal(frame_a, b.store.audit_frame(b.run_id)[cols])


def test_a_store_refuses_to_mix_two_runs_under_one_id(scenario: Scenario) -> None:
    store = Store()
    simulate(
        scenario,
        BaseStockPolicy(),
        SEED,
        days=3,
        governance=GovernedWorkflow(parse_config(LOOSE), store),
    )
    with pytest.raises(StoreError, match="already holds run"):
        simulate(
            scenario,
            BaseStockPolicy(),
            SEED,
            days=3,
            governance=GovernedWorkflow(parse_config(LOOSE), store),
        )


def test_record_execution_follows_the_review_that_approved_the_lines(scenario: Scenario) -> None:
    """Governance is two named steps: review, then record_execution of that review's approved
    plan (once); recording anything else is refused rather than written to the audit trail."""
    workflow = GovernedWorkflow(parse_config(LOOSE), Store())
    workflow.begin_run("steps")
    twin = Twin(scenario, BaseStockPolicy(), SEED, workflow)
    forecast = twin.forecast_for(0)
    snapshot = twin.snapshot(0, forecast.window, forecast.terms)
    plan = BaseStockPolicy().decide(snapshot)
    review = workflow.review(plan, snapshot)
    assert len(review.approved)
    with pytest.raises(ValueError, match="must follow the review"):
        workflow.record_execution(0, plan, plan.qty)  # the proposal, not what was approved
    workflow.record_execution(0, review.approved, review.approved.qty)
    audit = workflow.store.audit_frame("steps")
    assert (audit["event"] == "executed").sum() == len(review.approved)
    with pytest.raises(ValueError, match="must follow the review"):
        workflow.record_execution(0, review.approved, review.approved.qty)  # only once
