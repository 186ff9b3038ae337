"""Governance between ``policy.decide()`` and execution: rules (thresholds, confidence and risk
gates, hard limits), exception routing to owner queues, approvals, the audit trail."""

from promotwin.workflow.config import (
    GovernanceConfig,
    GovernanceConfigError,
    load_config,
    parse_config,
)
from promotwin.workflow.governance import AutoApprove, Governance, Review, RunGovernance
from promotwin.workflow.governed import GovernedWorkflow
from promotwin.workflow.store import ConflictError, Store, StoreError

__all__ = [
    "AutoApprove",
    "ConflictError",
    "Governance",
    "GovernanceConfig",
    "GovernanceConfigError",
    "GovernedWorkflow",
    "Review",
    "RunGovernance",
    "Store",
    "StoreError",
    "load_config",
    "parse_config",
]
