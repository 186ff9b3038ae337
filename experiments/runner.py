"""Run an experiment in-process or on Dask; every finished run is stored as it completes.

Each run (scenario x variation x policy x replication) is one task. Its KPIs are written
atomically to ``DIR/runs/<key>.json`` by the client as soon as the result arrives, so an
interrupted experiment resumes by skipping the keys already there, and a worker that dies takes
nothing written with it (Dask reschedules its tasks). The key is a hash of everything that
determines the result: the varied scenario's content, the policy label and name, the seed, the
days simulated and the package version.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import promotwin
from promotwin import strict_json
from promotwin.demand.forecaster import make_forecaster
from promotwin.experiments.spec import Experiment, forecaster_of
from promotwin.policies.registry import make_policy
from promotwin.scenarios.schema import Scenario
from promotwin.twin.run import simulate

Progress = Callable[[int, int], None]
EXPENSIVE = {"optimizer"}  # submitted first, so the slowest runs do not form the tail


class ExperimentError(RuntimeError):
    """Some runs failed; the finished ones are stored and a rerun resumes from them."""


class SchedulerUnreachable(ValueError):
    """``--scheduler`` names no Dask scheduler that answers."""


def local_cluster(workers: int) -> Any:
    """A LocalCluster on this machine only: loopback, dashboard on a random local port, one
    thread per worker process (simulations are single-threaded), quiet logs."""
    from distributed import LocalCluster  # lazy: in-process runs never import distributed

    return LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.ERROR,
    )


def replication_seed(base_seed: int, replication: int) -> int:
    """The twin's seed for replication ``r``: the same for every policy and variation (CRN)."""
    return int(np.random.SeedSequence([base_seed, replication]).generate_state(1)[0])


@dataclass(frozen=True)
class RunTask:
    key: str
    scenario: str
    variation: str
    policy: str  # label in the spec
    policy_name: str  # registry name
    replication: int
    seed: int
    days: int | None
    cell: int  # index into Experiment.cells
    forecast: tuple[str, str | None, bool] = ("oracle", None, False)  # name, model, sensing


def plan_tasks(experiment: Experiment) -> list[RunTask]:
    """Every run of the experiment, replication-major so partial results stay balanced."""
    spec = experiment.spec
    hashes = [c.model.content_hash() for c in experiment.cells]
    tasks = []
    for r in range(spec.replications):
        seed = replication_seed(spec.base_seed, r)
        for i, cell in enumerate(experiment.cells):
            for label, name in experiment.policies:
                ident = f"{hashes[i]}|{label}|{name}|{seed}|{spec.days}|{promotwin.__version__}"
                forecast = forecaster_of(experiment, label)
                if forecast != ("oracle", None, False):  # oracle runs keep their keys
                    ident += f"|{forecast}"
                key = hashlib.sha256(ident.encode()).hexdigest()[:20]
                tasks.append(
                    RunTask(
                        key,
                        cell.scenario,
                        cell.variation,
                        label,
                        name,
                        r,
                        seed,
                        spec.days,
                        i,
                        forecast,
                    )
                )
    return tasks


def run_one(
    scenario: Scenario,
    policy_name: str,
    seed: int,
    days: int | None,
    forecast: tuple[str, str | None, bool] = ("oracle", None, False),
) -> dict[str, Any]:
    """One simulation; returns what is stored for it (KPIs and provenance). Runs on workers."""
    forecaster = make_forecaster(*forecast)
    result = simulate(
        scenario, make_policy(policy_name), seed=seed, days=days, forecaster=forecaster
    )
    return {
        "run_id": result.run_id,
        "scenario_hash": result.scenario_hash,
        "policy_name": policy_name,
        "forecaster": result.forecaster,
        "model_file": result.model_file,
        "seed": seed,
        "days": result.days,
        "version": promotwin.__version__,
        "kpis": result.kpis,
        "timings_s": result.timings,
        "pid": os.getpid(),
    }


