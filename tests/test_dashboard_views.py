"""The logic behind the dashboard pages, without Streamlit."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from promotwin.cli.intelligence import readiness_snapshot
from promotwin.cli.main import app
from promotwin.dashboards import approvals, fmt, leadership, planner, rollout
from promotwin.policies.readiness import readiness
from promotwin.policies.registry import make_policy
from promotwin.scenarios import Scenario, load_scenario, parse_scenario
from promotwin.testing.dashboards import approval_store, experiment_folder, shadow_store
from promotwin.twin import simulate
from promotwin.workflow.config import OWNERS
from promotwin.workflow.identity import Identity, Users, load_users
from promotwin.workflow.store import ConflictError

PROMO = "SUMMER-COOL"


@pytest.fixture(scope="module")
def appliance() -> Scenario:
    return load_scenario("appliance_promo")


@pytest.fixture(scope="module")
def current(appliance: Scenario) -> planner.PlannerResult:
    s = planner.PromoSettings.of(planner.find_promotion(appliance, PROMO))
    return planner.project(appliance, PROMO, s)


@pytest.fixture(scope="module")
def deeper(appliance: Scenario, current: planner.PlannerResult) -> planner.PlannerResult:
    return planner.project(appliance, PROMO, dataclasses.replace(current.settings, depth=0.4))


def test_variant_changes_only_the_promotion(appliance: Scenario) -> None:
    s = planner.PromoSettings.of(appliance.promotions[0])
    v = planner.variant(appliance, PROMO, dataclasses.replace(s, depth=0.4, ecommerce_cap=0.5))
    p = v.promotions[0]
    assert p.depth == 0.4 and max(w.lift for w in p.ecommerce_waves) == 0.5
    assert v.skus == appliance.skus and v.promotions[0].skus == appliance.promotions[0].skus
    with pytest.raises(ValueError, match="at least one channel"):
        planner.variant(appliance, PROMO, dataclasses.replace(s, channels=()))
    with pytest.raises(ValueError, match="must run between"):
        planner.variant(
            appliance, PROMO, dataclasses.replace(s, end=s.start - dt.timedelta(days=1))
        )
    with pytest.raises(ValueError, match="no promotion 'NOPE'"):
        planner.variant(appliance, "NOPE", s)


def test_variant_yaml_round_trips(appliance: Scenario) -> None:
    s = planner.PromoSettings.of(appliance.promotions[0])
    v = planner.variant(appliance, PROMO, dataclasses.replace(s, depth=0.3))
    again = parse_scenario(planner.variant_yaml(v, "variant-30"))
    assert again.name == "variant-30"
    assert again.model_copy(update={"name": v.name}) == v


def test_one_run_serves_kpis_and_readiness_exactly(
    appliance: Scenario, current: planner.PlannerResult
) -> None:
    """The capturing wrapper changes nothing: same run id and KPIs as a plain run, and the same
    readiness as ``twin readiness`` (which runs the twin to the assessment day on its own)."""
    plain = simulate(appliance, make_policy("base-stock"), seed=0, days=current.days)
    assert plain.run_id == current.run_id
    for key in planner.KPI_KEYS:
        assert current.kpis[key] == pytest.approx(plain.kpis[key], nan_ok=True)
    snap, elasticity = readiness_snapshot(appliance, appliance.promotions[0], 7, 0)
    cli = readiness(
        snap, PROMO, 0.8, appliance.demand.forecast_error, elasticity, appliance.promotions[0].depth
    )
    assert current.readiness is not None
    assert current.readiness.score == pytest.approx(cli.score)
    assert [m.action for m in current.readiness.mitigations] == [m.action for m in cli.mitigations]


def test_deeper_discount_means_more_uplift_more_stockouts_lower_readiness(
    current: planner.PlannerResult, deeper: planner.PlannerResult
) -> None:
    assert deeper.outlook.extra_units > current.outlook.extra_units * 1.2
    up_now = current.outlook.uplift.set_index(["by", "group", "channel"])["uplift"]
    up_deep = deeper.outlook.uplift.set_index(["by", "group", "channel"])["uplift"]
    assert (up_deep > up_now).all()
    assert deeper.kpis["promo_lost_sales_units"] > current.kpis["promo_lost_sales_units"]
    assert deeper.lost[["walk_in", "pickup", "ecommerce"]].to_numpy().sum() > (
        current.lost[["walk_in", "pickup", "ecommerce"]].to_numpy().sum()
    )
    assert deeper.kpis["readiness"] < current.kpis["readiness"]
    o = current.outlook
    assert (o.uplift["low"] < o.uplift["uplift"]).all() and (
        o.uplift["uplift"] < o.uplift["high"]
    ).all()
    assert o.margin_low <= o.margin <= o.margin_high
    assert o.margin - o.margin_before_funding == pytest.approx(o.vendor_funding)


def test_spill_over_and_margin_match_the_demand_model_by_hand(appliance: Scenario) -> None:
    """Cannibalised categories lose units, the halo category gains; the expected funding is
    the funding rate times the expected promoted units."""
    s = planner.variant(appliance, PROMO, planner.PromoSettings.of(appliance.promotions[0]))
    o = planner.outlook(s, PROMO)
    spill = o.spill.set_index("category")
    assert spill.loc["cooling", "change_units"] < 0 and spill.loc["kitchen", "change_units"] < 0
    assert spill.loc["accessories", "change_units"] > 0
    assert spill.loc["floorcare", "change_units"] == pytest.approx(0.0)
    assert o.vendor_funding == pytest.approx(4.0 * o.promoted_units)
    # the promotion covers every cell of its SKUs: each grouping adds up to its promoted units
    for by in ("region", "cluster"):
        part = o.uplift[o.uplift["by"] == by]
        assert part["expected_units"].sum() == pytest.approx(o.promoted_units, rel=1e-9)


def test_side_by_side_and_csv(
    current: planner.PlannerResult, deeper: planner.PlannerResult
) -> None:
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


def test_sweep_runs_each_depth_in_order(current: planner.PlannerResult) -> None:
    seen: list[float] = []

    def fake(_s: Scenario, _p: str, settings: planner.PromoSettings, *_a: object) -> object:
        seen.append(settings.depth)
        return dataclasses.replace(current, settings=settings)

    ticks: list[int] = []
    frame = planner.sweep(
        None,  # type: ignore[arg-type]
        PROMO,
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
        "--server.port": "8600",
    }
    runner = CliRunner()
    assert "127.0.0.1" in runner.invoke(app, ["dashboard", "--help"]).output
    bad = runner.invoke(app, ["dashboard", "--port", "70000"])
    assert bad.exit_code == 2
