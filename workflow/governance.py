"""Governance between ``policy.decide()`` and execution.

The hook: governance sees the plan and the snapshot and splits the plan into lines approved for
execution now and lines routed to a planner. ``AutoApprove`` (the default) approves everything;
``workflow.GovernedWorkflow`` applies a governance config, keeps the exception queue
and the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from promotwin.policies.contract import IntArray, Plan, PlanningSnapshot


@dataclass(frozen=True)
class Review:
    approved: (
        Plan  # executed now (with a governed workflow: also earlier exceptions approved since)
    )
    routed: Plan  # exceptions raised today, waiting for a planner (not executed today)
    rejected: Plan | None = None  # lines a hard limit stopped (never executed)
    on_executed: Callable[[IntArray], None] | None = None  # told the units done per approved line

    def executed(self, qty: IntArray) -> None:
        """Report what execution carried out for each ``approved`` line (units)."""
        if self.on_executed is not None:
            self.on_executed(qty)


class Governance(Protocol):
    def review(self, plan: Plan, snapshot: PlanningSnapshot) -> Review: ...


@runtime_checkable
class RunGovernance(Protocol):
    """Governance that keeps per-run records: told the run id first, asked for KPIs after."""

    def fingerprint(self) -> str: ...

    def begin_run(self, run_id: str) -> None: ...

    def review(self, plan: Plan, snapshot: PlanningSnapshot) -> Review: ...

    def kpis(self, days: int, warmup_days: int = 0) -> dict[str, float]: ...

    def audit_anchor(self) -> dict[str, Any]:
        """The audit trail's head after the run, for the run's manifest."""
        ...


class AutoApprove:
    """Approves everything the policy proposes."""

    def review(self, plan: Plan, snapshot: PlanningSnapshot) -> Review:
        return Review(approved=plan, routed=plan.select(np.zeros(len(plan), dtype=bool)))
