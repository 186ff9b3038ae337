"""What each API key role may call. The people's roles are the approval store's (viewer,
planner, approver, admin, each including the one before); ``integrator`` is the middleware's:
it posts events and reads what comes back, and decides nothing."""

from __future__ import annotations

from typing import Literal, cast

from promotwin.service.db import ApiKey
from promotwin.workflow.identity import Identity
from promotwin.workflow.roles import ROLES, Role

KEY_ROLES = ("integrator", *ROLES)
Action = Literal["read", "propose", "ingest", "decide"]
ALLOWED: dict[Action, frozenset[str]] = {
    "read": frozenset(KEY_ROLES),
    "propose": frozenset({"integrator", "planner", "approver", "admin"}),
    "ingest": frozenset({"integrator", "admin"}),
    "decide": frozenset({"approver", "admin"}),
}


def approver_identity(key: ApiKey) -> Identity:
    """The key as the approval store's identity, so its separation-of-duties and limit rules
    apply unchanged (only approver and admin keys get here)."""
    return Identity(key.name, cast(Role, key.role), key.limits, f"API key {key.id}")
