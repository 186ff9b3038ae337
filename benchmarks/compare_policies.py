"""Paired comparison of every policy on a scenario over several seeds (common random numbers).

    python benchmarks/compare_policies.py [--scenario appliance_promo] [--seeds 10] [--days N]

Prints mean KPIs per policy, then the optimizer's paired differences against each baseline
(mean, sd, and on how many seeds it wins). The leadership report with confidence intervals is
`twin compare`; this is the quick check used for the optimizer issue's closing note.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from promotwin.policies.registry import make_policy
from promotwin.scenarios import load_scenario
from promotwin.twin import simulate

POLICIES = ("optimizer", "base-stock", "order-point", "static-forecast")
KPIS = (
    "promo_lost_sales_units",
    "lost_sales_units",
    "fill_rate",
    "promo_fill_rate",
    "total_cost",
    "holding_cost",
    "expedite_cost",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="appliance_promo")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--days", type=int, default=None)
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    rows = []
    for seed in range(args.seeds):
        for name in POLICIES:
            start = time.perf_counter()
            kpis = simulate(scenario, make_policy(name), seed, days=args.days).kpis
            rows.append(
                {"policy": name, "seed": seed, "seconds": time.perf_counter() - start, **kpis}
            )
            print(
                f"seed {seed} {name:16s} promo lost {kpis['promo_lost_sales_units']:8.0f} "
                f"total cost {kpis['total_cost']:12,.0f}",
                flush=True,
            )
    frame = pd.DataFrame(rows)
    print(frame.groupby("policy")[[*KPIS, "seconds"]].mean().round(3).to_string())
    opt = frame[frame["policy"] == "optimizer"].set_index("seed")
    for other in POLICIES[1:]:
        base = frame[frame["policy"] == other].set_index("seed")
        for kpi in ("promo_lost_sales_units", "total_cost"):
            diff = opt[kpi] - base[kpi]
            print(
                f"optimizer - {other:16s} {kpi:24s} mean {diff.mean():12,.1f} "
                f"sd {diff.std():10,.1f} optimizer lower on {(diff < 0).sum()}/{len(diff)} seeds"
            )


if __name__ == "__main__":
    main()
