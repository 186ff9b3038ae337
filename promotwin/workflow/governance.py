"""Governance between ``policy.decide()`` and execution.

For now a pass-through: every action is auto-approved. The hook's shape is what the governance
issue builds on: it sees the plan and the snapshot and splits the plan into approved and routed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from promotwin.policies.contract import Plan, PlanningSnapshot


@dataclass(frozen=True)
class Review:
    approved: Plan  # executed now
    routed: Plan  # exceptions waiting for a planner (not executed by the twin today)


class Governance(Protocol):
    def review(self, plan: Plan, snapshot: PlanningSnapshot) -> Review: ...


class AutoApprove:
    """Approves everything the policy proposes."""

    def review(self, plan: Plan, snapshot: PlanningSnapshot) -> Review:
        return Review(approved=plan, routed=plan.select(np.zeros(len(plan), dtype=bool)))
