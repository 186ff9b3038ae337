"""Throughput and peak memory of the twin on ``large_network`` (500 stores x 2,000 SKUs x 365 days).

    python benchmarks/bench_twin.py [--days N] [--quick] [--json PATH]

Runs ``simulate(large_network, BaseStockPolicy())`` and reports location·SKU·days per second, the
wall time by phase and the peak resident memory. Ratios are against baselines measured in the same
run, on the same machine: a do-nothing policy over the same days (the floor of demand + fulfilment
+ records that every policy pays) and the raw numpy cost of drawing one day's demand.

Each measurement runs in its own subprocess so its peak RSS (``ru_maxrss``) is its own. Phases are
timed by wrapping the twin's methods in the worker (exclusive times: a phase excludes the phases it
calls), so the core carries no timers; the wrapper costs a few microseconds per call.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

TARGET_RATE = 5e6  # location·SKU·days per second, one core
TARGET_PEAK_GB = 4.0
SCENARIO = "large_network"
QUICK_DAYS = 30
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
NUMPY_SAMPLE_DAYS = 20  # draws timed for the raw-numpy baseline (per-day cost is what we report)

PHASES = (
    "demand sampling",
    "fulfilment",
    "ledger lines",
    "daily records",
    "forecast window",
    "snapshot",
    "policy.decide",
    "governance",
    "execution",
    "arrivals",
    "decision records",
)


class PhaseTimer:
    """Exclusive wall and CPU time per phase: nested wrapped calls are charged to their own phase.

    CPU time is what compares across runs on a shared machine (wall time also counts the time
    other processes hold the core).
    """

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.cpu_totals: dict[str, float] = defaultdict(float)
        self._child: list[list[float]] = []

    def wrap(self, phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start, start_cpu = time.perf_counter(), time.process_time()
            self._child.append([0.0, 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                child, child_cpu = self._child.pop()
                elapsed = time.perf_counter() - start
                elapsed_cpu = time.process_time() - start_cpu
                self.totals[phase] += elapsed - child
                self.cpu_totals[phase] += elapsed_cpu - child_cpu
                if self._child:
                    self._child[-1][0] += elapsed
                    self._child[-1][1] += elapsed_cpu

        return timed


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: KiB


def _worker_simulate(policy_name: str, days: int) -> dict[str, Any]:
    """One full ``simulate()`` with phase timers patched onto the twin's classes."""
    from promotwin.demand.forecast import RollingForecast
    from promotwin.policies.contract import Plan, PlanBuilder, PlanningSnapshot
    from promotwin.policies.heuristics import BaseStockPolicy
    from promotwin.scenarios import load_scenario
    from promotwin.twin import model
    from promotwin.twin.ledger import Ledger
    from promotwin.twin.model import Twin
    from promotwin.twin.run import simulate
    from promotwin.workflow.governance import AutoApprove

    class DoNothing:
        """Never orders or ships: what is left is demand, fulfilment and the records."""

        name = "do-nothing"
        horizon_days = 1

        def decide(self, snapshot: PlanningSnapshot) -> Plan:
            return PlanBuilder(self.name).build()

    timer = PhaseTimer()
    # the day's steps are functions the tick calls through the model module, plus a few methods
    patches: list[tuple[Any, str, str]] = [
        (Twin, "demand", "demand sampling"),
        (model, "fulfil", "fulfilment"),
        (model, "day_record", "daily records"),
        (Twin, "snapshot", "snapshot"),
        (model, "execute", "execution"),
        (model, "receive", "arrivals"),
        (model, "decision_lines", "decision records"),
        (Ledger, "cells", "ledger lines"),
        (Ledger, "listed", "ledger lines"),
        (Ledger, "shipments", "ledger lines"),
        (RollingForecast, "window", "forecast window"),
    ]
    for owner, name, phase in patches:
        setattr(owner, name, timer.wrap(phase, getattr(owner, name)))
    cpu: dict[str, float] = {}
    run = Twin.run

    def cpu_timed_run(self: Twin, *args: Any, **kwargs: Any) -> None:
        # CPU seconds of the loop: on a shared machine wall time also counts other processes
        start = time.process_time()
        run(self, *args, **kwargs)
        cpu["loop"] = time.process_time() - start

    Twin.run = cpu_timed_run  # type: ignore[method-assign]
    policy: Any = BaseStockPolicy() if policy_name == "base-stock" else DoNothing()
    policy.decide = timer.wrap("policy.decide", policy.decide)
    governance = AutoApprove()
    governance.review = timer.wrap("governance", governance.review)  # type: ignore[method-assign]

    scenario = load_scenario(SCENARIO)
    start = time.perf_counter()
    result = simulate(scenario, policy, seed=1, days=days, governance=governance)
    total = time.perf_counter() - start
    phases = {p: timer.totals.get(p, 0.0) for p in PHASES}
    phases["simpy + tick glue"] = result.timings["simulate"] - sum(phases.values())
    phases_cpu = {p: timer.cpu_totals.get(p, 0.0) for p in PHASES}
    phases_cpu["simpy + tick glue"] = cpu["loop"] - sum(phases_cpu.values())
    return {
        "policy": policy.name,
        "days": result.days,
        "cells": _cells(scenario),
        "setup_s": result.timings["setup"],
        "loop_s": result.timings["simulate"],
        "loop_cpu_s": cpu["loop"],
        "outputs_s": result.timings["kpis"],
        "total_s": total,
        "phases_s": phases,
        "phases_cpu_s": phases_cpu,
        "ledger_rows": len(result.ledger),
        "fill_rate": result.kpis.get("fill_rate"),
        "peak_gb": _peak_gb(),
    }


