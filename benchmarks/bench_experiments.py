"""Scaling of ``twin compare`` from 1 to 2 workers, and Dask's per-task overhead.

    python benchmarks/bench_experiments.py [--quick] [--json PATH]

1. Scaling: the same experiment (appliance_promo, three heuristic policies) run
   - in this process (the baseline, ``--workers 1``),
   - on a pre-started LocalCluster with 1 worker and with 2 workers (the compute phase only),
   - end to end with ``workers=2`` (``run_experiment`` starting and stopping its own cluster).
   Efficiency 1→2 = T(1) / (2 · T(2)), against in-process and against a 1-worker cluster.
   Target ≥ 0.8. Every run writes to a fresh folder, so nothing is resumed.
2. Overhead: N tasks that do no simulation but carry what a real task carries (the scenario in,
   a KPI dict out), run in-process and on a 1-worker cluster; overhead per task =
   (T(dask) - T(in-process)) / N, also shown as a share of one simulated run.

The machine is shared: the 1-minute load average is reported next to every number.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

SPEC = {
    "name": "bench",
    "scenarios": ["appliance_promo"],
    "policies": ["order-point", "static-forecast", "base-stock"],
    "replications": 4,
    "base_seed": 1,
    "days": 56,
}
OVERHEAD_TASKS = 200
TARGET_EFFICIENCY = 0.8


def _load() -> float:
    return os.getloadavg()[0]


def fake_run(scenario: Any, policy: str, seed: int, days: int | None) -> dict[str, Any]:
    """A task's I/O without its simulation: the scenario in, a KPI-sized dict out."""
    return {"run_id": f"{policy}-{seed}", "kpis": {f"k{i}": float(i) for i in range(30)}}


def _cluster(workers: int, scratch: Path) -> tuple[Any, Any]:
    from dask import config
    from distributed import Client

    from promotwin.experiments.runner import local_cluster

    config.set({"temporary-directory": str(scratch)})
    cluster = local_cluster(workers)
    return cluster, Client(cluster)


def scaling(spec: dict[str, Any], tmp: Path) -> dict[str, Any]:
    from promotwin.experiments.runner import run_experiment
    from promotwin.experiments.spec import parse_spec

    experiment = parse_spec(yaml.safe_dump(spec))
    n = spec["replications"] * len(spec["policies"])
    out: dict[str, Any] = {"runs": n}

    def timed(label: str, n_workers: int, **kwargs: Any) -> float:
        load = _load()
        t0 = time.perf_counter()
        run_experiment(experiment, tmp / label, **kwargs)
        wall = time.perf_counter() - t0
        # Busy share: seconds spent inside simulate() on the workers / (workers x wall). Unlike
        # the speed-up it does not move when other processes slow every run down alike.
        busy = sum(
            sum(json.loads(p.read_text())["timings_s"].values())
            for p in (tmp / label / "runs").glob("*.json")
        )
        util = busy / (n_workers * wall)
        out[label] = {"wall_s": round(wall, 2), "busy": round(util, 3), "load": round(load, 2)}
        print(f"  {label:<22} {wall:7.2f} s   busy {util:5.1%}   (load {load:.1f})", flush=True)
        return wall

    t_in = timed("in_process", 1, workers=1)
    for workers in (1, 2):
        cluster, client = _cluster(workers, tmp / f"scratch{workers}")
        try:
            client.submit(sum, [1]).result()  # workers up and importing done
            client.run(lambda: __import__("promotwin.experiments.runner"))
            wall = timed(f"cluster_{workers}_worker", workers, scheduler=cluster.scheduler_address)
            out[f"t{workers}"] = wall
        finally:
            client.close()
            cluster.close()
    t_e2e = timed("end_to_end_2_workers", 2, workers=2)
    out["busy_2_workers"] = out["cluster_2_worker"]["busy"]
    out["efficiency_vs_in_process"] = round(t_in / (2 * out["t2"]), 3)
    out["efficiency_vs_1_worker"] = round(out["t1"] / (2 * out["t2"]), 3)
    out["efficiency_end_to_end"] = round(t_in / (2 * t_e2e), 3)
    return out


def overhead(tmp: Path, tasks: int) -> dict[str, Any]:
    from distributed import as_completed

    from promotwin.scenarios import load_scenario

    scenario = load_scenario("appliance_promo")
    t0 = time.perf_counter()
    for i in range(tasks):
        fake_run(scenario, "order-point", i, None)
    t_in = time.perf_counter() - t0
    cluster, client = _cluster(1, tmp / "scratch-overhead")
    try:
        client.submit(sum, [1]).result()
        load = _load()
        t0 = time.perf_counter()
        # as the runner submits: the scenario once, as a task of its own; runs refer to it
        shared = client.submit(lambda s: s, scenario, key="bench-scenario")
        futures = [
            client.submit(fake_run, shared, "order-point", i, None, pure=False)
            for i in range(tasks)
        ]
        for f in as_completed(futures):
            f.result()
        t_dask = time.perf_counter() - t0
        t0 = time.perf_counter()
        futures = [
            client.submit(fake_run, scenario, "order-point", i, None, pure=False)
            for i in range(tasks)
        ]
        for f in as_completed(futures):
            f.result()
        t_copy = time.perf_counter() - t0
    finally:
        client.close()
        cluster.close()
    per_task = (t_dask - t_in) / tasks
    per_copy = (t_copy - t_in) / tasks
    print(
        f"  {tasks} tasks: in-process {t_in * 1e3:.1f} ms, 1-worker Dask {t_dask * 1e3:.0f} ms "
        f"-> {per_task * 1e3:.2f} ms per task (load {load:.1f}); with a copy of the scenario "
        f"in every task {per_copy * 1e3:.2f} ms per task"
    )
    return {
        "tasks": tasks,
        "in_process_s": round(t_in, 4),
        "dask_s": round(t_dask, 3),
        "overhead_per_task_ms": round(per_task * 1e3, 3),
        "overhead_per_task_scenario_copy_ms": round(per_copy * 1e3, 3),
        "load_before": round(load, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 replications, 35 days")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    spec = dict(SPEC, replications=2, days=35) if args.quick else SPEC
    with tempfile.TemporaryDirectory(prefix="bench-experiments-") as tmp:
        print(
            f"scaling: {spec['replications']} replications x {len(spec['policies'])} policies, "
            f"{spec['days']} days of appliance_promo, {os.cpu_count()} cores"
        )
        scale = scaling(spec, Path(tmp))
        print(
            f"  efficiency 1->2 workers: {scale['efficiency_vs_in_process']:.2f} vs in-process, "
            f"{scale['efficiency_vs_1_worker']:.2f} vs a 1-worker cluster, "
            f"{scale['efficiency_end_to_end']:.2f} end to end with cluster start "
            f"(target >= {TARGET_EFFICIENCY}); 2 workers busy {scale['busy_2_workers']:.0%} "
            "of the time"
        )
        print("overhead:")
        over = overhead(Path(tmp), 50 if args.quick else OVERHEAD_TASKS)
        run_s = scale["in_process"]["wall_s"] / scale["runs"]
        over["share_of_one_run"] = round(over["overhead_per_task_ms"] / 1e3 / run_s, 5)
        print(f"  = {over['share_of_one_run']:.2%} of one simulated run ({run_s:.2f} s)")
    if args.json:
        args.json.write_text(json.dumps({"scaling": scale, "overhead": over}, indent=2) + "\n")


if __name__ == "__main__":
    main()