class RunStore:
    """Finished runs, one JSON file each, written atomically (temp file + rename)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def __contains__(self, key: str) -> bool:
        return self.path(key).exists()

    def get(self, key: str) -> dict[str, Any]:
        return json.loads(self.path(key).read_text())

    def put(self, key: str, record: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "w") as f:
                strict_json.dump({"key": key, **record}, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path(key))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


@dataclass
class ExperimentResult:
    results: pd.DataFrame
    tasks: list[RunTask]
    computed: int  # runs simulated by this call
    reused: int  # runs found finished in DIR/runs
    wall_s: float
    execution: dict[str, Any] = field(default_factory=dict)


def run_experiment(
    experiment: Experiment,
    out: Path,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
) -> ExperimentResult:
    """Run what is not finished yet, then write ``results.parquet`` and ``manifest.json``.

    ``workers=1`` runs in this process; otherwise a ``LocalCluster`` of ``workers`` processes
    (default: one per core, at most one per task), or the Dask cluster at ``scheduler``.
    """
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = RunStore(out / "runs")
    tasks = plan_tasks(experiment)
    unique = {t.key: t for t in tasks}
    pending = [t for t in unique.values() if t.key not in store]
    reused = len(unique) - len(pending)
    done = reused
    if progress:
        progress(done, len(unique))

    def finished(task: RunTask, record: dict[str, Any]) -> None:
        nonlocal done
        store.put(task.key, record)
        done += 1
        if progress:
            progress(done, len(unique))

    failures: list[tuple[RunTask, BaseException]] = []
    if scheduler is not None:
        execution: dict[str, Any] = {"mode": "dask", "scheduler": scheduler}
    elif workers == 1:
        execution = {"mode": "in-process", "workers": 1}
    else:
        n = workers or os.cpu_count() or 1
        execution = {"mode": "dask-local", "workers": max(1, min(n, len(pending)))}
    if pending and execution["mode"] == "in-process":
        for task in pending:
            try:
                cell = experiment.cells[task.cell]
                finished(
                    task, run_one(cell.model, task.policy_name, task.seed, task.days, task.forecast)
                )
            except Exception as exc:  # keep going: the other runs are still worth having
                failures.append((task, exc))
    elif pending:
        with dask_client(scheduler, execution.get("workers", 0), out) as client:
            failures = _run_on_dask(client, experiment, pending, finished)
    if failures:
        lines = "\n".join(
            f"  - {t.scenario} / {t.variation} / {t.policy} / replication {t.replication}: "
            f"{type(e).__name__}: {e}"
            for t, e in failures[:20]
        )
        raise ExperimentError(
            f"{len(failures)} of {len(unique)} runs failed (the {done} finished ones are saved "
            f"in {out / 'runs'}; fix the cause and rerun to resume):\n{lines}"
        )
    results = assemble(tasks, store)
    wall = time.perf_counter() - t0
    execution["wall_s"] = round(wall, 3)
    _write_parquet(results, out / "results.parquet")
    write_manifest(experiment, tasks, store, out, len(pending), reused, execution)
    return ExperimentResult(results, tasks, len(pending), reused, wall, execution)


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int, scratch: Path | None = None) -> Iterator[Any]:
    """A client on ``scheduler``, or on a LocalCluster of ``workers`` processes spilling into
    a temporary folder under ``scratch`` (the system's temporary folder if None)."""
    from dask import config
    from distributed import Client

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise SchedulerUnreachable(
                f"cannot reach the Dask scheduler at {scheduler} ({exc}): check the address "
                "(tcp://HOST:PORT) and that the scheduler is running"
            ) from None
        with client:
            yield client
        return
    spill = tempfile.mkdtemp(prefix=".dask-", dir=scratch)
    try:
        with (
            config.set({"temporary-directory": spill}),
            local_cluster(workers) as cluster,
            Client(cluster) as client,
        ):
            yield client
    finally:
        shutil.rmtree(spill, ignore_errors=True)


def _run_on_dask(
    client: Any,
    experiment: Experiment,
    pending: list[RunTask],
    finished: Callable[[RunTask, dict[str, Any]], None],
) -> list[tuple[RunTask, BaseException]]:
    """Submit every pending run; store each result as it arrives. Lost workers are retried by
    the scheduler (up to ``distributed.scheduler.allowed-failures`` times per task)."""
    from distributed import as_completed

    # Each scenario goes to the cluster once, as a task of its own (not scattered data: a task
    # has a recipe, so the scheduler can recompute it if the worker holding it dies); runs then
    # fetch it once per worker instead of unpickling a copy per run.
    cells = sorted({t.cell for t in pending})
    scenarios = {
        i: client.submit(_identity, experiment.cells[i].model, key=f"promotwin-scenario-{i}-{h}")
        for i, h in zip(cells, _hashes(experiment, cells), strict=True)
    }
    futures = {
        client.submit(
            run_one,
            scenarios[t.cell],
            t.policy_name,
            t.seed,
            t.days,
            t.forecast,
            key=f"promotwin-run-{t.key}",
            pure=False,
            priority=1 if t.policy_name in EXPENSIVE else 0,
        ): t
        for t in pending
    }
    failures: list[tuple[RunTask, BaseException]] = []
    try:
        for future in as_completed(futures):
            task = futures[future]
            if future.status == "error":
                failures.append((task, future.exception()))
            else:
                finished(task, future.result())
            future.release()
    finally:
        client.cancel([*futures, *scenarios.values()])
    return failures


def _identity(value: Any) -> Any:
    return value


def _hashes(experiment: Experiment, cells: list[int]) -> list[str]:
    return [experiment.cells[i].model.content_hash() for i in cells]


def assemble(tasks: list[RunTask], store: RunStore) -> pd.DataFrame:
    """The tidy table: one row per scenario x variation x policy x replication x KPI."""
    columns: dict[str, list[Any]] = {
        c: []
        for c in (
            "scenario",
            "variation",
            "policy",
            "replication",
            "seed",
            "run_id",
            "kpi",
            "value",
        )
    }
    for t in tasks:
        record = store.get(t.key)
        for kpi, value in record["kpis"].items():
            for c, v in (
                ("scenario", t.scenario),
                ("variation", t.variation),
                ("policy", t.policy),
                ("replication", t.replication),
                ("seed", t.seed),
                ("run_id", record["run_id"]),
                ("kpi", kpi),
                ("value", value),
            ):
                columns[c].append(v)
    frame = pd.DataFrame(columns).astype(
        {"replication": "int64", "seed": "int64", "value": "float64"}
    )
    return frame.sort_values(["scenario", "variation", "policy", "replication", "kpi"]).reset_index(
        drop=True
    )


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_manifest(
    experiment: Experiment,
    tasks: list[RunTask],
    store: RunStore,
    out: Path,
    computed: int,
    reused: int,
    execution: dict[str, Any],
) -> None:
    """Every run's id, seed and provenance, plus the spec and how this call executed."""
    runs = []
    for t in tasks:
        record = store.get(t.key)
        runs.append(
            {
                "key": t.key,
                "run_id": record["run_id"],
                "scenario": t.scenario,
                "variation": t.variation,
                "policy": t.policy,
                "policy_name": t.policy_name,
                "replication": t.replication,
                "seed": t.seed,
                "scenario_hash": record["scenario_hash"],
                "days": record["days"],
                "timings_s": record["timings_s"],
            }
        )
    manifest = {
        "experiment": experiment.spec.name,
        "spec_source": experiment.source,
        "spec_hash": experiment.spec_hash,
        "spec": experiment.spec.model_dump(mode="json"),
        "baseline": experiment.baseline,
        "base_seed": experiment.spec.base_seed,
        "seed_rule": "numpy SeedSequence([base_seed, replication]).generate_state(1)[0]",
        "version": promotwin.__version__,
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "runs_total": len(tasks),
        "runs_computed": computed,
        "runs_reused": reused,
        "execution": execution,
        "runs": runs,
    }
    tmp = out / ".manifest.json.tmp"
    tmp.write_text(strict_json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, out / "manifest.json")
