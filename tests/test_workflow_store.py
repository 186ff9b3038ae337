"""The approval store and audit trail: concurrent approvals, tamper detection; each test on
SQLite and on a real PostgreSQL server (``store_url``)."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from promotwin.workflow.identity import Identity
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


def _approver_named(name: str) -> Identity:
    """A signed-in approver of the supply-chain queue (sign-in itself: test_identity.py)."""
    return Identity(name, "approver", {"supply_chain": 1e9}, "password")


def _approver(path: str, who: str, ids: list[int], start: Any, out: Any) -> None:
    """A separate process: wait for the other, then try to approve every exception."""
    store = Store(path, create=False)
    won, lost = [], []
    start.wait()
    for i in ids:
        try:
            store.decide(i, "approved", _approver_named(who))
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
    store.decide(ids[0], "rejected", _approver_named("carol"), note="too early")
    with pytest.raises(ConflictError, match=r"already rejected by carol"):
        store.decide(ids[0], "approved", _approver_named("dave"))
    with pytest.raises(StoreError, match="no exception 999"):
        store.decide(999, "approved", _approver_named("dave"))
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


# -- anchors: the head recorded outside the database ---------------------------------------------


def _truncate(store: Store, keep: int) -> None:
    """What someone with SQL access does to hide the last records: delete them and point the
    head at the last one kept, so the shorter chain is intact."""
    with store.engine.begin() as conn:
        kept = conn.execute(select(audit.c.hash).where(audit.c.seq == keep)).scalar_one()
        conn.execute(delete(audit).where(audit.c.seq > keep))
        conn.execute(update(audit_head).values(seq=keep, hash=kept))


def test_an_untouched_store_verifies_against_its_anchors(chain: Store) -> None:
    result = chain.verify()
    assert result.ok and result.anchors == 1 and result.checked == 10
    assert chain.anchor is not None and chain.anchor.read()[-1].seq == 10


def test_truncating_the_log_and_rewriting_the_head_is_detected(chain: Store) -> None:
    with chain.begin() as conn:  # a second transaction: the anchor file holds heads 10 and 11
        chain.append(conn, [AuditEvent("r1", "expired", "governance", 11)])
    _truncate(chain, 8)
    result = chain.verify()
    assert not result.ok and result.first_bad == 9
    assert result.problem.startswith("record 9..11 missing")
    assert chain.anchor is not None and str(chain.anchor.path) in result.problem


def test_an_anchor_the_rewritten_chain_contradicts_is_named(chain: Store) -> None:
    """Rewritten from record 4 on (same length, new hashes): the anchored record 10 differs."""
    from promotwin.workflow.store import GENESIS, record_hash

    with chain.engine.begin() as conn:
        rows = [dict(r) for r in conn.execute(select(audit).order_by(audit.c.seq)).mappings()]
        prev = GENESIS
        for row in rows:
            if row["seq"] >= 4:
                row["qty"], row["prev_hash"] = 0, prev
                row["hash"] = record_hash(row)
                conn.execute(update(audit).where(audit.c.seq == row["seq"]).values(**row))
            prev = row["hash"]
        conn.execute(update(audit_head).values(hash=prev))
    result = chain.verify()
    assert not result.ok and result.first_bad == 10 and "rewritten" in result.problem


def test_a_deleted_anchor_file_is_detected(chain: Store) -> None:
    assert chain.anchor is not None
    chain.anchor.path.unlink()
    result = chain.verify()
    assert not result.ok and "missing or empty" in result.problem


def test_with_a_key_an_unsigned_anchor_is_refused(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With TWIN_AUDIT_KEY the intruder cannot write an anchor that matches the shorter log."""
    monkeypatch.setenv("TWIN_AUDIT_KEY", "s3cret-for-this-test")
    store = Store(store_url, anchor=tmp_path / "signed.anchor")
    for day in range(1, 4):
        with store.begin() as conn:
            store.append(conn, [AuditEvent("r1", "proposed", "policy:p", day)])
    assert store.verify().ok and store.verify().notes == ()
    assert store.anchor is not None
    _truncate(store, 2)
    head = store.head()
    store.anchor.path.write_text(f'{{"seq":{head[0]},"hash":"{head[1]}","at":"now"}}\n')
    result = store.verify()
    assert not result.ok and "not signed with TWIN_AUDIT_KEY" in result.problem
    monkeypatch.setenv("TWIN_AUDIT_KEY", "another key")
    store.anchor.path.write_text("")
    with store.begin() as conn:
        store.append(conn, [AuditEvent("r1", "proposed", "policy:p", 9)])
    monkeypatch.setenv("TWIN_AUDIT_KEY", "s3cret-for-this-test")
    assert "not signed" in store.verify().problem  # signed, but with the wrong key


