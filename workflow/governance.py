"""Governance between ``policy.decide()`` and execution, as two explicit steps of a day:

1. ``review(plan, snapshot)`` splits the plan into lines approved for execution now and lines
   routed to a planner (and, with hard limits, lines rejected);
2. after execution, ``record_execution(day, approved, executed)`` is told the units carried out
   for each approved line.

``AutoApprove`` (the default) approves everything and records nothing; ``workflow.GovernedWorkflow``
applies a governance config, keeps the exception queue and the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from promotwin.policies.contract import IntArray, Plan, PlanningSnapshot


@dataclass(frozen=True)
class Review:
    """One review's outcome (plain data)."""

    approved: (
        Plan  # executed now (with a governed workflow: also earlier exceptions approved since)
    )
    routed: Plan  # exceptions raised today, waiting for a planner (not executed today)
    rejected: Plan | None = None  # lines a hard limit stopped (never executed)


class Governance(Protocol):
    def review(self, plan: Plan, snapshot: PlanningSnapshot) -> Review: ...

    def record_execution(self, day: int, approved: Plan, executed: IntArray) -> None:
        """Told, after execution, the units carried out for each line of ``approved`` (the
        plan the day's ``review`` approved)."""


@runtime_checkable
class RunGovernance(Protocol):
    """Governance that keeps per-run records: told the run id first, asked for KPIs after."""

    def fingerprint(self) -> str: ...

    def begin_run(self, run_id: str) -> None: ...

    def review(self, plan: Plan, snapshot: PlanningSnapshot) -> Review: ...

    def record_execution(self, day: int, approved: Plan, executed: IntArray) -> None: ...

    def kpis(self, days: int, warmup_days: int = 0) -> dict[str, float]: ...

    def audit_anchor(self) -> dict[str, Any]:
        """The audit trail's head after the run, for the run's manifest."""
        ...


class AutoApprove:
    """Approves everything the policy proposes; keeps no records."""

    def review(self, plan: Plan, snapshot: PlanningSnapshot) -> Review:
        return Review(approved=plan, routed=plan.select(np.zeros(len(plan), dtype=bool)))

    def record_execution(self, day: int, approved: Plan, executed: IntArray) -> None:
        """Nothing to record."""
