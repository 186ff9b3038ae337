"""What the exceptions & audit page shows and does: the approval store's open exceptions by
owner and priority, sign-in and approve/reject (through ``Store.decide``, which checks the
signed-in user's role, queues and limit and writes the audit trail), audit log search and the
hash-chain check.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from promotwin.workflow.identity import ENV_USERS, Identity, Users, load_users
from promotwin.workflow.rules import PRIORITIES
from promotwin.workflow.store import Store, StoreError, Verification


@dataclass(frozen=True)
class StoreStatus:
    store: Store | None
    message: str


def open_store(path: str | Path | None) -> StoreStatus:
    """The approval store at ``path`` (a SQLite file or a SQLAlchemy URL); never created here."""
    if path is None or not str(path).strip():
        return StoreStatus(
            None,
            "No approval store given. Governed runs write one: `twin governance run SCENARIO "
            "--store FILE`; then start the dashboard with `twin dashboard --store FILE` or type "
            "the file's path above.",
        )
    try:
        return StoreStatus(Store(path, create=False), "")
    except StoreError as exc:
        return StoreStatus(None, str(exc))
    except Exception as exc:  # noqa: BLE001 - e.g. a file that is not a database
        return StoreStatus(None, f"{path} cannot be opened as an approval store ({exc}).")


def queue(
    store: Store, status: str | None = "open", owner: str | None = None, limit: int = 500
) -> pd.DataFrame:
    """Exceptions, highest priority and value at risk first, with the rules that routed them."""
    rows = store.list_exceptions(status, owner, None, limit)
    cols = [
        "id",
        "owner",
        "priority",
        "status",
        "run_id",
        "created_day",
        "expires_day",
        "kind",
        "sku",
        "origin",
        "destination",
        "qty",
        "value",
        "value_at_risk",
        "confidence",
        "reason",
        "rules",
        "policy_reason",
    ]
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=cols)
    frame = frame[cols].copy()
    frame["priority"] = frame["priority"].map(lambda p: PRIORITIES[int(p)])
    return frame


def by_owner_priority(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts of exceptions per owner queue and priority."""
    if not len(frame):
        return pd.DataFrame(columns=list(PRIORITIES))
    table = pd.crosstab(frame["owner"], frame["priority"])
    return table.reindex(columns=[p for p in reversed(PRIORITIES)], fill_value=0)


def configured_users() -> Users | str:
    """The users file the dashboard was started with (``TWIN_USERS``, never typed in the
    browser: whoever could point it at a file of their own would approve anything), or why
    deciding is not possible."""
    path = os.environ.get(ENV_USERS, "").strip()
    if not path:
        return (
            "Deciding needs signed-in users: create a users file with `twin users add NAME "
            "--role approver --limit QUEUE=VALUE --users FILE`, then start the dashboard with "
            f"{ENV_USERS}=FILE."
        )
    try:
        return load_users(path)
    except ValueError as exc:
        return f"The users file cannot be used: {exc}"


def header_identity(users: Users, headers: Mapping[str, str]) -> Identity | None:
    """The user a trusted reverse proxy names (when the users file trusts a header)."""
    return users.from_headers(headers) if users.file.trusted_header else None


def sign_in(users: Users, name: str, password: str) -> Identity:
    """Check a user name and password; ``ValueError`` with a plain reason."""
    if not name.strip() or not password:
        raise ValueError("Type your user name and password to sign in.")
    return users.sign_in(name.strip(), password)


def decide(
    store: Store, exception_id: int, approve: bool, identity: Identity, note: str = ""
) -> str:
    """Approve or reject as the signed-in user; the sentence to show. Raises ``ValueError``
    with a plain reason (role, queue, limit, own proposal, already decided)."""
    decision: Literal["approved", "rejected"] = "approved" if approve else "rejected"
    row = store.decide(exception_id, decision, identity, note)
    return (
        f"Exception {row['id']} {decision} by {identity.name} {identity.signature()}: "
        f"{row['kind']} {row['qty']:,} x {row['sku']} {row['origin']} → {row['destination']}."
    )


def search_audit(
    store: Store, text: str = "", run_id: str | None = None, limit: int = 1000
) -> pd.DataFrame:
    """Audit records (newest first) whose event, actor, SKU, location, rules or detail contain
    ``text`` (case-insensitive)."""
    cols = [
        "seq",
        "wall_time",
        "run_id",
        "event",
        "actor",
        "exception_id",
        "sim_day",
        "kind",
        "sku",
        "origin",
        "destination",
        "qty",
        "value",
        "rules",
        "detail",
    ]
    frame = store.audit_frame(run_id or None, cols)
    if text.strip():
        needle = text.strip().lower()
        hay = frame[["event", "actor", "sku", "origin", "destination", "rules", "detail"]]
        hay = hay.astype(str).apply(lambda c: c.str.lower())
        mask = hay.apply(lambda c: c.str.contains(needle, regex=False)).any(axis=1)
        if str(needle).isdigit():
            mask |= frame["exception_id"].astype(str) == needle
        frame = frame[mask]
    return frame.sort_values("seq", ascending=False).head(limit).reset_index(drop=True)


def verify_text(v: Verification) -> tuple[bool, str]:
    if v.ok:
        return True, f"Audit trail intact: {v.checked:,} records checked, the hash chain holds."
    return False, f"Audit trail broken at record {v.first_bad}: {v.problem}."
