"""A learned forecaster's cost in the twin loop, against the oracle's in the same process.

    python benchmarks/bench_forecast_loop.py --model GBM.json [--glm GLM.json]
        [--scenario appliance_promo] [--policy base-stock] [--seed 1]

Runs the scenario with the oracle, then with each model file (``twin fit``), and prints each
run's CPU and wall time, its ratio to the oracle run's, the calendar forecast's own CPU (made
once per run, in ``start``) and the process's peak RSS after each. Target (issue 13): a gbm
run <= 3x the oracle's CPU on appliance_promo.
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
    args = ap.parse_args()
    base_cpu, base_wall = timed_run(
        args.scenario, args.policy, make_forecaster("oracle"), args.seed
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"oracle: {base_cpu:.1f} s CPU, {base_wall:.1f} s wall (peak RSS {rss:.2f} GB)")
    for kind, path in (("gbm", args.model), ("glm", args.glm)):
        if path is None:
            continue
        cal = calendar_cpu(args.scenario, kind, path, args.seed)
        cpu, wall = timed_run(args.scenario, args.policy, make_forecaster(kind, path), args.seed)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(
            f"{kind}: {cpu:.1f} s CPU ({cpu / base_cpu:.2f}x the oracle), {wall:.1f} s wall "
            f"({wall / base_wall:.2f}x); its calendar forecast {cal:.1f} s CPU; "
            f"peak RSS {rss:.2f} GB"
        )


if __name__ == "__main__":
    main()
