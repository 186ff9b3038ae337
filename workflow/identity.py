"""Who may do what with exceptions: users, roles and approval limits, and signing in.

A users file (YAML, ``TWIN_USERS`` or ``--users``) lists each user's role, an argon2id password
hash (salted, from argon2-cffi) and, for approvers, an approval limit per owner queue:

    trusted_header: X-Forwarded-User   # optional: the dashboard trusts this header's user name
    users:
      ana: {role: approver, password: "$argon2id$...", limits: {supply_chain: 50000}}

Roles, each including the one before: ``viewer`` (sees queues and the audit trail), ``planner``
(also proposes: starts governed runs), ``approver`` (also approves and rejects in the queues it
has a limit for, up to that value in currency), ``admin`` (also manages the users file; decides
only where it has limits, like anyone). Nobody approves an exception they proposed.

``trusted_header`` is for a dashboard behind a reverse proxy that authenticates users and sets
the header itself; never set it when browsers can reach the dashboard directly.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from promotwin.scenarios.config_files import ConfigError, Problem, parse_yaml_model
from promotwin.workflow.config import OWNERS, Owner
from promotwin.workflow.roles import ENV_PASSWORD, ENV_USER, ENV_USERS, ROLES, Role

MIN_PASSWORD = 8


class UsersFileError(ConfigError):
    """A users file that cannot be used; ``problems`` lists every issue found."""


class IdentityError(ValueError):
    """Signing in failed, or no users file is configured (says how to fix it)."""


class NotAllowedError(ValueError):
    """The signed-in user may not do this (role, queue, limit or separation of duties)."""


class UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    password: str = Field(description="argon2id hash: `twin users add` writes it")
    limits: dict[Owner, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=dict, description="approval limit per owner queue, currency"
    )

    @field_validator("password")
    @classmethod
    def _hashed(cls, value: str) -> str:
        if not value.startswith("$argon2"):
            raise ValueError("must be an argon2 hash (never a plain password): use twin users add")
        return value

    def identity(self, name: str, method: str) -> Identity:
        return Identity(name, self.role, {str(q): v for q, v in self.limits.items()}, method)


class UsersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trusted_header: str | None = Field(
        None, min_length=1, description="header a trusted reverse proxy sets to the user name"
    )
    users: dict[Annotated[str, Field(min_length=1, max_length=64)], UserEntry] = Field(
        default_factory=dict
    )


@dataclass(frozen=True)
class Identity:
    """A signed-in user: who, under which role, with which approval limits, and how."""

    name: str
    role: Role
    limits: Mapping[str, float]
    method: str  # "password" or "header X-Forwarded-User"

    def at_least(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def signature(self) -> str:
        """How the decision is signed in the audit trail."""
        return f"as {self.role} (signed in by {self.method})"

    def check_decision(
        self, approve: bool, owner: str, value: float, proposed_by: str, exception_id: int
    ) -> None:
        """``NotAllowedError`` saying why, unless this user may decide the exception."""
        what = f"exception {exception_id} ({owner} queue, value {value:,.0f})"
        if not self.at_least("approver"):
            raise NotAllowedError(
                f"{self.name}'s role is {self.role}: deciding {what} needs the approver role "
                "(an admin can grant it: twin users add)"
            )
        if owner not in self.limits:
            queues = ", ".join(self.limits) or "none"
            raise NotAllowedError(
                f"{self.name} approves in these queues only: {queues}; {what} is not one of them"
            )
        if approve and proposed_by == self.name:
            raise NotAllowedError(
                f"{self.name} proposed {what} and cannot approve it too: another approver must"
            )
        if approve and value > self.limits[owner]:
            raise NotAllowedError(
                f"{what} is above {self.name}'s approval limit of {self.limits[owner]:,.0f} in "
                f"the {owner} queue: an approver with a higher limit must decide it"
            )


HASHER = PasswordHasher()  # argon2id, the library's (RFC 9106) default cost


@functools.cache
def _unknown_user_hash() -> str:
    """Checked when the name is unknown, so sign-in takes as long for any name."""
    return HASHER.hash(os.urandom(16).hex())


@dataclass(frozen=True)
class Users:
    """The users file, loaded; ``path`` is where it is saved."""

    path: Path
    file: UsersFile

    def sign_in(self, name: str, password: str) -> Identity:
        """The identity of ``name`` if ``password`` is theirs; ``IdentityError`` otherwise."""
        entry = self.file.users.get(name)
        try:
            HASHER.verify(entry.password if entry else _unknown_user_hash(), password)
        except (VerificationError, InvalidHashError):
            entry = None
        if entry is None:
            raise IdentityError(
                f"sign-in failed for {name!r}: unknown user or wrong password "
                f"(users in {self.path}; set {ENV_USER} and {ENV_PASSWORD}, or type them)"
            )
        return entry.identity(name, "password")

    def from_headers(self, headers: Mapping[str, str]) -> Identity:
        """The identity a trusted reverse proxy vouches for in ``trusted_header``."""
        header = self.file.trusted_header
        if header is None:
            raise IdentityError(f"{self.path} trusts no proxy header: sign in with a password")
        lowered = {k.lower(): v for k, v in headers.items()}
        name = lowered.get(header.lower(), "").strip()
        entry = self.file.users.get(name)
        if entry is None:
            raise IdentityError(
                f"the proxy header {header} names {name!r}, not a user in {self.path}"
                if name
                else f"no {header} header: open the dashboard through the signing-in proxy"
            )
        return entry.identity(name, f"header {header}")

    def current(self, identity: Identity) -> Identity | None:
        """``identity`` as this users file has it now: the role and limits an admin set since
        the sign-in, or None once the user was removed (a session outlives neither)."""
        entry = self.file.users.get(identity.name)
        return None if entry is None else entry.identity(identity.name, identity.method)

    def admins(self) -> list[str]:
        return [n for n, e in self.file.users.items() if e.role == "admin"]

    def with_user(self, name: str, role: Role, password: str, limits: Mapping[str, float]) -> Users:
        """A copy with ``name`` added (or replaced), its password hashed."""
        problems = [Problem("limits", f"unknown queue {q!r}") for q in limits if q not in OWNERS]
        if len(password) < MIN_PASSWORD:
            problems.append(Problem("password", f"use at least {MIN_PASSWORD} characters"))
        if limits and ROLES.index(role) < ROLES.index("approver"):
            problems.append(Problem("limits", f"a {role} approves nothing: give no --limit"))
        if problems:
            raise UsersFileError(str(self.path), problems)
        entry = UserEntry(role=role, password=HASHER.hash(password), limits=dict(limits))
        users = {**self.file.users, name: entry}
        return Users(self.path, self.file.model_copy(update={"users": users}))

    def without_user(self, name: str) -> Users:
        if name not in self.file.users:
            raise IdentityError(f"no user {name!r} in {self.path}")
        users = {n: e for n, e in self.file.users.items() if n != name}
        return Users(self.path, self.file.model_copy(update={"users": users}))

    def save(self) -> None:
        """Write atomically (a reader never sees half a file), readable by the owner only."""
        data = self.file.model_dump(exclude_none=True)
        text = "# promotwin users: edit with `twin users add|remove`\n" + yaml.safe_dump(
            data, sort_keys=True
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def users_path(given: str | Path | None = None) -> Path:
    """The users file: ``given``, else ``TWIN_USERS``; ``IdentityError`` saying how if neither."""
    text = str(given) if given else os.environ.get(ENV_USERS, "")
    if not text:
        raise IdentityError(
            f"no users file: give --users FILE or set {ENV_USERS} "
            "(create one with `twin users add NAME --role approver --limit QUEUE=VALUE`)"
        )
    return Path(text)


def load_users(path: str | Path, *, missing_ok: bool = False) -> Users:
    """Read and validate a users file (every problem listed); an empty one if ``missing_ok``."""
    path = Path(path)
    if not path.is_file():
        if missing_ok and not path.exists():
            return Users(path, UsersFile())
        raise UsersFileError(str(path), [Problem("file", "not found: check the path")])
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsersFileError(str(path), [Problem("file", "not UTF-8 text")]) from None
    parsed = parse_yaml_model(text, UsersFile, str(path), UsersFileError, "users file")
    return Users(path, parsed)
