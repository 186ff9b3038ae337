"""What the exceptions & audit page shows and does: the approval store's open exceptions by
owner and priority, approve/reject (through ``Store.decide``, which writes the audit trail),
audit log search and the hash-chain check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

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


def decide(store: Store, exception_id: int, approve: bool, by: str, note: str = "") -> str:
    """Approve or reject; the sentence to show. Raises ``ValueError`` with a plain reason."""
    if not by.strip():
        raise ValueError("Type your planner id first: every decision is signed in the audit trail.")
    decision: Literal["approved", "rejected"] = "approved" if approve else "rejected"
    row = store.decide(exception_id, decision, by.strip(), note)
    return (
        f"Exception {row['id']} {decision} by {by.strip()}: {row['kind']} {row['qty']:,} x "
        f"{row['sku']} {row['origin']} → {row['destination']}."
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
