"""Post-event analysis on a twin run whose true uplift differs from the plan by known amounts
(appliance_promo_surprise: urban +50%, suburban -35%, ecommerce +25%, elasticity -0.15)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from promotwin.cli.main import app
from promotwin.experiments.post_event import PostEvent, analyse, load_run
from promotwin.experiments.post_event_report import write_post_event
from promotwin.policies.registry import make_policy
from promotwin.scenarios import load_scenario
from promotwin.twin import simulate
from promotwin.twin.run import write_outputs

PROMOTION = "SUMMER-COOL"
DAYS = 56  # the promotion runs days 28..48, its post-promotion dip to day 55
runner = CliRunner()


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("post_event") / "run"
    scenario = load_scenario("appliance_promo_surprise")
    write_outputs(simulate(scenario, make_policy("base-stock"), seed=1, days=DAYS), out)
    return out


@pytest.fixture(scope="module")
def analysed(run_folder: Path) -> PostEvent:
    return analyse(run_folder, PROMOTION, "order-point", "cluster", readiness_days_before=0)


def _injected(cluster: str, channel: str) -> float:
    """True uplift / planned uplift as the scenario injects it: the cluster's or channel's
    deviation times the elasticity shift's effect at 25% off, (1 - 0.25) ** -0.15."""
    deviation = (
        0.25 if channel == "ecommerce" else {"urban": 0.5, "suburban": -0.35}.get(cluster, 0.0)
    )
    return (1 + deviation) * 0.75**-0.15


def test_realised_uplift_recovers_the_injected_deviations(analysed: PostEvent) -> None:
    g = analysed.uplift_by_group
    assert set(g["cluster"]) >= {"urban", "suburban", "rural"} and len(g) >= 6
    # the truth is the twin's true uplift; the injected deviation is it too where the scenario
    # draws no per-SKU noise (urban and suburban draw sd 0.1: their truth is the drawn one).
    # Each group's 95% interval misses by chance 1 time in 20: of 6+ groups at most one may
    # (two or more: 3% when every interval is right)
    misses = []
    for row in g.to_dict("records"):
        cluster, channel = str(row["cluster"]), str(row["channel"])
        injected = _injected(cluster, channel) * row["planned_uplift"]
        truths = [row["true_uplift"]]
        if cluster not in ("urban", "suburban") or channel == "ecommerce":
            truths.append(injected)
        if not all(row["low"] <= t <= row["high"] for t in truths):
            misses.append((cluster, channel, row["low"], truths, row["high"]))
    assert len(misses) <= 1, misses
    # and the report tells the plan was wrong where it was: the plan lies outside the interval
    for cluster in ("urban", "suburban"):
        rows = g[(g["cluster"] == cluster) & (g["channel"] == "walk_in")].iloc[0]
        assert not rows["low"] <= rows["planned_uplift"] <= rows["high"], cluster
    # per SKU x cluster x channel, 95% intervals hold the twin's true uplift about 95% of the time
    assert analysed.uplift["covers"].mean() >= 0.85, analysed.uplift["covers"].mean()


def test_service_against_the_baseline_on_the_same_demand(analysed: PostEvent) -> None:
    s, b = analysed.service, analysed.baseline_service
    assert s["demand_units"] == b["demand_units"] > 0  # common random numbers: the same demand
    assert s["sold_units"] + s["lost_units"] == s["demand_units"]
    # vendor funding: 4 per promoted unit sold (the scenario's), the only gap between margins
    assert np.isclose(s["vendor_funding"], 4.0 * s["sold_units"])
    assert np.isclose(s["margin_with_funding"] - s["margin_before_funding"], s["vendor_funding"])
    lost = analysed.daily_lost
    assert lost["lost_units"].sum() == s["lost_units"]
    assert lost["baseline_lost_units"].sum() == b["lost_units"]
    assert str(lost["date"].iloc[0]) == "2026-06-01" and len(lost) == 21


