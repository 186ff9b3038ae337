"""Governance between ``policy.decide()`` and execution: rules (thresholds, confidence and risk
gates, hard limits), exception routing to owner queues, approvals, the audit trail."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promotwin.workflow.config import (
        GovernanceConfig,
        GovernanceConfigError,
        load_config,
        parse_config,
    )
    from promotwin.workflow.governance import AutoApprove, Governance, Review, RunGovernance
    from promotwin.workflow.governed import GovernedWorkflow
    from promotwin.workflow.store import ConflictError, Store, StoreError

# The names load on first use (PEP 562), so the twin's plain ``AutoApprove`` does not import
# the store's SQLAlchemy or the rules' SciPy.
_HOME = {
    "AutoApprove": "governance",
    "ConflictError": "store",
    "Governance": "governance",
    "GovernanceConfig": "config",
    "GovernanceConfigError": "config",
    "GovernedWorkflow": "governed",
    "Review": "governance",
    "RunGovernance": "governance",
    "Store": "store",
    "StoreError": "store",
    "load_config": "config",
    "parse_config": "config",
}
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


def __getattr__(name: str) -> object:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
