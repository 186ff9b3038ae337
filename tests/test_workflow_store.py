"""The approval store and audit trail: concurrent approvals, tamper detection; each test on
SQLite and on a real PostgreSQL server (``store_url``)."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from promotwin.workflow.store import (
    AuditEvent,
    ConflictError,
    Store,
    StoreError,
    audit,
    audit_head,
)

N_EXCEPTIONS = 12


def _exception(run: str, i: int) -> dict[str, Any]:
    return {
        "run_id": run,
        "owner": "supply_chain",
        "priority": i % 3,
        "created_day": 0,
        "expires_day": 3,
        "policy": "test",
        "kind": "purchase",
        "origin": "V0",
        "destination": "DC",
        "sku": f"K{i}",
        "qty": 10 + i,
        "unit_cost": 2.0,
        "confidence": 0.5,
        "value": 20.0 + i,
        "value_at_risk": 30.0 + i,
        "rules": "purchase.max_value",
        "reason": "value over limit",
        "policy_reason": "below reorder point",
        "snapshot_hash": "abc",
    }


def _store_with_exceptions(url: str, n: int = N_EXCEPTIONS) -> tuple[Store, list[int]]:
    store = Store(url)
    with store.begin() as conn:
        ids = store.create_exceptions(conn, [_exception("r1", i) for i in range(n)])
        store.append(
            conn, [AuditEvent("r1", "routed", "policy:test", 0, exception_id=i) for i in ids]
        )
    return store, ids


def _approver(path: str, who: str, ids: list[int], start: Any, out: Any) -> None:
    """A separate process: wait for the other, then try to approve every exception."""
    store = Store(path, create=False)
    won, lost = [], []
    start.wait()
    for i in ids:
        try:
            store.decide(i, "approved", who)
            won.append(i)
        except ConflictError as exc:
            lost.append((i, str(exc)))
    out.put((who, won, lost))


def test_two_processes_approving_the_same_exceptions_exactly_one_wins(store_url: str) -> None:
    store, ids = _store_with_exceptions(store_url)
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_approver, args=(store_url, who, ids, start, out))
        for who in ("alice", "bob")
    ]
    for p in procs:
        p.start()
    results = {who: (won, lost) for who, won, lost in (out.get(timeout=60) for _ in procs)}
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    (a_won, a_lost), (b_won, b_lost) = results["alice"], results["bob"]
    assert sorted(a_won + b_won) == ids  # every exception approved exactly once
    assert not set(a_won) & set(b_won)
    assert len(a_lost) + len(b_lost) == len(ids)  # the other got a conflict each time
    for _, message in a_lost + b_lost:
        assert "already approved by" in message and "nothing changed" in message

    frame = store.audit_frame()
    approvals = frame[frame["event"] == "approved"]
    assert sorted(approvals["exception_id"].astype(int)) == ids  # one approval record each
    winner = {i: "alice" for i in a_won} | {i: "bob" for i in b_won}
    assert all(winner[int(r.exception_id)] == r.actor for r in approvals.itertuples())
    assert store.verify().ok


def test_a_decided_exception_cannot_be_decided_again(store_url: str) -> None:
    store, ids = _store_with_exceptions(store_url, 2)
    store.decide(ids[0], "rejected", "carol", note="too early")
    with pytest.raises(ConflictError, match=r"already rejected by carol"):
        store.decide(ids[0], "approved", "dave")
    with pytest.raises(StoreError, match="no exception 999"):
        store.decide(999, "approved", "dave")
    row = store.get(ids[0])
    assert (row["status"], row["decided_by"], row["note"]) == ("rejected", "carol", "too early")


def test_opening_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        Store(tmp_path / "nope.db", create=False)
    assert not (tmp_path / "nope.db").exists()


# -- tamper evidence -----------------------------------------------------------------------------


@pytest.fixture
def chain(store_url: str) -> Store:
    store = Store(store_url)
    with store.begin() as conn:
        store.append(
            conn,
            [
                AuditEvent("r1", "proposed", "policy:p", day, qty=day, value=day * 1.25)
                for day in range(1, 11)
            ],
        )
    assert store.verify().ok and store.verify().checked == 10
    return store


def _execute(store: Store, *statements: Any) -> None:
    with store.engine.begin() as conn:  # plain transaction, as an intruder with SQL would
        for s in statements:
            conn.execute(s)


def test_an_edited_record_is_named(chain: Store) -> None:
    _execute(chain, update(audit).where(audit.c.seq == 5).values(qty=500))
    result = chain.verify()
    assert not result.ok and result.first_bad == 5 and "edited" in result.problem


def test_an_edit_that_recomputes_its_own_hash_breaks_the_next_link(chain: Store) -> None:
    from promotwin.workflow.store import record_hash

    with chain.engine.begin() as conn:
        row = dict(conn.execute(select(audit).where(audit.c.seq == 5)).mappings().one())
        row["value"] = 0.0
        conn.execute(update(audit).where(audit.c.seq == 5).values(value=0.0, hash=record_hash(row)))
    result = chain.verify()
    assert not result.ok and result.first_bad == 6 and "does not follow record 5" in result.problem


def test_a_deleted_record_is_named(chain: Store) -> None:
    _execute(chain, delete(audit).where(audit.c.seq == 4))
    result = chain.verify()
    assert not result.ok and result.first_bad == 4 and "missing" in result.problem


def test_deleting_the_last_records_is_detected(chain: Store) -> None:
    _execute(chain, delete(audit).where(audit.c.seq >= 9))
    result = chain.verify()
    assert not result.ok and result.first_bad == 9 and "deleted" in result.problem


def test_reordered_records_are_named(chain: Store) -> None:
    # swap records 6 and 7 (their positions in the chain)
    _execute(
        chain,
        update(audit).where(audit.c.seq == 6).values(seq=-6),
        update(audit).where(audit.c.seq == 7).values(seq=6),
        update(audit).where(audit.c.seq == -6).values(seq=7),
    )
    result = chain.verify()
    assert not result.ok and result.first_bad == 6 and "does not follow" in result.problem


def test_an_edited_head_is_detected(chain: Store) -> None:
    _execute(chain, update(audit_head).values(seq=12))
    assert chain.verify().first_bad == 11


def test_appends_continue_the_chain_across_store_instances(chain: Store) -> None:
    other = Store(chain.url, create=False)
    with other.begin() as conn:
        other.append(conn, [AuditEvent("r2", "expired", "governance", 3)])
    result = chain.verify()
    assert result.ok and result.checked == 11