def test_forecast_by_day_and_spill_overs(analysed: PostEvent) -> None:
    f = analysed.forecast
    assert list(f["promotion_day"]) == list(range(1, 22))
    # the promoted SKUs' daily records add up to the ledger's demand for the promotion's cells
    assert f["demand_units"].sum() == analysed.service["demand_units"]
    assert (f["wape"] >= 0).all() and f["wape"].notna().all()
    spill = analysed.spill.set_index("effect")
    cannibalised = spill.loc[spill.index.str.startswith("cannibalisation")].iloc[0]
    dip = spill.loc[spill.index.str.startswith("post-promotion")].iloc[0]
    assert cannibalised["realised_change"] < 0 and dip["realised_change"] < 0
    for row in spill.to_dict("records"):  # realised near the truth (many units, little noise)
        assert abs(row["realised_change"] - row["true_change"]) < 0.05, row


def test_report_is_self_contained_with_dates(analysed: PostEvent, tmp_path: Path) -> None:
    path = write_post_event(analysed, tmp_path / "report")
    page = path.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3
    assert 'src="http' not in page and "<script" not in page
    assert "2026-06-01 to 2026-06-21 (21 days)" in page
    assert "urban" in page and "suburban" in page
    assert (tmp_path / "report" / "uplift_by_sku.csv").is_file()


def test_cli_end_to_end_and_bad_input(run_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "pe"
    args = ["post-event", str(run_folder), "--out", str(out), "--readiness-days", "0"]
    res = runner.invoke(app, [*args, "--promotion", "NOPE"])
    assert res.exit_code == 2 and "known: SUMMER-COOL" in res.output
    assert not out.exists()
    res = runner.invoke(app, [*args, "--promotion", PROMOTION, "--by", "store"])
    assert res.exit_code == 2 and "cluster or region" in res.output
    res = runner.invoke(
        app, ["post-event", str(tmp_path), "--promotion", PROMOTION, "--out", str(out)]
    )
    assert res.exit_code == 2 and "not a twin run folder" in res.output
    res = runner.invoke(app, [*args, "--promotion", PROMOTION, "--by", "region"])
    assert res.exit_code == 0, res.output
    assert (out / "report.html").is_file() and (out / "uplift_by_region.csv").is_file()


def test_run_folder_carries_what_post_event_needs(run_folder: Path) -> None:
    run = load_run(run_folder)
    assert run.scenario.content_hash() == run.manifest["scenario_hash"]
    assert {"promo_demand", "promo_forecast", "promo_abs_error"} <= set(run.daily.columns)


def test_dashboard_page_shows_the_analysis(run_folder: Path) -> None:
    from streamlit.testing.v1 import AppTest

    from promotwin.testing.dashboards import APP, quiet_streamlit

    quiet_streamlit()
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.session_state["run_folder"] = str(run_folder)
    at.switch_page("pages/5_Post-event.py").run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    analysed = analyse(run_folder, PROMOTION, "order-point", "cluster", readiness_days_before=0)
    assert metrics["promotion fill rate"] == f"{analysed.service['fill_rate']:.1%}"
    uplift = next(d.value for d in at.dataframe if "realised uplift" in d.value.columns)
    assert set(uplift["cluster"]) >= {"urban", "suburban", "rural"}
    assert len(at.get("image")) == 3  # st.pyplot: uplift, lost sales, forecast error
    at.selectbox(key="level").set_value("region").run()
    assert not at.exception
    uplift = next(d.value for d in at.dataframe if "realised uplift" in d.value.columns)
    assert "region" in uplift.columns


def test_dashboard_page_explains_a_wrong_folder(tmp_path: Path) -> None:
    from streamlit.testing.v1 import AppTest

    from promotwin.testing.dashboards import APP, quiet_streamlit

    quiet_streamlit()
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.session_state["run_folder"] = str(tmp_path)
    at.switch_page("pages/5_Post-event.py").run()
    assert not at.exception
    assert any("not a twin run folder" in e.value for e in at.error)
