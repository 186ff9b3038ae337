"""Running experiments: common random numbers, resume, Dask (identical results, a killed worker),
the CLI end to end and the report."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import dask
import pandas as pd
import pytest
import yaml
from distributed import Client
from typer.testing import CliRunner

from promotwin.cli.main import app
from promotwin.experiments import runner
from promotwin.experiments.runner import plan_tasks, run_experiment
from promotwin.experiments.spec import Experiment, load_spec
from promotwin.experiments.stats import compare

SMALL = {
    "name": "small",
    "start_date": "2026-03-02",
    "horizon_days": 40,
    "warmup_days": 5,
    "synthetic": {
        "stores": 4,
        "dcs": 2,
        "skus": 6,
        "suppliers": 2,
        "categories": 2,
        "promotions": 1,
        "seed": 5,
    },
}


def write_spec(folder: Path, **fields: Any) -> Path:
    """A spec on the small generated scenario (written next to it), fields overridden."""
    (folder / "small.yaml").write_text(yaml.safe_dump(SMALL, sort_keys=False))
    spec = {
        "name": "tiny",
        "scenarios": ["small.yaml"],
        "policies": ["order-point", "base-stock"],
        "replications": 3,
        "base_seed": 7,
    } | fields
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def count_runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Record every in-process simulation the runner starts."""
    calls: list[tuple[Any, ...]] = []
    real = runner.run_one

    def counted(*args: Any) -> dict[str, Any]:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(runner, "run_one", counted)
    return calls


def test_identical_policies_differ_by_exactly_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = write_spec(
        tmp_path,
        policies=[
            "base-stock",
            {"label": "base-stock-again", "policy": "base-stock"},
            "order-point",
        ],
    )
    calls = count_runs(monkeypatch)
    result = run_experiment(load_spec(spec), tmp_path / "out", workers=1)
    assert len(calls) == 9  # the copy was simulated again, not read back from the first
    table = compare(result.results, baseline="base-stock")
    same = table[table["policy"] == "base-stock-again"]
    assert len(same) == result.results["kpi"].nunique()  # every KPI compared
    for column in ("mean_diff", "sd_diff", "ci_low", "ci_high", "half_width"):
        values = same[column].dropna()
        assert (values == 0.0).all(), column
    # Replications differ from each other (distinct seeds) ...
    wide = result.results.pivot_table(
        index="replication", columns=["policy", "kpi"], values="value"
    )
    assert wide[("base-stock", "demand_units")].nunique() == 3
    # ... and replication r of a different policy sees the same demand (common random numbers).
    pd.testing.assert_series_equal(
        wide[("order-point", "demand_units")],
        wide[("base-stock", "demand_units")],
        check_names=False,
    )
    assert not wide[("order-point", "lost_sales_units")].equals(
        wide[("base-stock", "lost_sales_units")]
    )


def test_resume_skips_finished_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    experiment = load_spec(write_spec(tmp_path, replications=4))
    total = len(plan_tasks(experiment))
    out = tmp_path / "out"
    calls = count_runs(monkeypatch)

    def interrupt_after_three(done: int, _total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(experiment, out, workers=1, progress=interrupt_after_three)
    assert len(calls) == 3
    assert len(list((out / "runs").glob("*.json"))) == 3
    assert not (out / "results.parquet").exists()

    calls.clear()
    resumed = run_experiment(experiment, out, workers=1)
    assert len(calls) == total - 3
    assert (resumed.computed, resumed.reused) == (total - 3, 3)
    assert [p.name for p in (out / "runs").iterdir() if not p.name.endswith(".json")] == []

    calls.clear()
    again = run_experiment(experiment, out, workers=1)
    assert calls == [] and (again.computed, again.reused) == (0, total)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs_reused"] == total and len(manifest["runs"]) == total

    fresh = run_experiment(experiment, tmp_path / "fresh", workers=1)
    pd.testing.assert_frame_equal(resumed.results, fresh.results)
    pd.testing.assert_frame_equal(again.results, fresh.results)


def test_cli_two_local_workers_match_in_process(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        sweep={"parameter": "depth", "values": [0.1, 0.3]},
        statistics={"bootstrap": 200},
    )
    cli = CliRunner()
    one = cli.invoke(app, ["compare", str(spec), "--out", str(tmp_path / "one"), "--workers", "1"])
    assert one.exit_code == 0, one.output
    two = cli.invoke(app, ["compare", str(spec), "--out", str(tmp_path / "two"), "--workers", "2"])
    assert two.exit_code == 0, two.output
    a = pd.read_parquet(tmp_path / "one" / "results.parquet")
    b = pd.read_parquet(tmp_path / "two" / "results.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 2 * 2 * 3 * a["kpi"].nunique()  # variations x policies x replications x KPIs
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert manifest["execution"]["mode"] == "dask-local" and manifest["execution"]["workers"] == 2
    assert {r["seed"] for r in manifest["runs"]} == set(a["seed"])
    assert sorted(r["run_id"] for r in manifest["runs"]) == sorted(a["run_id"].unique())
    assert not list((tmp_path / "two").glob(".dask-*"))  # scratch space removed

    out = tmp_path / "two"
    names = {p.name for p in out.iterdir()}
    assert {"report.html", "statistics.csv", "sweep_small.png", "tradeoff_small.png"} <= names
    assert {"kpi_by_policy_small.png", "differences_small.png"} <= names
    page = (out / "report.html").read_text()
    assert "base-stock" in page and "against order-point" in page
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 4
    assert not re.search(r'(src|href)="(https?:)?//', page)  # self-contained
    assert "bootstrap" in page
    assert "• small, depth=0.1: base-stock" in two.output  # plain-words summary


def _kill_one_worker_on_first_result(client: Client) -> tuple[dict[str, Any], Any]:
    pids: dict[str, int] = client.run(os.getpid)
    killed: dict[str, Any] = {}

    def progress(done: int, _total: int) -> None:
        if done == 1 and not killed:
            busy = {w: list(keys) for w, keys in client.processing().items() if keys}
            worker = max(busy, key=lambda w: len(busy[w]))
            killed.update(worker=worker, pid=pids[worker], keys=busy[worker])
            os.kill(pids[worker], signal.SIGKILL)

    return killed, progress


def test_killed_worker_loses_nothing_and_matches_in_process(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "kill",
                "scenarios": ["appliance_promo"],
                "policies": ["order-point", "static-forecast"],
                "replications": 4,
                "days": 30,
            }
        )
    )
    experiment: Experiment = load_spec(spec)
    local = run_experiment(experiment, tmp_path / "local", workers=1)
    with (
        dask.config.set({"temporary-directory": str(tmp_path / "dask")}),
        runner.local_cluster(2) as cluster,
        Client(cluster) as client,
    ):
        killed, progress = _kill_one_worker_on_first_result(client)
        out = tmp_path / "dask-run"
        result = run_experiment(
            experiment, out, scheduler=cluster.scheduler_address, progress=progress
        )
    assert killed["keys"], "the killed worker was running nothing: the test proved nothing"
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)
    finished = {p.stem for p in (out / "runs").glob("*.json")}
    assert {k.removeprefix("promotwin-run-") for k in killed["keys"]} <= finished
    assert result.computed == len(plan_tasks(experiment)) == len(finished)
    pd.testing.assert_frame_equal(result.results, local.results)
