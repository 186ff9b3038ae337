"""The logic behind the dashboard pages, without Streamlit (the planner's core:
``test_outlook.py``)."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from promotwin.cli.main import app
from promotwin.dashboards import approvals, fmt, leadership, planner, rollout
from promotwin.scenarios import Scenario
from promotwin.testing.dashboards import (
    APPLIANCE_PROMO,
    appliance_projections,
    approval_store,
    experiment_folder,
    shadow_store,
)
from promotwin.twin import outlook
from promotwin.workflow.config import OWNERS
from promotwin.workflow.identity import Identity, Users, load_users
from promotwin.workflow.store import ConflictError


def test_side_by_side_and_csv() -> None:
    current, deeper = appliance_projections()
    t = planner.side_by_side(current, deeper).set_index("key")
    assert t.loc["promo_lost_sales_units", "change"] == pytest.approx(
        deeper.kpis["promo_lost_sales_units"] - current.kpis["promo_lost_sales_units"]
    )
    frame = pd.read_csv(io.StringIO(planner.results_csv(current, deeper)))
    assert set(frame["table"]) >= {"headline", "uplift_by_region", "lost_units_by_cluster"}
    assert (frame["depth"] == 0.4).all() and (frame["current_depth"] == 0.25).all()
    row = frame[(frame["table"] == "headline") & (frame["row"] == "promo_fill_rate")]
    assert row.set_index("column")["value"]["variant"] == pytest.approx(
        deeper.kpis["promo_fill_rate"]
    )


def test_sweep_runs_each_depth_in_order() -> None:
    current = appliance_projections()[0]
    seen: list[float] = []

    def fake(_s: Scenario, _p: str, settings: outlook.PromoSettings, *_a: object) -> object:
        seen.append(settings.depth)
        return dataclasses.replace(current, settings=settings)

    ticks: list[int] = []
    frame = planner.sweep(
        None,  # type: ignore[arg-type]
        APPLIANCE_PROMO,
        current.settings,
        (0.1, 0.3),
        progress=lambda i, n: ticks.append(i),
        run=fake,  # type: ignore[arg-type]
    )
    assert seen == [0.1, 0.3] and ticks == [1, 2]
    assert list(frame["depth"]) == [0.1, 0.3] and "expected_margin" in frame


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return experiment_folder(tmp_path_factory.mktemp("exp"))


def test_leadership_reuses_report_functions_and_follows_the_baseline(experiment: Path) -> None:
    assert leadership.find_experiments(experiment.parent) == [experiment]
    exp = leadership.load_experiment(experiment)
    assert exp.note == "" and exp.baseline == "order-point"
    first = leadership.summary(exp, "order-point")
    other = leadership.summary(exp, "base-stock")
    assert first and all("against order-point" in s for s in first)
    assert other and all("order-point" in s and "against base-stock" in s for s in other)
    table = leadership.kpi_table(exp, "base-stock")
    assert set(table[table["policy"] == "base-stock"]["change vs baseline"]) == {"baseline"}
    assert table["95% CI"].str.contains(" to ").all()
    costs = leadership.cost_table(exp)
    assert list(costs.columns[3:]) == [
        "lost-sale cost ($)",
        "ordering cost ($)",
        "holding cost ($)",
        "transport cost ($)",
        "expedite cost ($)",
        "total cost ($)",
    ]
    assert len(costs) == len(exp.results.groupby(["scenario", "variation", "policy"]))
    titles = [t for t, png in leadership.charts(exp, "base-stock") if png[:4] == b"\x89PNG"]
    assert any("against base-stock" in t for t in titles) and any("depth" in t for t in titles)


def test_leadership_explains_a_wrong_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        leadership.find_experiments(tmp_path / "missing")
    with pytest.raises(ValueError, match="twin compare"):
        leadership.load_experiment(tmp_path)


def test_shadow_views(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    assert "No shadow run store at" in rollout.open_store(missing).message
    assert not missing.exists(), "looking at a store must never create one"
    assert "No shadow run store given" in rollout.open_store(None).message
    shadow_store(tmp_path / "s.sqlite")
    store = rollout.open_store(tmp_path / "s.sqlite").store
    assert store is not None
    runs = rollout.runs_over_time(store)
    assert rollout.health(runs) == {"ok": 2, "partial": 0, "failed": 1}
    assert list(rollout.problem_runs(runs)["reason"]) == [
        "ErpUnavailable: connection refused after 3 attempts"
    ]
    assert runs["agreement_rate"].iloc[0] == pytest.approx(0.25)  # A agreed, of A, B, C, D
    diff = rollout.differences(store, "run1")
    assert list(diff["sku"]) == ["B", "D", "C"]  # 50 x 50 = 2,500, then 8 x 1, 5 x 1
    assert diff["value"].is_monotonic_decreasing and not diff["agreed"].any()
    assert rollout.counterfactual_table(store) is None


def test_approvals_decide_writes_the_audit_trail(tmp_path: Path) -> None:
    store = approval_store(tmp_path / "a.sqlite")
    assert "no store at" in approvals.open_store(tmp_path / "x.sqlite").message
    q = approvals.queue(store)
    assert list(q["priority"])[0] == "high" and len(q) == 4
    counts = approvals.by_owner_priority(q)
    assert int(counts.to_numpy().sum()) == 4 and list(counts.columns) == ["high", "medium", "low"]
    every_queue = dict.fromkeys(OWNERS, 1e6)
    ann = Identity("ann", "approver", every_queue, "password")
    viewer = Identity("vic", "viewer", {}, "password")
    with pytest.raises(ValueError, match="role is viewer"):
        approvals.decide(store, 1, True, viewer)
    assert "approved by ann as approver" in approvals.decide(store, 1, True, ann, "ok")
    with pytest.raises(ConflictError):
        approvals.decide(store, 1, False, Identity("bob", "approver", every_queue, "password"))
    assert len(approvals.queue(store)) == 3
    found = approvals.search_audit(store, "ann")
    assert list(found["event"]) == ["approved"]
    assert approvals.verify_text(store.verify())[0]


def test_approvals_sign_in_by_password_or_trusted_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWIN_USERS", raising=False)
    assert "twin users add" in str(approvals.configured_users())
    path = tmp_path / "users.yaml"
    load_users(path, missing_ok=True).with_user("ann", "planner", "ann's password", {}).save()
    monkeypatch.setenv("TWIN_USERS", str(path))
    users = approvals.configured_users()
    assert isinstance(users, Users)
    assert approvals.header_identity(users, {"X-Forwarded-User": "ann"}) is None  # not trusted
    with pytest.raises(ValueError, match="user name and password"):
        approvals.sign_in(users, "ann", "")
    assert approvals.sign_in(users, " ann ", "ann's password").role == "planner"
    path.write_text("trusted_header: X-Auth-User\n" + path.read_text())
    proxied = approvals.configured_users()
    assert isinstance(proxied, Users)
    found = approvals.header_identity(proxied, {"X-Auth-User": "ann"})
    assert found is not None and found.method == "header X-Auth-User"
    path.write_text("users: [nobody]\n")
    assert "cannot be used" in str(approvals.configured_users())


def test_formats() -> None:
    assert fmt.money(3_869_193.9) == "$3.87M" and fmt.money(-1234.4) == "−$1,234"
    assert fmt.money(10, signed=True) == "+$10" and fmt.money(float("nan")) == "–"
    assert fmt.pct(0.8213) == "82.1%" and fmt.points(-0.099) == "-9.9 pts"
    assert fmt.units(16795) == "16,795 units"
    assert fmt.kpi_label("gross_margin") == "gross margin ($)"
    assert fmt.kpi_change("fill_rate", 0.9, 0.8) == "+10.0 pts"
    assert fmt.plain_error(FileNotFoundError("x.yaml")).startswith("File not found")
    assert "Traceback" not in fmt.plain_error(RuntimeError("boom"))


def test_twin_dashboard_command() -> None:
    from promotwin.cli import dashboard

    cmd = dashboard.command(8600)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and Path(cmd[4]).is_file()
    flags = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert flags == {
        "--server.headless": "true",
        "--server.address": "127.0.0.1",
        "--browser.gatherUsageStats": "false",
        "--client.toolbarMode": "minimal",
        "--server.port": "8600",
    }
    runner = CliRunner()
    assert "127.0.0.1" in runner.invoke(app, ["dashboard", "--help"]).output
    bad = runner.invoke(app, ["dashboard", "--port", "70000"])
    assert bad.exit_code == 2