def _cells(scenario: Any) -> int:
    from promotwin.scenarios.network import compile_network

    net = compile_network(scenario)
    return int(net.n_locations * net.n_skus)


def _worker_numpy(days: int) -> dict[str, Any]:
    """Raw numpy cost of one day's draws (gamma-Poisson + binomial pickup split) at day 0's mean."""
    import numpy as np

    from promotwin.demand.model import DemandModel
    from promotwin.scenarios import load_scenario
    from promotwin.scenarios.network import compile_network

    scenario = load_scenario(SCENARIO)
    net = compile_network(scenario)
    model = DemandModel(scenario, net)
    mu = model.mean(0)
    k = scenario.demand.dispersion
    share = model.pickup_share[:, None]
    rng = np.random.default_rng(1)
    draws = min(days, NUMPY_SAMPLE_DAYS)
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(draws):
        units = rng.poisson(rng.standard_gamma(k, size=mu.shape) * (mu / k))
        rng.binomial(units[net.n_dcs :], share)
    per_day = (time.perf_counter() - start) / draws
    per_day_cpu = (time.process_time() - start_cpu) / draws
    return {
        "per_day_s": per_day,
        "per_day_cpu_s": per_day_cpu,
        "draws": draws,
        "peak_gb": _peak_gb(),
    }


def _run_worker(args: list[str]) -> dict[str, Any]:
    # one core: keep BLAS (the policy's small matrix products) from spreading over more threads
    env = {**os.environ, **{v: "1" for v in BLAS_THREAD_VARS}}
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"benchmark worker {args} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*header), line, *(fmt.format(*r) for r in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=None, help="days to simulate (default 365)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_DAYS} days (under a minute)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, days = args.worker[0], int(args.worker[1])
        out = _worker_numpy(days) if kind == "numpy" else _worker_simulate(kind, days)
        print(json.dumps(out))
        return

    days = args.days or (QUICK_DAYS if args.quick else 365)
    print(f"promotwin twin benchmark: {SCENARIO}, {days} days, seed 1, one process per run")
    runs = {name: _run_worker([name, str(days)]) for name in ("base-stock", "do-nothing")}
    raw = _run_worker(["numpy", str(days)])
    bs, floor = runs["base-stock"], runs["do-nothing"]
    cell_days = bs["cells"] * bs["days"]

    rows = []
    for r in (bs, floor):
        rows.append(
            [
                r["policy"],
                f"{r['loop_s']:.1f}",
                f"{cell_days / r['loop_s'] / 1e6:.2f}",
                f"{r['loop_cpu_s']:.1f}",
                f"{cell_days / r['loop_cpu_s'] / 1e6:.2f}",
                f"{r['setup_s']:.1f}",
                f"{r['outputs_s']:.1f}",
                f"{cell_days / r['total_s'] / 1e6:.2f}",
                f"{r['peak_gb']:.2f}",
            ]
        )
    print()
    print(f"{bs['cells']:,} location·SKU cells x {bs['days']} days = {cell_days:,} cell·days")
    print(
        _table(
            rows,
            ["policy", "loop s", "M/s", "loop CPU s", "M/s CPU", "setup s", "outputs s", "M/s all"]
            + ["peak GB"],
        )
    )

    print()
    phase_rows = []
    for phase in (*PHASES, "simpy + tick glue"):
        a, b = bs["phases_s"][phase], floor["phases_s"][phase]
        a_cpu, b_cpu = bs["phases_cpu_s"][phase], floor["phases_cpu_s"][phase]
        phase_rows.append(
            [
                phase,
                f"{a:.2f}",
                f"{1e3 * a / bs['days']:.1f}",
                f"{1e3 * a_cpu / bs['days']:.1f}",
                f"{100 * a_cpu / bs['loop_cpu_s']:.0f}%",
                f"{b:.2f}",
                f"{1e3 * b_cpu / floor['days']:.1f}",
            ]
        )
    header = ["phase (exclusive)", "base-stock s", "ms/day", "CPU ms/day", "CPU share"]
    header += ["do-nothing s", "CPU ms/day"]
    print(_table(phase_rows, header))

    per_day = bs["loop_cpu_s"] / bs["days"]
    print()
    print("ratios against baselines measured in this run (CPU time):")
    floor_ratio = bs["loop_cpu_s"] / floor["loop_cpu_s"]
    print(f"  base-stock / do-nothing loop:           {floor_ratio:.2f}x")
    print(
        f"  base-stock day / raw numpy demand draw: {per_day / raw['per_day_cpu_s']:.2f}x"
        f"  ({1e3 * per_day:.0f} ms vs {1e3 * raw['per_day_cpu_s']:.0f} ms per day;"
        f" numpy alone: {bs['cells'] / raw['per_day_cpu_s'] / 1e6:.1f} M cell·days/s)"
    )
    # one core's throughput is CPU-time based; wall time is shown too (it also counts other
    # processes when the machine is shared)
    rate, wall_rate = cell_days / bs["loop_cpu_s"], cell_days / bs["loop_s"]
    ok_rate, ok_mem = rate >= TARGET_RATE, bs["peak_gb"] <= TARGET_PEAK_GB
    print()
    print(
        f"target >= {TARGET_RATE / 1e6:.0f} M cell·days/s on one core: {rate / 1e6:.2f} M per CPU s"
        f" ({wall_rate / 1e6:.2f} M per wall s) {'PASS' if ok_rate else 'MISS'};"
        f" target <= {TARGET_PEAK_GB:.0f} GB peak: {bs['peak_gb']:.2f} GB"
        f" {'PASS' if ok_mem else 'MISS'}"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"days": days, "runs": runs, "numpy": raw}, fh, indent=2)


if __name__ == "__main__":
    main()
