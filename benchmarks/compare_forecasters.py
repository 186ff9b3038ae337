"""Policies x forecasters on a scenario with hidden truth, paired over seeds (common random
numbers: every policy and forecaster of a seed meets the same demand and the same truth).

    python benchmarks/compare_forecasters.py [--scenario appliance_promo_surprise] [--reps 20]
        [--policies order-point,base-stock,optimizer] [--optimizer-reps N]
        [--forecasters oracle,plan] [--model MODEL.json] [--first-seed S] [--out runs.csv]
    python benchmarks/compare_forecasters.py --summarise runs.csv more.csv

Per policy x forecaster (oracle, plan, and glm or gbm with --model; each also +sensing): means of
promotion-window lost sales, total cost, average inventory value, transfer units, promotion
forecast WAPE, and regret against the hindsight bound of the same seed; then sensing's paired
effect against the same forecaster without it (mean difference, 95% interval, wins). Time per
run is reported as a ratio to the oracle run of the same policy and seed (CPU and wall), the
baseline measured in the same benchmark.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from promotwin.demand.forecaster import make_forecaster
from promotwin.demand.models import load_model
from promotwin.policies.contract import ActionKind
from promotwin.policies.hindsight import hindsight_bound
from promotwin.policies.registry import make_policy
from promotwin.scenarios import load_scenario
from promotwin.twin import simulate
from promotwin.twin.history import hindsight_inputs

KPIS = ("promo_lost_sales_units", "total_cost", "avg_inventory_value", "promo_forecast_wape")


def run_one(
    scenario_name: str, policy: str, forecast: str, model: str | None, seed: int
) -> dict[str, float | str | int]:
    name, _, sensed = forecast.partition("+")
    scenario = load_scenario(scenario_name)
    forecaster = make_forecaster(name, model if name in ("glm", "gbm") else None, bool(sensed))
    cpu, wall = time.process_time(), time.perf_counter()
    result = simulate(scenario, make_policy(policy), seed=seed, forecaster=forecaster)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    d = result.decisions
    transfers = d[(d["kind"] == int(ActionKind.TRANSFER)) & (d["status"] == "approved")]
    row: dict[str, float | str | int] = {"policy": policy, "forecaster": forecast, "seed": seed}
    row |= {k: result.kpis[k] for k in KPIS}
    row |= {"transfer_units": float(transfers["executed"].sum()), "cpu_s": cpu, "wall_s": wall}
    return row


def sensing_effect(runs: pd.DataFrame, kpi: str) -> pd.DataFrame:
    """Paired (same policy, seed) difference of ``kpi``: forecaster+sensing minus forecaster."""
    out = []
    wide = runs.pivot_table(index=["policy", "seed"], columns="forecaster", values=kpi)
    for base in [c for c in wide.columns if "+" not in c and f"{c}+sensing" in wide.columns]:
        diff = (wide[f"{base}+sensing"] - wide[base]).dropna()
        for policy, part in diff.groupby(level="policy"):
            n = len(part)
            half = 1.96 * part.std(ddof=1) / np.sqrt(n) if n > 1 else float("nan")
            rel = part.sum() / wide[base].loc[policy].sum()
            out.append(
                {
                    "policy": policy,
                    "forecaster": base,
                    "kpi": kpi,
                    "n": n,
                    "mean_diff": part.mean(),
                    "ci95": half,
                    "relative": rel,
                    "sensing_wins": int((part < 0).sum()),
                }
            )
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="appliance_promo_surprise")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--policies", default="order-point,base-stock,optimizer")
    ap.add_argument("--optimizer-reps", type=int, default=None, help="fewer seeds for optimizer")
    ap.add_argument("--forecasters", default="oracle,plan", help="each also runs +sensing")
    ap.add_argument("--model", default=None, help="fitted model file (twin fit): adds its kind")
    ap.add_argument("--out", type=Path, default=None, help="CSV of every run")
    ap.add_argument("--summarise", type=Path, nargs="*", help="only report these runs' CSVs")
    args = ap.parse_args()
    if args.summarise:
        report(pd.concat([pd.read_csv(p) for p in args.summarise]), args.scenario)
        return
    forecasts = [f for name in args.forecasters.split(",") for f in (name, f"{name}+sensing")]
    if args.model:  # the model file's own kind (glm or gbm), with and without sensing
        kind = load_model(args.model).kind
        forecasts += [kind, f"{kind}+sensing"]
    if args.first_seed < 0 or args.reps < 1:
        ap.error("--reps must be at least 1 and --first-seed at least 0")
    rows = []
    bounds = {}
    for seed in range(args.first_seed, args.first_seed + args.reps):
        bounds[seed] = hindsight_bound(
            hindsight_inputs(load_scenario(args.scenario), seed)
        ).total_cost
        for policy in args.policies.split(","):
            late = seed - args.first_seed >= (args.optimizer_reps or args.reps)
            if policy == "optimizer" and late:
                continue
            for forecast in forecasts:
                row = run_one(args.scenario, policy, forecast, args.model, seed)
                rows.append(row)
                if args.out:  # kept as it goes: a long benchmark stopped early still has its runs
                    pd.DataFrame(rows).assign(
                        hindsight_cost=lambda f: f["seed"].map(bounds)
                    ).to_csv(args.out, index=False)
                print(
                    f"seed {seed} {policy:12s} {forecast:15s} promo lost "
                    f"{row['promo_lost_sales_units']:8.0f} cost {row['total_cost']:12.0f} "
                    f"({row['wall_s']:.0f} s)",
                    flush=True,
                )
    runs = pd.DataFrame(rows)
    runs["hindsight_cost"] = runs["seed"].map(bounds)
    if args.out:
        runs.to_csv(args.out, index=False)
    report(runs, args.scenario)


def report(runs: pd.DataFrame, scenario: str) -> None:
    """Means per policy x forecaster, and sensing's paired effect."""
    runs = runs.copy()
    runs["regret"] = runs["total_cost"] - runs["hindsight_cost"]
    base = runs[runs["forecaster"] == "oracle"].set_index(["policy", "seed"])
    key = pd.MultiIndex.from_frame(runs[["policy", "seed"]])
    runs["cpu_ratio"] = runs["cpu_s"].to_numpy() / base["cpu_s"].reindex(key).to_numpy()
    runs["wall_ratio"] = runs["wall_s"].to_numpy() / base["wall_s"].reindex(key).to_numpy()
    cols = [*KPIS, "transfer_units", "regret", "cpu_ratio", "wall_ratio"]
    table = runs.groupby(["policy", "forecaster"])[cols].mean()
    table.insert(0, "n", runs.groupby(["policy", "forecaster"]).size())
    pd.set_option("display.width", 250)
    bound = runs.groupby("seed")["hindsight_cost"].first().mean()
    print(f"\n{scenario}: means over seeds; hindsight bound mean {bound:,.0f}")
    print(table.round(3).to_string())
    for kpi in ("promo_lost_sales_units", "total_cost"):
        print(f"\nsensing's paired effect on {kpi} (negative = better)")
        print(sensing_effect(runs, kpi).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
