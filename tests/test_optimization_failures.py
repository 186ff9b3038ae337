"""Solver failures fall back to base-stock, are recorded for governance, and the run goes on."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from promotwin.optimization import TerminationStatus
from promotwin.policies.optimizer import OptimizerPolicy
from promotwin.testing.scenarios import Checking, small_scenario
from promotwin.testing.snapshots import random_snapshot, tiny_snapshot
from promotwin.twin.model import Twin


def test_infeasible_instance_falls_back_to_base_stock() -> None:
    # negative stock on hand (an ERP inconsistency) makes the balance infeasible
    s = tiny_snapshot(horizon=5, on_hand=[[-5], [0]], demand=2.0)
    policy = OptimizerPolicy(horizon_days=5)
    plan = policy.decide(s)
    assert policy.last_failure is not None
    assert policy.last_failure.status is TerminationStatus.INFEASIBLE
    assert policy.last_failure.n_skus == 1
    assert len(plan) > 0 and plan.policy == "optimizer"
    assert all(plan.reasons[r].startswith("fallback: optimizer infeasible") for r in plan.reason)


def test_time_limit_falls_back_then_recovers() -> None:
    s = random_snapshot(10, 30, seed=7)
    policy = OptimizerPolicy(time_limit=1e-3, max_cells_per_group=None)
    plan = policy.decide(s)
    assert policy.last_failure is not None
    assert policy.last_failure.status is TerminationStatus.TIME_LIMIT
    assert len(plan) > 0
    assert all(plan.reasons[r].startswith("fallback: ") for r in plan.reason)
    policy.time_limit = 30.0  # next tick with time enough: the optimizer is back
    plan = policy.decide(replace(s, day=1))
    assert policy.last_failure is None
    assert not any(plan.reasons[r].startswith("fallback") for r in plan.reason)
    assert len(policy.failures) == 1


def test_simulation_continues_with_units_conserved_when_every_solve_fails() -> None:
    scenario = small_scenario(horizon_days=15)
    inner = OptimizerPolicy(time_limit=1e-3, max_cells_per_group=None)
    checker = Checking(inner)
    twin = Twin(scenario, checker, 3)
    twin.run()
    assert len(twin.daily) == 15
    assert min(checker.minima) >= 0
    assert len(inner.failures) >= 1
    for d in twin.daily:
        assert d["sold"].sum() + d["lost"].sum() == d["demand"].sum()


def test_simulation_runs_the_optimizer_with_units_conserved() -> None:
    scenario = small_scenario(horizon_days=20)
    inner = OptimizerPolicy()
    checker = Checking(inner)
    twin = Twin(scenario, checker, 1)
    twin.run()
    assert inner.failures == []
    assert min(checker.minima) >= 0
    ledger_sales = sum(int(d["sold"].sum()) for d in twin.daily)
    assert ledger_sales > 0
    assert np.isfinite(float(sum(d["lost"].sum() for d in twin.daily)))


def test_time_limit_applies_to_each_solve_not_to_the_run() -> None:
    """HiGHS measures time_limit on a clock that runs over every solve of an instance: a limit
    set once would fail every tick after the first ones (as it did halfway through a season)."""
    s = random_snapshot(10, 30, seed=7)
    policy = OptimizerPolicy(max_cells_per_group=None)
    policy.decide(s)  # the cold solve
    policy.decide(replace(s, day=1))  # warm, on the same data: next to no work
    assert policy.last_failure is None
    highs = policy._model.subproblems[0].highs  # type: ignore[union-attr]
    spent = highs.getRunTime()
    policy.time_limit = spent / 2  # ample for one warm solve, less than the time spent so far
    policy.decide(replace(s, day=2))
    assert policy.last_failure is None and not policy.failures
    assert highs.getRunTime() > spent
