"""The ``twin`` command end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from promotwin.cli.main import app

DATA = Path(__file__).parent / "data"
BAD = sorted((DATA / "bad_scenarios").glob("*.yaml"))
runner = CliRunner()


def test_run_writes_every_output(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "promotwin.cli.main",
            "run",
            "appliance_promo",
            "--policy",
            "order-point",
            "--seed",
            "3",
            "--days",
            "30",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "fill rate" in result.stdout
    names = {p.name for p in out.iterdir()}
    assert {
        "manifest.json",
        "kpis.json",
        "daily.parquet",
        "ledger.parquet",
        "decisions.parquet",
        "promoted_category.png",
    } <= names
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["policy"] == "order-point" and manifest["seed"] == 3 and manifest["days"] == 30
    assert len(manifest["scenario_hash"]) == 16 and manifest["run_id"]
    kpis = json.loads((out / "kpis.json").read_text())
    ledger = pd.read_parquet(out / "ledger.parquet")
    after_warmup = ledger["day"] >= 14  # appliance_promo has a 14-day warm-up
    assert kpis["sold_units"] == ledger.loc[(ledger["kind"] == 5) & after_warmup, "qty"].sum()
    assert pd.read_parquet(out / "daily.parquet")["day"].max() == 29

    # same seed, same numbers; an existing folder is refused without --overwrite
    again = runner.invoke(
        app,
        [
            "run",
            "appliance_promo",
            "--policy",
            "order-point",
            "--seed",
            "3",
            "--days",
            "30",
            "--out",
            str(out),
        ],
    )
    assert again.exit_code == 2 and "--overwrite" in again.output
    again = runner.invoke(
        app,
        [
            "run",
            "appliance_promo",
            "--policy",
            "order-point",
            "--seed",
            "3",
            "--days",
            "30",
            "--out",
            str(out),
            "--overwrite",
        ],
    )
    assert again.exit_code == 0
    assert json.loads((out / "kpis.json").read_text()) == kpis


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_malformed_scenario_exit_2_nothing_written(path: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for args in (["scenarios", "validate", str(path)], ["run", str(path), "--out", str(out)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert "problem" in result.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "no_such_scenario", "--out", "x"], "valid: appliance_promo"),
        (["run", "appliance_promo", "--policy", "magic", "--out", "x"], "valid: order-point"),
        (["run", "appliance_promo", "--days", "0", "--out", "x"], "--days"),
        (["scenarios", "show", "nope"], "valid:"),
    ],
)
def test_bad_names_exit_2(args: list[str], message: str, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "x").exists()


def test_scenarios_list_show_validate() -> None:
    listed = runner.invoke(app, ["scenarios", "list"])
    assert listed.exit_code == 0 and "appliance_promo" in listed.output
    shown = runner.invoke(app, ["scenarios", "show", "appliance_promo"])
    assert shown.exit_code == 0 and "SUMMER-COOL" in shown.output and "45 stores" in shown.output
    valid = runner.invoke(app, ["scenarios", "validate", str(DATA / "good_scenario.yaml")])
    assert valid.exit_code == 0 and "valid" in valid.output
