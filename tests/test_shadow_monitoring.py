"""Shadow-mode monitoring on an in-memory ERP whose sales are set by hand: forecast error run by
run against hand-computed sums, one drift exception per run in a real approval store, health."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from promotwin.shadow import RetryPolicy, RunStore
from promotwin.shadow.monitoring import DRIFT_KIND, Monitor, accuracy_by_run, health_by_day
from promotwin.shadow.runner import ShadowResult, ShadowRunner
from promotwin.testing.shadow_erp import D0, HandErp, Sales, step
from promotwin.workflow.config import GovernanceConfigError, parse_config
from promotwin.workflow.store import Store


def runs(
    tmp_path: Path, sales: Sales, days: list[int], approvals: Store | None = None, config: str = ""
) -> tuple[RunStore, Monitor, list[ShadowResult]]:
    store = RunStore(tmp_path / "shadow.sqlite")
    governance = parse_config("name: t\n" + config) if config else parse_config("name: t")
    monitor = Monitor(store, governance, approvals)
    erp = HandErp(sales)
    runner = ShadowRunner(erp, store, "base-stock", monitor=monitor.record)
    return store, monitor, [runner.run_once(D0 + dt.timedelta(days=d)) for d in days]


def by_level(store: RunStore, run_id: str) -> dict[str, pd.Series]:
    acc = accuracy_by_run(store)
    return {r["level"]: r for _, r in acc[acc["run_id"] == run_id].iterrows()}


def test_a_week_scored_against_the_forecast_issued_before_it(tmp_path: Path) -> None:
    # S1 falls from 20 to 10 a day after D0, S2 stays at 20. The D0 run's trailing average
    # forecasts 20 a day at each store for the next week; the run a week later scores it:
    # f = 2 x 7 x 20 = 280, a = 7 x 10 + 7 x 20 = 210 at both levels (one SKU, one region)
    store, _, (first, last) = runs(tmp_path, step(10), [0, 7])
    assert by_level(store, first.run.run_id) == {}  # nothing issued before D0's week
    s = by_level(store, last.run.run_id)
    for level in ("sku-location-day", "sku-region-week"):
        assert s[level]["days"] == 7 and s[level]["actual_units"] == pytest.approx(210)
        assert s[level]["forecast_units"] == pytest.approx(280)
        assert s[level]["bias"] == pytest.approx(70 / 210)
    assert s["sku-location-day"]["wape"] == pytest.approx(70 / 210)


def test_region_week_nets_out_what_cell_day_counts(tmp_path: Path) -> None:
    # S1 falls to 10, S2 rises to 30: the region's week is forecast exactly (280 vs 280),
    # each store's days are 10 units off (WAPE 140 / 280)
    def up_down(code: str, d: dt.date) -> float:
        return 20.0 if d <= D0 else (10.0 if code == "S1" else 30.0)

    store, _, (_, last) = runs(tmp_path, up_down, [0, 7])
    s = by_level(store, last.run.run_id)
    assert s["sku-region-week"]["wape"] == pytest.approx(0) and s["sku-region-week"]["bias"] == 0
    assert s["sku-location-day"]["wape"] == pytest.approx(0.5)
    assert s["sku-location-day"]["bias"] == pytest.approx(0)


def test_each_day_is_scored_against_the_latest_run_before_it(tmp_path: Path) -> None:
    # daily runs: day D0+1+k is forecast by the run of D0+k, whose 28-day average holds k days
    # at 10 at S1: f = 20 - 10k/28. Week to D0+7: S1 f = 140 - 10 x 21/28 = 132.5, a = 70;
    # S2 f = a = 140
    store, _, results = runs(tmp_path, step(10), list(range(8)))
    s = by_level(store, results[-1].run.run_id)["sku-region-week"]
    assert s["forecast_units"] == pytest.approx(272.5) and s["actual_units"] == 210
    assert s["bias"] == pytest.approx(62.5 / 210)


def test_bias_past_the_threshold_raises_exactly_one_drift_exception(tmp_path: Path) -> None:
    approvals = Store(tmp_path / "approvals.sqlite")
    store, monitor, (_, last) = runs(tmp_path, step(10), [0, 7], approvals)
    found = approvals.list_exceptions(status=None)
    assert [(r["kind"], r["owner"], r["run_id"]) for r in found] == [
        (DRIFT_KIND, "merchandising", last.run.run_id)
    ]
    assert "bias +33.3% beyond ±20%" in found[0]["reason"]
    monitor.record(last)  # the same run told twice (a retry): still one exception
    assert len(approvals.list_exceptions(status=None)) == 1
    trail = approvals.audit_frame(last.run.run_id)
    assert trail["event"].tolist() == ["routed"] and trail["exception_id"].iloc[0] == found[0]["id"]
    assert approvals.verify().ok


def test_bias_below_the_threshold_raises_none(tmp_path: Path) -> None:
    # S1 to 18: f 280, a 266, bias +5.3%, WAPE 5.3% at SKU x region x week
    approvals = Store(tmp_path / "approvals.sqlite")
    store, _, (_, last) = runs(tmp_path, step(18), [0, 7], approvals)
    assert by_level(store, last.run.run_id)["sku-region-week"]["bias"] == pytest.approx(14 / 266)
    assert approvals.list_exceptions(status=None) == []
    # the same week with a tighter limit from the config crosses it
    approvals2 = Store(tmp_path / "approvals2.sqlite")
    _, _, _ = runs(
        tmp_path / "b", step(18), [0, 7], approvals2, "monitoring: {max_abs_bias: 0.05}\n"
    )
    assert len(approvals2.list_exceptions(status=None)) == 1


def test_monitoring_thresholds_validated_in_the_governance_config() -> None:
    with pytest.raises(GovernanceConfigError) as err:
        parse_config("name: t\nmonitoring: {max_abs_bias: 0, level: weekly, owner: models}\n")
    text = str(err.value)
    assert "monitoring.max_abs_bias" in text and "monitoring.level" in text
    assert "monitoring.owner" in text
    assert parse_config("name: t").monitoring.max_abs_bias == 0.2


def test_integration_health_per_day(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "shadow.sqlite")
    monitor = Monitor(store)
    flaky = HandErp(step(20), failures=2)
    retry = RetryPolicy(attempts=5, initial_delay=0.01, time_limit=10)
    ShadowRunner(flaky, store, "base-stock", retry=retry, monitor=monitor.record).run_once(D0)
    down = HandErp(step(20), failures=9)
    once = RetryPolicy(attempts=1, initial_delay=0.01, time_limit=10)
    ShadowRunner(down, store, "base-stock", retry=once, monitor=monitor.record).run_once(D0)
    health = health_by_day(store)
    assert len(health) == 1
    day = health.iloc[0]
    assert (day["runs"], day["ok"], day["failed"], day["retries"]) == (2, 1, 1, 2)
    assert 0 < day["read_seconds_max"] < 10


def test_cli_monitors_folder_runs_and_refuses_bad_input(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from promotwin.cli.main import app
    from promotwin.shadow import write_folder

    folder, store, approvals = tmp_path / "erp", tmp_path / "s.sqlite", tmp_path / "a.sqlite"
    base = ["shadow", "--erp", "folder", "--url", str(folder), "--store", str(store)]
    erp = HandErp(step(10))
    cli = CliRunner(env={"COLUMNS": "250"})
    for day in (0, 7):  # the ERP exports into the same folder every day
        write_folder(erp.read_state(D0 + dt.timedelta(days=day)), folder)
        done = cli.invoke(app, [*base, "--approvals", str(approvals)])
        assert done.exit_code == 0, done.output
    shown = cli.invoke(app, ["shadow", "monitor", "--store", str(store)])
    assert shown.exit_code == 0 and "+33.3%" in shown.output and "2026-05-08" in shown.output
    listed = cli.invoke(app, ["exceptions", "list", "--store", str(approvals)])
    assert "forecast-d" in listed.output and "merchandi" in listed.output  # cut to fit
    bad = cli.invoke(app, [*base, "--governance", str(tmp_path / "none.yaml")])
    assert bad.exit_code == 2 and "none.yaml" in bad.output
    missing = cli.invoke(app, ["shadow", "monitor", "--store", str(tmp_path / "no.sqlite")])
    assert missing.exit_code == 2 and "no.sqlite" in missing.output


def test_shadow_page_shows_monitoring(tmp_path: Path) -> None:
    from streamlit.testing.v1 import AppTest

    from promotwin.testing.dashboards import APP, quiet_streamlit
    from promotwin.testing.shadow_erp import monitored_store

    quiet_streamlit()
    monitored_store(tmp_path / "s.sqlite")
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.session_state["shadow_store"] = str(tmp_path / "s.sqlite")
    at.switch_page("pages/3_Shadow.py").run()
    assert not at.exception, at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["bias, SKU × region × week"] == "+33.3%"
    assert shown["WAPE, SKU × location × day"] == "33.3%"
    tables = {tuple(d.value.columns): d.value for d in at.dataframe}
    acc = next(v for k, v in tables.items() if "drift" in k)
    assert acc["drift"].tolist() == ["bias +33.3% beyond ±20%"]
    health = next(v for k, v in tables.items() if "retries" in k)
    assert health[["runs", "ok", "failed"]].values.tolist() == [["3", "2", "1"]]
    at.text_input(key="governance").set_value("no-such-config").run()
    assert not at.exception and "no-such-config" in at.error[0].value
