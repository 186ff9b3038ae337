"""Post-event analysis from an experiment folder: the arm and replication re-run from the
experiment's manifest are the experiment's own runs (same run id, same KPIs as results.parquet),
the counterfactual is the baseline arm on the same seed; bad sources exit 2 naming what fits."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from promotwin.cli.main import app
from promotwin.experiments.post_event import PostEvent, PostEventError, analyse
from promotwin.experiments.post_event_sources import choose_arm
from promotwin.testing.dashboards import experiment_folder
from promotwin.testing.scenarios import small_scenario

PROMOTION = small_scenario().promotions[0].id


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return experiment_folder(tmp_path_factory.mktemp("experiment"))


@pytest.fixture(scope="module")
def analysed(experiment: Path, tmp_path_factory: pytest.TempPathFactory) -> PostEvent:
    work = tmp_path_factory.mktemp("work")
    return analyse(experiment, PROMOTION, None, "cluster", 0, "base-stock", 1, work)


def _recorded(experiment: Path, policy: str, replication: int) -> pd.DataFrame:
    results = pd.read_parquet(experiment / "results.parquet")
    first = results["variation"].iloc[0]
    return results[
        (results["policy"] == policy)
        & (results["replication"] == replication)
        & (results["variation"] == first)
    ]


def test_the_arm_is_the_experiments_own_run(experiment: Path, analysed: PostEvent) -> None:
    recorded = _recorded(experiment, "base-stock", 1)
    assert analysed.run.manifest["run_id"] == recorded["run_id"].iloc[0]
    kpis = dict(zip(recorded["kpi"], recorded["value"], strict=True))
    for key in ("total_cost", "lost_sales_units", "promo_lost_sales_units"):
        assert analysed.run.kpis[key] == pytest.approx(kpis[key])
    assert analysed.baseline_policy == "order-point"
    assert "arm base-stock, replication 1" in analysed.source


def test_the_baseline_is_the_experiments_baseline_arm_on_the_same_seed(
    experiment: Path, analysed: PostEvent
) -> None:
    choice = choose_arm(experiment, "base-stock", 1)
    seed, days = int(choice.run["seed"]), int(choice.run["days"])
    base = choice.simulate("order-point", seed, days)
    assert base.run_id == _recorded(experiment, "order-point", 1)["run_id"].iloc[0]
    # the same demand: demand of the promoted cells equal in both arms, service differs
    assert analysed.baseline_service["demand_units"] == analysed.service["demand_units"]
    manifest = json.loads((experiment / "manifest.json").read_text())
    seeds = {r["seed"] for r in manifest["runs"] if r["replication"] == 1}
    assert seeds == {seed}


def test_bad_choices_are_named(experiment: Path, tmp_path: Path) -> None:
    with pytest.raises(PostEventError, match="give one of order-point, base-stock"):
        choose_arm(experiment, "optimizer", 0)
    with pytest.raises(PostEventError, match="replications 0 to 1"):
        choose_arm(experiment, "base-stock", 2)
    with pytest.raises(PostEventError, match="known"):
        choose_arm(experiment, None, 0, promotion_id="NOPE")


def test_cli_from_an_experiment_folder_and_bad_sources(experiment: Path, tmp_path: Path) -> None:
    cli = CliRunner()
    out = tmp_path / "pe"
    args = ["post-event", str(experiment), "--promotion", PROMOTION, "--out", str(out)]
    bad = cli.invoke(app, [*args, "--arm", "optimizer"])
    assert bad.exit_code == 2 and "give one of order-point, base-stock" in bad.output
    assert not out.exists()
    store = tmp_path / "shadow.sqlite"
    store.write_bytes(b"")
    bad = cli.invoke(app, ["post-event", str(store), "--promotion", PROMOTION, "--out", str(out)])
    assert bad.exit_code == 2 and "experiment folder" in bad.output and "run folder" in bad.output
    done = cli.invoke(app, [*args, "--readiness-days", "0", "--replication", "1"])
    assert done.exit_code == 0, done.output
    page = (out / "report.html").read_text()
    assert "arm base-stock, replication 1" in page and "SKU × region × week" in page
    assert (out / "base-stock-replication-1" / "ledger.parquet").is_file()


def test_dashboard_page_from_an_experiment_folder(experiment: Path, analysed: PostEvent) -> None:
    from streamlit.testing.v1 import AppTest

    from promotwin.testing.dashboards import APP, quiet_streamlit

    quiet_streamlit()
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.session_state["run_folder"] = str(experiment)
    at.switch_page("pages/5_Post-event.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="arm").value == "base-stock"
    at.selectbox(key="replication").set_value(1).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["promotion fill rate"] == f"{analysed.service['fill_rate']:.1%}"
    accuracy = next(d.value for d in at.dataframe if "over" in d.value.columns)
    assert "WAPE, SKU × region × week" in set(accuracy["measure"])
    assert "arm base-stock, replication 1" in at.caption[0].value
