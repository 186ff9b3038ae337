"""``twin history``, ``twin run --forecast`` and ``twin run --policy hindsight`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner

from promotwin.cli.main import app
from promotwin.demand.history import validate_history
from promotwin.testing.scenarios import small_scenario

runner = CliRunner()


def _small(tmp_path: Path) -> str:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(small_scenario().model_dump(mode="json"), sort_keys=False))
    return str(path)


def test_history_writes_a_sales_history_a_fit_accepts(tmp_path: Path) -> None:
    out = tmp_path / "history.csv"
    res = runner.invoke(app, ["history", _small(tmp_path), "--weeks", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(out)
    assert {"date", "location", "sku", "channel", "units", "stockout", "price", "depth"} <= set(
        frame.columns
    )
    validate_history(frame)
    again = runner.invoke(app, ["history", _small(tmp_path), "--weeks", "3", "--out", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_history_bad_input_exits_2(tmp_path: Path) -> None:
    for args, message in (
        (["--weeks", "0", "--out", str(tmp_path / "h.csv")], "--weeks"),
        (["--out", str(tmp_path / "h.txt")], ".csv or .parquet"),
        (["--policy", "psychic", "--out", str(tmp_path / "h.csv")], "unknown policy"),
    ):
        res = runner.invoke(app, ["history", _small(tmp_path), *args])
        assert res.exit_code == 2 and message in res.output, (args, res.output)


def test_run_names_its_forecaster_and_scores_the_promotion(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", _small(tmp_path), "--out", str(out), "--policy", "order-point", "--sensing"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["forecaster"] == "oracle+sensing" and manifest["model_file"] is None
    assert isinstance(manifest["forecast_notes"], list)
    kpis = json.loads((out / "kpis.json").read_text())
    assert {"promo_forecast_wape", "promo_forecast_wape_region_week"} <= set(kpis)


def test_run_forecast_bad_input_exits_2_before_running(tmp_path: Path) -> None:
    for args, message in (
        (["--forecast", "gbm"], "needs --model FILE"),
        (["--forecast", "glm"], "needs --model"),
        (["--forecast", "glm", "--model", str(tmp_path / "none.json")], "file not found"),
        (["--policy", "hindsight", "--sensing"], "knows the demand"),
    ):
        out = tmp_path / "o"
        res = runner.invoke(app, ["run", _small(tmp_path), "--out", str(out), *args])
        assert res.exit_code == 2 and message in res.output, (args, res.output)
        assert not (out / "kpis.json").exists()


def test_hindsight_run_is_below_the_policies(tmp_path: Path) -> None:
    costs = {}
    for policy in ("hindsight", "base-stock"):
        out = tmp_path / policy
        res = runner.invoke(app, ["run", _small(tmp_path), "--out", str(out), "--policy", policy])
        assert res.exit_code == 0, res.output
        costs[policy] = json.loads((out / "kpis.json").read_text())["total_cost"]
    assert costs["hindsight"] <= costs["base-stock"]