def test_concurrent_writers_lose_no_record_and_anchor_every_head(store_url: str) -> None:
    """Four processes append 25 one-record transactions each: 100 records, 100 anchors."""
    store = Store(store_url)
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(4)
    procs = [ctx.Process(target=_appender, args=(store_url, f"w{i}", start)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    frame = store.audit_frame()
    assert sorted(frame["seq"]) == list(range(1, 101))
    assert frame["actor"].value_counts().to_dict() == {f"w{i}": 25 for i in range(4)}
    assert store.anchor is not None and sorted(a.seq for a in store.anchor.read()) == list(
        range(1, 101)
    )
    result = store.verify()
    assert result.ok and result.anchors == 100


def _appender(url: str, who: str, start: Any) -> None:
    store = Store(url, create=False)
    start.wait()
    for day in range(25):
        with store.begin() as conn:
            store.append(conn, [AuditEvent("r1", "proposed", who, day)])


# -- crashes: a writer killed mid-transaction leaves nothing behind --------------------------------


def _decide_and_hang(url: str, exception_id: int, inside: Any) -> None:
    """Approve inside a transaction, say so, and never commit (the parent kills this process)."""
    store = Store(url, create=False)
    with store.begin() as conn:
        store.decide_many(conn, [(exception_id, "approved", "victim")], None, role="approver")
        inside.set()
        time.sleep(600)


def test_a_writer_killed_mid_transaction_loses_nothing_and_blocks_nobody(store_url: str) -> None:
    store, ids = _store_with_exceptions(store_url, 2)
    before = store.head()
    ctx = mp.get_context("spawn")
    inside = ctx.Event()
    victim = ctx.Process(target=_decide_and_hang, args=(store_url, ids[0], inside))
    victim.start()
    assert inside.wait(timeout=60)
    os.kill(victim.pid or 0, signal.SIGKILL)  # a power cut for that process, holding the locks
    victim.join(timeout=30)
    assert victim.exitcode == -signal.SIGKILL

    reopened = Store(store_url, create=False)  # what a restarted process finds
    assert reopened.get(ids[0])["status"] == "open" and reopened.head() == before
    assert "approved" not in set(reopened.audit_frame()["event"])
    assert reopened.anchor is not None and reopened.anchor.read()[-1].seq == before[0]
    started = time.perf_counter()
    row = reopened.decide(ids[0], "approved", _approver_named("survivor"))
    assert time.perf_counter() - started < 10  # the dead writer's locks are gone
    assert row["decided_by"] == "survivor"
    result = reopened.verify()
    assert result.ok and result.checked == 3 and result.notes == ()


def test_a_governed_run_that_crashes_mid_execution_keeps_its_decisions(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The day's decisions are committed before the twin executes them: a crash on day 3 leaves
    days 0-2 complete, day 3 proposed and decided but not executed, and the chain intact."""
    from promotwin.policies.heuristics import BaseStockPolicy
    from promotwin.testing.scenarios import small_scenario
    from promotwin.twin import model
    from promotwin.twin.model import Twin
    from promotwin.workflow import GovernedWorkflow, parse_config

    workflow = GovernedWorkflow(
        parse_config("name: loose\nplanners: {capacity_per_day: 0}\n"), Store(store_url)
    )
    workflow.begin_run("crash")
    twin = Twin(small_scenario(horizon_days=10, warmup_days=0), BaseStockPolicy(), 7, workflow)
    execute = model.execute

    def crash_on_day_3(day: int, plan: Any, *args: Any) -> Any:
        if day == 3:
            raise KeyboardInterrupt("power cut")
        return execute(day, plan, *args)

    monkeypatch.setattr(model, "execute", crash_on_day_3)
    with pytest.raises(KeyboardInterrupt):
        twin.run()
    workflow.store.close()
    reopened = Store(store_url, create=False)
    frame = reopened.audit_frame("crash")
    day3 = frame[frame["sim_day"] == 3]["event"].value_counts()
    assert day3["auto_approved"] == day3["proposed"] > 0 and "executed" not in day3
    assert set(frame[frame["sim_day"] == 2]["event"]) >= {"proposed", "executed"}
    result = reopened.verify()
    assert result.ok and result.checked == len(frame) and result.anchors > 0
