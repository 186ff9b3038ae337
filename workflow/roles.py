"""Who may do what, by name only: the roles and the environment variables that name the users
file and the signed-in user. Kept apart from ``workflow.identity`` (pydantic, argon2) so the CLI
can show them in ``--help`` without loading either."""

from __future__ import annotations

from typing import Literal

ENV_USERS = "TWIN_USERS"  # the users file
ENV_USER = "TWIN_USER"  # who signs in
ENV_PASSWORD = "TWIN_PASSWORD"  # their password (never an argument: argv is logged)
Role = Literal["viewer", "planner", "approver", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "planner", "approver", "admin")  # each includes the one before
