"""Optimizer tick time (wall and CPU), first tick, peak memory and objective, against a baseline
measured in the same run.

Configurations (each run in its own process, so peak RSS is its own):
- ``baseline``: the optimizer as it was before issue 16 — groups solved one after another in
  the calling thread, the first tick from a cold simplex;
- ``new``: groups solved on two threads, the first tick from a crash basis.
Both see the same snapshots in the same order; ``objective_gap_vs_reference`` is the largest
relative difference of a tick's objective, new against baseline.

Cases:
- ``appliance_promo``: the snapshots the twin hands the optimizer on the scenario's first days
  (recorded once, then replayed to each configuration); ``monolithic_gap`` is the default
  decomposition's objective against the monolithic LP on the same ticks;
- ``100x500x14``: 100 stores x 500 SKUs x 14 days, 5 DCs, 5 suppliers, ring store lanes, the
  forecast and stock perturbed each tick (``--quick``: 100 x 100).

``--planner`` adds ``planner_appliance_promo``: the planner page's work with the optimizer on
appliance_promo (``twin.outlook.project``): a depth change and a sweep of 6 depths, re-simulated
from the traced current plan (new) against full runs without the planner cache (baseline).

Run: ``python benchmarks/bench_optimizer.py [--quick] [--rounds N] [--planner] [--json]``. With
``--json`` the output ends with one JSON object per case on its own line.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from promotwin.policies.contract import Plan, PlanningSnapshot, RunContext
from promotwin.policies.optimizer import OptimizerPolicy
from promotwin.testing.snapshots import random_snapshot

CONFIGS: dict[str, dict[str, Any]] = {
    "baseline": {"workers": 1, "crash_start": False},
    "new": {"workers": 2, "crash_start": True},
    "monolithic": {"workers": 1, "crash_start": True, "max_cells_per_group": None},
}


def ticks(base: PlanningSnapshot, n: int, seed: int = 0) -> list[PlanningSnapshot]:
    """``n`` successive days: same network, stock and forecast perturbed each day."""
    rng = np.random.default_rng(seed)
    out = []
    for t in range(n):
        scale = rng.uniform(0.8, 1.25, base.forecast_mean.shape)
        on_hand = np.maximum(base.on_hand + rng.integers(-2, 3, base.on_hand.shape), 0)
        fc = base.forecast_mean * scale
        out.append(replace(base, day=t, forecast_mean=fc, on_hand=on_hand))
    return out


class _Recorder:
    """Runs the optimizer in the twin and keeps every snapshot it is handed."""

    def __init__(self) -> None:
        self.inner = OptimizerPolicy()
        self.name = self.inner.name
        self.horizon_days = self.inner.horizon_days
        self.snapshots: list[PlanningSnapshot] = []

    def start(self, context: RunContext) -> None:
        self.inner.start(context)

    def decide(self, s: PlanningSnapshot) -> Plan:
        self.snapshots.append(s)
        return self.inner.decide(s)


def appliance_snapshots(days: int) -> list[PlanningSnapshot]:
    from promotwin.scenarios import load_scenario
    from promotwin.twin import simulate

    recorder = _Recorder()
    simulate(load_scenario("appliance_promo"), recorder, seed=0, days=days)  # type: ignore[arg-type]
    return recorder.snapshots


def case_snapshots(case: str, n_ticks: int) -> list[PlanningSnapshot]:
    if case == "appliance_promo":
        return appliance_snapshots(n_ticks)
    stores, skus, horizon = (int(v) for v in case.split("x"))
    base = random_snapshot(stores, skus, n_dcs=5, n_suppliers=5, seed=2, horizon=horizon)
    return ticks(base, n_ticks)


def measure(snaps: list[PlanningSnapshot], config: str) -> dict[str, Any]:
    """Tick through ``snaps`` with one policy, timing each decide (wall and process CPU)."""
    # no wall-clock time limit: on a loaded machine a cold solve may take minutes of wall time
    policy = OptimizerPolicy(**CONFIGS[config], time_limit=1e6)
    policy.start(RunContext(0, len(snaps), snaps[0].date))
    wall, cpu, objective, parts = [], [], [], []
    for s in snaps:
        w0, c0 = time.perf_counter(), time.process_time()
        policy.decide(s)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
        r = policy.last_result
        if r is None or policy.last_failure is not None:
            raise RuntimeError(f"{config}: the optimizer fell back: {policy.last_failure}")
        objective.append(r.objective)
        parts.append((r.build_seconds, r.update_seconds, r.solve_seconds, r.extract_seconds))
    later = slice(1, None) if len(snaps) > 1 else slice(None)
    return {
        "config": config,
        "first_tick_s": wall[0],
        "first_tick_cpu_s": cpu[0],
        "tick_s": wall[later],
        "tick_cpu_s": cpu[later],
        "objective": objective,
        "parts_s": parts,
        "groups": len(r.groups),
        "columns": r.n_columns,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "load": os.getloadavg(),
    }


def run_isolated(snap_file: Path, config: str) -> dict[str, Any]:
    """:func:`measure` in a fresh process (its own peak memory, no warm caches)."""
    out = subprocess.run(
        [sys.executable, __file__, "--measure", str(snap_file), config],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{config} on {snap_file.stem} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def summary(case: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The case's JSON line: the new configuration's medians, ranges and ratios to baseline."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by.setdefault(r["config"], []).append(r)

    def pooled(config: str, key: str) -> list[float]:
        return [v for r in by[config] for v in r[key]]

    def first(config: str, key: str) -> float:
        return statistics.median(r[key] for r in by[config])

    new, base = "new", "baseline"
    obj_new = np.array(by[new][0]["objective"])
    obj_base = np.array(by[base][0]["objective"])
    out: dict[str, Any] = {
        "case": case,
        "median_tick_s": statistics.median(pooled(new, "tick_s")),
        "median_tick_cpu_s": statistics.median(pooled(new, "tick_cpu_s")),
        "tick_s_range": [min(pooled(new, "tick_s")), max(pooled(new, "tick_s"))],
        "tick_cpu_s_range": [min(pooled(new, "tick_cpu_s")), max(pooled(new, "tick_cpu_s"))],
        "first_tick_s": first(new, "first_tick_s"),
        "first_tick_cpu_s": first(new, "first_tick_cpu_s"),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in by[new]),
        "objective_gap_vs_reference": float(
            np.max(np.abs(obj_new - obj_base) / np.maximum(np.abs(obj_base), 1e-9))
        ),
        "ticks_timed": len(pooled(new, "tick_s")),
        "baseline_median_tick_s": statistics.median(pooled(base, "tick_s")),
        "baseline_median_tick_cpu_s": statistics.median(pooled(base, "tick_cpu_s")),
        "baseline_first_tick_s": first(base, "first_tick_s"),
        "baseline_first_tick_cpu_s": first(base, "first_tick_cpu_s"),
        "baseline_peak_rss_mb": max(r["peak_rss_mb"] for r in by[base]),
        "groups": by[new][0]["groups"],
        "columns": by[new][0]["columns"],
        "load_average": [round(x, 2) for r in runs for x in r["load"][:1]],
    }
    out["speedup_median_tick_wall"] = out["baseline_median_tick_s"] / out["median_tick_s"]
    out["speedup_median_tick_cpu"] = out["baseline_median_tick_cpu_s"] / out["median_tick_cpu_s"]
    out["speedup_first_tick_wall"] = out["baseline_first_tick_s"] / out["first_tick_s"]
    if "monolithic" in by:
        mono = np.array(by["monolithic"][0]["objective"])
        out["monolithic_gap"] = float(np.max((obj_new - mono) / np.maximum(np.abs(mono), 1e-9)))
    return out


def planner_case() -> dict[str, Any]:
    """The planner's depth change and 6-depth sweep with the optimizer, wall and CPU."""
    from promotwin.scenarios import load_scenario
    from promotwin.twin.outlook import PlannerCache, PromoSettings, project

    scenario = load_scenario("appliance_promo")
    promo = scenario.promotions[0]
    current = PromoSettings.of(promo)
    depths = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)

    def timed(settings: list[PromoSettings], cache: PlannerCache | None) -> tuple[float, float]:
        w0, c0 = time.perf_counter(), time.process_time()
        for s in settings:
            project(scenario, promo.id, s, "optimizer", 0, cache=cache)
        return time.perf_counter() - w0, time.process_time() - c0

    cache = PlannerCache()
    traced = timed([current], cache)  # the page shows the current plan first: it is traced
    change = timed([replace(current, depth=0.45)], cache)
    sweep = timed([replace(current, depth=d) for d in depths], cache)
    base_change = timed([replace(current, depth=0.45)], None)
    out = {
        "case": "planner_appliance_promo",
        "current_plan_s": traced[0],
        "depth_change_s": change[0],
        "depth_change_cpu_s": change[1],
        "sweep_6_depths_s": sweep[0],
        "sweep_6_depths_cpu_s": sweep[1],
        "baseline_depth_change_s": base_change[0],
        "baseline_depth_change_cpu_s": base_change[1],
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(
        f"planner: current plan {traced[0]:.1f} s; depth change {change[0]:.1f} s wall / "
        f"{change[1]:.1f} s CPU (full run {base_change[0]:.1f} s / {base_change[1]:.1f} s); "
        f"sweep of 6 {sweep[0]:.1f} s / {sweep[1]:.1f} s CPU; load {out['load_average']}",
        flush=True,
    )
    return out


def print_run(case: str, r: dict[str, Any]) -> None:
    t, c = r["tick_s"], r["tick_cpu_s"]
    print(
        f"{case:<16} {r['config']:<10} groups {r['groups']:>3} cols {r['columns']:>9,}  "
        f"first {r['first_tick_s']:6.2f} s wall / {r['first_tick_cpu_s']:6.2f} s CPU  "
        f"tick median {statistics.median(t):.3f} s wall ({min(t):.3f}-{max(t):.3f}) / "
        f"{statistics.median(c):.3f} s CPU  peak {r['peak_rss_mb']:.0f} MB  "
        f"load {r['load'][0]:.1f}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer ticks, 100 x 100 large case")
    ap.add_argument("--rounds", type=int, default=1, help="baseline/new alternations per case")
    ap.add_argument("--json", action="store_true", help="end with one JSON line per case")
    ap.add_argument("--planner", action="store_true", help="add the planner page's case")
    ap.add_argument("--only", choices=("appliance_promo", "large"), help="one solver case only")
    ap.add_argument("--measure", nargs=2, metavar=("SNAPSHOTS", "CONFIG"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        snaps = pickle.loads(Path(args.measure[0]).read_bytes())
        print(json.dumps(measure(snaps, args.measure[1])))
        return
    n_ticks = 4 if args.quick else 6  # the first is the cold tick: 5 warm ones are timed
    large = "100x100x14" if args.quick else "100x500x14"
    print(f"load average at start: {os.getloadavg()}", flush=True)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("appliance_promo", ("baseline", "new", "monolithic")),
            (large, ("baseline", "new")),
        ]
        if args.only:
            cases = [cases[0] if args.only == "appliance_promo" else cases[1]]
        for case, configs in cases:
            snap_file = Path(tmp) / f"{case}.pkl"
            snaps = case_snapshots(case, n_ticks if case == large else 20)
            snap_file.write_bytes(pickle.dumps(snaps))
            runs = []
            for _ in range(args.rounds):
                for config in configs:
                    r = run_isolated(snap_file, config)
                    print_run(case, r)
                    runs.append(r)
            line = summary(case, runs)
            print(
                f"  {case}: median tick {line['median_tick_s']:.3f} s wall "
                f"({line['speedup_median_tick_wall']:.2f}x baseline), "
                f"{line['median_tick_cpu_s']:.3f} s CPU ({line['speedup_median_tick_cpu']:.2f}x); "
                f"first tick {line['first_tick_s']:.2f} s "
                f"({line['speedup_first_tick_wall']:.2f}x); "
                f"objective gap {line['objective_gap_vs_reference']:.2e}",
                flush=True,
            )
            lines.append(line)
    if args.planner:
        lines.append(planner_case())
    if args.json:
        for line in lines:
            print(json.dumps(line))


if __name__ == "__main__":
    main()
