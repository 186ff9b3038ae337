"""Promotion intelligence, measured: the full Dominick's orange juice backtest and the synthetic
recovery/coverage study over repeated fits.

    python benchmarks/bench_backtest.py [--split 1992-01-01] [--reps 30] [--json PATH]

Backtest (all 83 stores x 11 brands): fit on weeks before ``--split``, forecast the rest with
the planned prices, deals and feature ads; WAPE, bias and 90% interval coverage on promoted
store-brand-weeks (and all) for the no-uplift seasonal naive, a plain LightGBM baseline, the
GLM and the gradient-boosted model, all measured in the same run, with each one's fit time.
Targets (issue 13) for the best built-in: WAPE <= 0.45, bias within +-5%, coverage 85-95%;
the GLM fit (with cross-price terms) <= 60 s.

Recovery: ``--reps`` histories drawn from the twin's demand generator with known elasticities,
display/feature lift, cannibalisation and dip; the share of 90% intervals covering the truth.
Target: between 80% and 97%.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np

from promotwin.demand.backtest import GBM, GLM, PLAIN, backtest
from promotwin.demand.dominicks import load_orange_juice
from promotwin.demand.fit import FitOptions, fit_history
from promotwin.demand.synthetic import recovery_scenario, simulate_history


def run_backtest(split: dt.date) -> dict[str, object]:
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    history = load_orange_juice()
    result = backtest(history, split, glm_options=FitOptions(fill_zeros=False, cross_price=True))
    seconds = time.perf_counter() - t0
    cols = ["method", "subset", "wape", "bias", "coverage_90", "n", "seconds"]
    print(result.scores[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    best = min((GLM, GBM), key=lambda m: result.score(m))
    print(
        f"best built-in: {best}, WAPE {result.score(best):.3f} on promoted weeks "
        f"({result.improvement(best, PLAIN):.1%} below plain LightGBM, "
        f"{result.improvement(best):.1%} below the no-uplift naive); whole run {seconds:.0f} s "
        f"wall, {time.process_time() - cpu0:.0f} s CPU"
    )
    return {
        "rows": len(history),
        "split": str(split),
        "scores": result.scores.to_dict(orient="records"),
        "fit_seconds": result.seconds,
        "seconds": seconds,
    }


def run_recovery(reps: int) -> dict[str, object]:
    t0 = time.perf_counter()
    by_param: dict[str, list[bool]] = {}
    for rep in range(reps):
        sc = recovery_scenario(seed=rep)
        m = fit_history(
            simulate_history(sc, seed=10_000 + rep), {k.id: k.category for k in sc.skus}
        )
        p = sc.demand
        checks = {
            "elasticity (pooled)": [m.elasticity[k.id].covers(k.elasticity) for k in sc.skus],
            "elasticity (raw)": [
                m.elasticity_raw[k.id].covers(k.elasticity)
                for k in sc.skus
                if k.id in m.elasticity_raw  # a SKU the calendar never promoted has none
            ],
            "display_lift": [m.display_lift.covers(p.display_lift)],
            "feature_lift": [m.feature_lift.covers(p.feature_lift)],
            "cannibalisation": [m.cannibalisation.covers(p.cannibalisation)],
            "post_promo_dip": [m.post_promo_dip.covers(p.post_promo_dip)],
        }
        for name, hits in checks.items():
            by_param.setdefault(name, []).extend(hits)
    overall = [h for name, v in by_param.items() if name != "elasticity (raw)" for h in v]
    rates = {name: float(np.mean(v)) for name, v in by_param.items()}
    for name, rate in rates.items():
        print(f"coverage of 90% intervals, {name}: {rate:.1%} ({len(by_param[name])} intervals)")
    print(f"overall: {np.mean(overall):.1%} over {len(overall)} intervals (target 80-97%)")
    return {
        "reps": reps,
        "coverage": rates,
        "overall": float(np.mean(overall)),
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", default="1992-01-01")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-backtest", action="store_true", help="only the recovery study")
    args = ap.parse_args()
    out: dict[str, object] = {}
    if not args.no_backtest:
        out["backtest"] = run_backtest(dt.date.fromisoformat(args.split))
    out["recovery"] = run_recovery(args.reps)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
