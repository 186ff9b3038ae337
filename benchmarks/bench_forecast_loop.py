"""A learned forecaster's cost in the twin loop, against the oracle's in the same process.

    python benchmarks/bench_forecast_loop.py --model GBM.json [--glm GLM.json]
        [--scenario appliance_promo] [--policy base-stock] [--seed 1] [--repeats 2]

Runs the scenario with the oracle and with each model file (``twin fit``), alternated
``--repeats`` times after a warm-up, and prints each run's CPU and wall time, the process's
peak RSS, each model's calendar forecast CPU (made once per run, in ``start``) and the median
CPU ratio to the oracle's. Target (issue 13): a gbm run <= 3x the oracle's CPU on
appliance_promo.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np

from promotwin.demand.forecaster import FittedForecaster, Forecaster, make_forecaster
from promotwin.demand.model import DemandModel
from promotwin.policies.registry import make_policy
from promotwin.scenarios import load_scenario
from promotwin.scenarios.network import compile_network
from promotwin.twin import simulate


def timed_run(
    scenario_name: str, policy: str, forecaster: Forecaster, seed: int
) -> tuple[float, float]:
    scenario = load_scenario(scenario_name)
    cpu, wall = time.process_time(), time.perf_counter()
    simulate(scenario, make_policy(policy), seed=seed, forecaster=forecaster)
    return time.process_time() - cpu, time.perf_counter() - wall


def calendar_cpu(scenario_name: str, kind: str, model: Path, seed: int) -> float:
    """CPU of one calendar forecast (what a run's ``start`` costs a fitted forecaster)."""
    scenario = load_scenario(scenario_name)
    world = DemandModel(scenario, compile_network(scenario), truth_seed=seed)
    forecaster = FittedForecaster(kind, model)
    cpu = time.process_time()
    forecaster.start(world, np.random.default_rng(seed))
    return time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, required=True, help="gbm model file")
    ap.add_argument("--glm", type=Path, help="glm model file (optional)")
    ap.add_argument("--scenario", default="appliance_promo")
    ap.add_argument("--policy", default="base-stock")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2, help="oracle and model runs, alternated")
    args = ap.parse_args()
    models = [(kind, path) for kind, path in (("gbm", args.model), ("glm", args.glm)) if path]
    for kind, path in models:  # imports (lightgbm, scipy) and file reads out of the timings
        cal = calendar_cpu(args.scenario, kind, path, args.seed)
        print(f"{kind}: its calendar forecast {cal:.2f} s CPU (made once per run, in start)")
    timed_run(args.scenario, args.policy, make_forecaster("oracle"), args.seed)  # warm-up
    cpu: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for label, kind, path in [("oracle", "oracle", None)] + [(k, k, p) for k, p in models]:
            # a fresh forecaster per run: each forecasts its calendar, as a real run does
            c, w = timed_run(args.scenario, args.policy, make_forecaster(kind, path), args.seed)
            cpu.setdefault(label, []).append(c)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
            print(f"{label}: {c:.2f} s CPU, {w:.1f} s wall (peak RSS {rss:.2f} GB)", flush=True)
    base = float(np.median(cpu["oracle"]))
    for label, runs in cpu.items():
        print(f"{label}: median {np.median(runs):.2f} s CPU = {np.median(runs) / base:.2f}x oracle")


if __name__ == "__main__":
    main()
