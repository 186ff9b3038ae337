"""Who may decide exceptions: sign-in, roles, queues, limits and separation of duties, in the
store API (on SQLite and PostgreSQL) and in the users file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from promotwin.workflow.identity import (
    Identity,
    IdentityError,
    NotAllowedError,
    Users,
    UsersFileError,
    load_users,
)
from promotwin.workflow.store import AuditEvent, ConflictError, Store

PASSWORD = "correct horse battery"


def _exception(i: int, owner: str, value: float, proposed_by: str = "") -> dict[str, Any]:
    return {
        "run_id": "r1",
        "owner": owner,
        "priority": 1,
        "created_day": 0,
        "expires_day": 3,
        "policy": "test",
        "kind": "purchase",
        "origin": "V0",
        "destination": "DC",
        "sku": f"K{i}",
        "qty": 10,
        "unit_cost": value / 10,
        "confidence": 0.5,
        "value": value,
        "value_at_risk": value,
        "rules": "purchase.max_value",
        "reason": "value over limit",
        "policy_reason": "below reorder point",
        "snapshot_hash": "abc",
        "proposed_by": proposed_by,
    }


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> Users:
    path = tmp_path_factory.mktemp("users") / "users.yaml"
    found = load_users(path, missing_ok=True)
    for name, role, limits in (
        ("ana", "approver", {"supply_chain": 10_000.0}),
        ("bob", "approver", {"supply_chain": 1e6, "merchandising": 100.0}),
        ("vic", "viewer", {}),
        ("pat", "planner", {}),
        ("adm", "admin", {}),
    ):
        found = found.with_user(name, role, PASSWORD, limits)  # type: ignore[arg-type]
    found.save()
    return load_users(path)  # what a later process reads back


@pytest.fixture
def queue(store_url: str) -> tuple[Store, list[int]]:
    """Open exceptions: 5,000 and 50,000 in supply chain (the first proposed by ana), 500 in
    merchandising."""
    store = Store(store_url)
    rows = [
        _exception(0, "supply_chain", 5_000.0, proposed_by="ana"),
        _exception(1, "supply_chain", 50_000.0),
        _exception(2, "merchandising", 500.0),
        _exception(3, "supply_chain", 5_000.0),
    ]
    with store.begin() as conn:
        ids = store.create_exceptions(conn, rows)
        store.append(
            conn, [AuditEvent("r1", "routed", "policy:test", 0, exception_id=i) for i in ids]
        )
    return store, ids


def _nothing_decided(store: Store, ids: list[int]) -> None:
    assert all(store.get(i)["status"] == "open" for i in ids)
    assert set(store.audit_frame()["event"]) == {"routed"}
    assert store.verify().ok


def test_sign_in_needs_the_right_password_and_names_no_user(users: Users) -> None:
    ana = users.sign_in("ana", PASSWORD)
    assert (ana.role, dict(ana.limits), ana.method) == (
        "approver",
        {"supply_chain": 1e4},
        "password",
    )
    for name, password in (("ana", "wrong password"), ("nobody", PASSWORD)):
        with pytest.raises(IdentityError, match="unknown user or wrong password"):
            users.sign_in(name, password)
    text = users.path.read_text()
    assert PASSWORD not in text and text.count("$argon2id$") == 5  # salted hashes only
    assert len({line for line in text.splitlines() if "$argon2id$" in line}) == 5


def test_viewers_planners_and_admins_without_limits_cannot_decide(
    users: Users, queue: tuple[Store, list[int]]
) -> None:
    store, ids = queue
    for name in ("vic", "pat"):
        with pytest.raises(NotAllowedError, match="needs the approver role"):
            store.decide(ids[3], "approved", users.sign_in(name, PASSWORD))
        with pytest.raises(NotAllowedError, match="needs the approver role"):
            store.decide(ids[3], "rejected", users.sign_in(name, PASSWORD))
    with pytest.raises(NotAllowedError, match="queues only: none"):
        store.decide(ids[3], "approved", users.sign_in("adm", PASSWORD))
    _nothing_decided(store, ids)


def test_an_approver_decides_only_in_their_queues(
    users: Users, queue: tuple[Store, list[int]]
) -> None:
    store, ids = queue
    with pytest.raises(
        NotAllowedError, match=r"only: supply_chain; exception \d+ \(merchandising queue"
    ):
        store.decide(ids[2], "rejected", users.sign_in("ana", PASSWORD))
    _nothing_decided(store, ids)


def test_nobody_approves_above_their_limit_but_may_reject(
    users: Users, queue: tuple[Store, list[int]]
) -> None:
    store, ids = queue
    ana = users.sign_in("ana", PASSWORD)
    with pytest.raises(NotAllowedError, match="above ana's approval limit of 10,000"):
        store.decide(ids[1], "approved", ana)
    bob = users.sign_in("bob", PASSWORD)
    with pytest.raises(NotAllowedError, match="above bob's approval limit of 100"):
        store.decide(ids[2], "approved", bob)
    _nothing_decided(store, ids)
    assert store.decide(ids[1], "rejected", ana)["status"] == "rejected"  # saying no is in reach
    assert store.decide(ids[3], "approved", ana)["status"] == "approved"  # 5,000 <= 10,000


def test_nobody_approves_what_they_proposed(users: Users, queue: tuple[Store, list[int]]) -> None:
    store, ids = queue
    with pytest.raises(NotAllowedError, match="ana proposed exception .* cannot approve it"):
        store.decide(ids[0], "approved", users.sign_in("ana", PASSWORD))
    _nothing_decided(store, ids)
    row = store.decide(ids[0], "approved", users.sign_in("bob", PASSWORD))  # another approver
    assert (row["status"], row["decided_by"], row["proposed_by"]) == ("approved", "bob", "ana")


def test_every_decision_records_who_when_and_under_which_role(
    users: Users, queue: tuple[Store, list[int]]
) -> None:
    store, ids = queue
    store.decide(ids[3], "approved", users.sign_in("ana", PASSWORD), note="promo confirmed")
    header = Identity("bob", "approver", {"supply_chain": 1e6}, "header X-Forwarded-User")
    store.decide(ids[1], "rejected", header)
    rows = [store.get(i) for i in (ids[3], ids[1])]
    assert [(r["decided_by"], r["decided_role"]) for r in rows] == [
        ("ana", "approver"),
        ("bob", "approver"),
    ]
    assert all(r["decided_at"] for r in rows)
    frame = store.audit_frame()
    decided = frame[frame["event"].isin(["approved", "rejected"])]
    assert list(decided["actor"]) == ["ana", "bob"]
    assert list(decided["detail"]) == [
        "as approver (signed in by password); promo confirmed",
        "as approver (signed in by header X-Forwarded-User)",
    ]
    assert decided["wall_time"].str.match(r"\d{4}-\d\d-\d\dT").all()
    with pytest.raises(ConflictError, match="already approved by ana"):
        store.decide(ids[3], "rejected", users.sign_in("bob", PASSWORD))
    assert store.verify().ok


def test_a_trusted_proxy_header_names_a_known_user_only(users: Users, tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="trusts no proxy header"):
        users.from_headers({"X-Forwarded-User": "ana"})
    path = tmp_path / "proxied.yaml"
    path.write_text("trusted_header: X-Forwarded-User\n" + users.path.read_text())
    proxied = load_users(path)
    ana = proxied.from_headers({"x-forwarded-user": "ana"})  # header names are case-insensitive
    assert (ana.name, ana.role, ana.method) == ("ana", "approver", "header X-Forwarded-User")
    with pytest.raises(IdentityError, match="names 'mallory', not a user"):
        proxied.from_headers({"X-Forwarded-User": "mallory"})
    with pytest.raises(IdentityError, match="no X-Forwarded-User header"):
        proxied.from_headers({})


def test_a_bad_users_file_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "users:\n"
        "  ana: {role: approver, password: hunter22, limits: {warehouse: 5}}\n"
        "  bob: {role: boss, password: '$argon2id$x'}\n"
        "extra: 1\n"
    )
    with pytest.raises(UsersFileError) as caught:
        load_users(path)
    text = str(caught.value)
    for where in ("users.ana.password", "users.ana.limits.warehouse", "users.bob.role", "extra"):
        assert where in text, text
    found = load_users(tmp_path / "new.yaml", missing_ok=True)
    with pytest.raises(UsersFileError) as weak:
        found.with_user("vic", "viewer", "short", {"supply_chain": 5.0})
    assert "at least 8 characters" in str(weak.value) and "approves nothing" in str(weak.value)
