"""``twin governance|exceptions|audit`` end to end: bad input writes nothing and exits 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from promotwin.cli.main import app
from promotwin.workflow.config import OWNERS
from promotwin.workflow.identity import Identity
from promotwin.workflow.store import Store, audit, audit_head

runner = CliRunner()
SCENARIO = {
    "name": "small",
    "start_date": "2026-03-02",
    "horizon_days": 12,
    "synthetic": {"stores": 3, "dcs": 1, "skus": 4, "suppliers": 1, "promotions": 1, "seed": 5},
}
RULES = """
name: cli
confidence: {min: 0.4}
routing: {expiry_days: 30}
planners: {capacity_per_day: 0}
"""
BAD_RULES = """
name: bad
at_threshold: sometimes
thresholds: {purchase: {max_value: -5}}
hard_limits: {budget_per_day: lots}
planners: {count: 0}
unknown_section: {}
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(SCENARIO))
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "bad.yaml").write_text(BAD_RULES)
    return tmp_path


def _run(files: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(
        app,
        [
            "governance",
            "run",
            str(files / "scenario.yaml"),
            "--store",
            str(files / "store.db"),
            "--rules",
            str(files / "rules.yaml"),
            "--seed",
            "2",
            *extra,
        ],
        env=env,
    )


def test_malformed_config_lists_every_problem_exits_2_and_writes_nothing(files: Path) -> None:
    out = files / "out"
    result = runner.invoke(
        app,
        [
            "governance",
            "run",
            str(files / "scenario.yaml"),
            "--store",
            str(files / "store.db"),
            "--rules",
            str(files / "bad.yaml"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2, result.output
    for where in (
        "at_threshold",
        "thresholds.purchase.max_value",
        "hard_limits.budget_per_day",
        "planners.count",
        "unknown_section",
    ):
        assert where in result.output
    assert "5 problem(s)" in result.output
    assert not (files / "store.db").exists() and not out.exists()

    validate = runner.invoke(app, ["governance", "validate", str(files / "bad.yaml")])
    assert validate.exit_code == 2 and "5 problem(s)" in validate.output


def test_config_naming_unknown_scenario_ids_is_bad_input(files: Path) -> None:
    (files / "ids.yaml").write_text("name: ids\nhard_limits: {blocked_skus: [NOT-A-SKU]}\n")
    result = _run(files, "--rules", str(files / "ids.yaml"))
    assert result.exit_code == 2 and "NOT-A-SKU" in result.output
    assert not (files / "store.db").exists()


PASSWORD = "long enough secret"


def said(result: Any) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def _as(users: Path, who: str, password: str = PASSWORD) -> dict[str, str]:
    """The environment a signed-in user runs with (credentials never on the command line)."""
    return {"TWIN_USERS": str(users), "TWIN_USER": who, "TWIN_PASSWORD": password}


@pytest.fixture
def users(files: Path) -> Path:
    """A users file made with `twin users add`: an admin first, then approvers and a viewer."""
    path = files / "users.yaml"
    env = {"TWIN_USERS": str(path), "TWIN_NEW_PASSWORD": PASSWORD}
    first = runner.invoke(app, ["users", "add", "root", "--role", "admin"], env=env)
    assert first.exit_code == 0, first.output
    for name, role, limits in (
        ("ana", "approver", [f"{q}=1e9" for q in OWNERS]),
        ("ben", "approver", [f"{q}=1e9" for q in OWNERS]),
        ("low", "approver", [f"{q}=1" for q in OWNERS]),
        ("vic", "viewer", []),
    ):
        limit_args = [a for lim in limits for a in ("--limit", lim)]
        added = runner.invoke(
            app,
            ["users", "add", name, "--role", role, *limit_args],
            env={**_as(path, "root"), "TWIN_NEW_PASSWORD": PASSWORD},
        )
        assert added.exit_code == 0, added.output
    return path


def test_users_add_and_list(users: Path) -> None:
    listed = runner.invoke(app, ["users", "list", "--users", str(users)])
    assert listed.exit_code == 0
    for name in ("root", "ana", "ben", "low", "vic"):
        assert name in listed.output
    assert "$argon2" not in listed.output and "1,000,000,000" in listed.output
    env = {"TWIN_USERS": str(users), "TWIN_NEW_PASSWORD": PASSWORD}
    nobody = runner.invoke(app, ["users", "add", "eve", "--role", "admin"], env=env)
    assert nobody.exit_code == 2 and "--user NAME" in said(nobody)  # the file has an admin
    not_admin = runner.invoke(
        app, ["users", "add", "eve", "--role", "admin"], env={**env, **_as(users, "ana")}
    )
    assert not_admin.exit_code == 2 and "ana's role is approver: this needs admin" in said(
        not_admin
    )
    bad = runner.invoke(
        app,
        ["users", "add", "eve", "--role", "approver", "--limit", "warehouse=5"],
        env={**env, **_as(users, "root")},
    )
    assert bad.exit_code == 2 and "--limit 'warehouse=5'" in said(bad)
    assert "eve" not in users.read_text()


def test_approving_needs_a_users_file_and_a_right_password(files: Path, users: Path) -> None:
    assert _run(files).exit_code == 0
    s = str(files / "store.db")
    first = Store(s, create=False).list_exceptions("open")[0]["id"]
    approve = ["exceptions", "approve", str(first), "--store", s]
    no_file = runner.invoke(app, approve, env={"TWIN_USERS": ""})
    assert no_file.exit_code == 2 and "no users file" in said(no_file)
    wrong = runner.invoke(app, approve, env=_as(users, "ana", "not the password"))
    assert wrong.exit_code == 2 and "sign-in failed for 'ana'" in said(wrong)
    no_password = runner.invoke(app, approve, env={**_as(users, "ana"), "TWIN_PASSWORD": ""})
    assert no_password.exit_code == 2 and "TWIN_PASSWORD" in said(no_password)
    viewer = runner.invoke(app, approve, env=_as(users, "vic"))
    assert viewer.exit_code == 2 and "vic's role is viewer" in said(viewer)
    low = runner.invoke(app, approve, env=_as(users, "low"))
    assert low.exit_code == 2 and "above low's approval limit of 1" in said(low)
    assert Store(s, create=False).get(first)["status"] == "open"  # nothing was decided


def test_the_planner_who_ran_it_cannot_approve_its_exceptions(files: Path, users: Path) -> None:
    ran = _run(files, "--users", str(users), "--user", "ana", env={"TWIN_PASSWORD": PASSWORD})
    assert ran.exit_code == 0, ran.output
    s = str(files / "store.db")
    store = Store(s, create=False)
    first = store.list_exceptions("open")[0]["id"]
    assert store.get(first)["proposed_by"] == "ana"
    own = runner.invoke(
        app, ["exceptions", "approve", str(first), "--store", s], env=_as(users, "ana")
    )
    assert own.exit_code == 2 and "ana proposed exception" in said(own)
    other = runner.invoke(
        app, ["exceptions", "approve", str(first), "--store", s], env=_as(users, "ben")
    )
    assert other.exit_code == 0 and "approved by ben as approver" in said(other)
    viewer_store = files / "viewer.db"
    refused = runner.invoke(
        app,
        ["governance", "run", str(files / "scenario.yaml"), "--store", str(viewer_store)],
        env=_as(users, "vic"),
    )
    assert refused.exit_code == 2 and "this needs planner" in said(refused)
    assert not viewer_store.exists()  # refused before anything was written


def test_list_approve_reject_and_verify(files: Path, users: Path) -> None:
    result = _run(files)
    assert result.exit_code == 0, result.output
    assert "exceptions raised" in result.output
    store = Store(files / "store.db", create=False)
    open_ = store.list_exceptions("open")
    assert len(open_) >= 2
    first, second = open_[0]["id"], open_[1]["id"]
    s = str(files / "store.db")

    listed = runner.invoke(app, ["exceptions", "list", "--store", s, "--limit", "500"])
    assert listed.exit_code == 0 and "confidence" in listed.output

    ok = runner.invoke(
        app, ["exceptions", "approve", str(first), "--store", s], env=_as(users, "ana")
    )
    assert ok.exit_code == 0 and "approved by ana" in ok.output
    again = runner.invoke(
        app, ["exceptions", "reject", str(first), "--store", s], env=_as(users, "ben")
    )
    assert again.exit_code == 2 and "already approved by ana" in again.output
    no = runner.invoke(
        app,
        ["exceptions", "reject", str(second), "--store", s, "--note", "no"],
        env=_as(users, "ben"),
    )
    assert no.exit_code == 0
    assert store.get(first)["status"] == "approved" and store.get(second)["status"] == "rejected"
    frame = store.audit_frame()
    decided = frame[frame["event"].isin(["approved", "rejected"])]
    assert decided[["exception_id", "event", "actor"]].values.tolist() == [
        [first, "approved", "ana"],
        [second, "rejected", "ben"],
    ]

    verified = runner.invoke(app, ["audit", "verify", "--store", s])
    assert verified.exit_code == 0 and "intact" in verified.output

    # once nothing is open, the empty list says why and how to see the decided ones
    ben = Identity("ben", "approver", {q: float("inf") for q in OWNERS}, "password")
    for row in store.list_exceptions("open"):
        store.decide(row["id"], "rejected", ben, "closing out")
    empty = runner.invoke(app, ["exceptions", "list", "--store", s])
    assert empty.exit_code == 0
    told = " ".join(empty.output.split())
    assert "no open exceptions" in told and "simulated planners" in told
    assert f"--store {s} --status all" in told and "1 approved" in told
    verified = runner.invoke(app, ["audit", "verify", "--store", s])
    assert verified.exit_code == 0 and "intact" in verified.output
    with store.engine.begin() as conn:
        conn.execute(update(audit).where(audit.c.seq == 7).values(actor="someone else"))
    broken = runner.invoke(app, ["audit", "verify", "--store", s])
    assert broken.exit_code == 1 and "record 7" in broken.output


def test_commands_on_a_missing_store_exit_2_and_create_nothing(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.db")
    for args in (
        ["exceptions", "list", "--store", missing],
        ["exceptions", "approve", "1", "--store", missing],
        ["audit", "verify", "--store", missing],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "no store at" in result.output, args
    assert not Path(missing).exists()


def test_bad_options_are_bad_input(files: Path) -> None:
    _run(files)
    s = str(files / "store.db")
    status = runner.invoke(app, ["exceptions", "list", "--store", s, "--status", "pending"])
    assert status.exit_code == 2 and "--status" in status.output
    nobody = runner.invoke(app, ["exceptions", "approve", "1", "--store", s], env={"TWIN_USER": ""})
    assert nobody.exit_code == 2 and "no users file" in said(nobody)
    unknown = runner.invoke(app, ["exceptions", "approve", "9999", "--store", s])
    assert unknown.exit_code == 2 and "no exception 9999" in unknown.output


def test_the_manifest_anchor_catches_a_truncation_the_anchor_file_hides(files: Path) -> None:
    """The intruder cuts the log and its head back, and also the anchor file's last lines: the
    head the run's manifest recorded still names what is missing."""
    out = files / "out"
    assert _run(files, "--out", str(out)).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    store = Store(files / "store.db", create=False)
    assert manifest["audit"]["seq"] == store.head()[0] > 10
    assert manifest["audit"]["hash"] == store.head()[1]
    s = str(files / "store.db")
    clean = runner.invoke(app, ["audit", "verify", "--store", s, "--manifest", str(out)])
    assert clean.exit_code == 0 and "intact" in clean.output, clean.output

    keep = manifest["audit"]["seq"] - 5
    with store.engine.begin() as conn:
        kept = conn.execute(select(audit.c.hash).where(audit.c.seq == keep)).scalar_one()
        conn.execute(delete(audit).where(audit.c.seq > keep))
        conn.execute(update(audit_head).values(seq=keep, hash=kept))
    anchor_file = files / "store.db.anchor"
    lines = anchor_file.read_text().splitlines()
    anchor_file.write_text("".join(f"{x}\n" for x in lines if json.loads(x)["seq"] <= keep))

    alone = runner.invoke(app, ["audit", "verify", "--store", s])
    assert alone.exit_code == 0  # the chain and what is left of the anchor file agree
    caught = runner.invoke(app, ["audit", "verify", "--store", s, "--manifest", str(out)])
    assert caught.exit_code == 1, caught.output
    assert f"record {keep + 1}..{keep + 5} missing" in caught.output
    assert "manifest.json" in caught.output


def test_verify_with_a_bad_manifest_is_bad_input(files: Path) -> None:
    assert _run(files).exit_code == 0
    s = str(files / "store.db")
    (files / "notes.json").write_text('{"run_id": "x"}')
    for bad, says in ((files / "nothing", "no manifest at"), (files / "notes.json", "no audit")):
        result = runner.invoke(app, ["audit", "verify", "--store", s, "--manifest", str(bad)])
        assert result.exit_code == 2 and says in result.output, result.output
