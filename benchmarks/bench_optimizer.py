"""Optimizer tick time: build, update, solve, extract, peak memory; ratios against baselines.

Baselines measured in the same run:
- appliance-like size (45 stores x 40 SKUs x 14 days): a cold rebuild every tick vs the model
  built once and updated in place (warm-started HiGHS); monolithic vs decomposed.
- 100 stores x 500 SKUs x 14 days (ring store<->store lanes): decomposed into SKU groups;
  the monolithic LP is not attempted (RECIPES: > 300 s).

Run: ``python benchmarks/bench_optimizer.py [--quick]``
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from dataclasses import replace

import numpy as np

from promotwin.policies.contract import PlanningSnapshot
from promotwin.policies.optimizer import OptimizerPolicy
from promotwin.testing.snapshots import random_snapshot


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


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(label: str, snaps: list[PlanningSnapshot], make: type | None = None, **kw: object) -> dict:
    """Tick through ``snaps`` with one policy (in place) or a fresh one per tick (cold)."""
    cold = kw.pop("cold", False)
    policy = OptimizerPolicy(**kw)  # type: ignore[arg-type]
    rows = []
    for s in snaps:
        if cold:
            policy = OptimizerPolicy(**kw)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        plan = policy.decide(s)
        wall = time.perf_counter() - t0
        r = policy.last_result
        assert r is not None and policy.last_failure is None, policy.last_failure
        rows.append((wall, r.build_seconds, r.update_seconds, r.solve_seconds, r.extract_seconds))
    first = rows[0]
    later = rows[1:] if len(rows) > 1 else rows
    med = [statistics.median(x[i] for x in later) for i in range(5)]
    r = policy.last_result
    assert r is not None
    out = {
        "label": label,
        "first_tick": first[0],
        "build": first[1],
        "median_tick": med[0],
        "median_build": med[1],
        "median_update": med[2],
        "median_solve": med[3],
        "median_extract": med[4],
        "groups": len(r.groups),
        "columns": r.n_columns,
        "rows": r.n_rows,
        "objective": r.objective,
        "lines": len(plan),
        "peak_rss_mb": peak_rss_mb(),
    }
    print(
        f"{label:<38} groups {out['groups']:>3}  cols {out['columns']:>9,}  "
        f"first {out['first_tick']:6.2f}s (build {out['build']:5.2f}s)  "
        f"median tick {out['median_tick']:6.3f}s = build {out['median_build']:.3f} + "
        f"update {out['median_update']:.3f} + solve {out['median_solve']:.3f} + "
        f"extract {out['median_extract']:.3f} (+ snapshot/plan work)  "
        f"obj {out['objective']:,.1f}  peak RSS {out['peak_rss_mb']:.0f} MB",
        flush=True,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer ticks, smaller large case")
    args = ap.parse_args()
    n_ticks = 4 if args.quick else 9

    print("== appliance-like: 45 stores x 40 SKUs x 14 days, 2 DCs, 4 suppliers ==")
    snaps = ticks(random_snapshot(45, 40, n_dcs=2, n_suppliers=4, seed=1), n_ticks)
    mono = run("monolithic, built once, in place", snaps, max_cells_per_group=None)
    cold = run("monolithic, cold rebuild every tick", snaps, max_cells_per_group=None, cold=True)
    deco = run("decomposed (<=500 cells/group)", snaps, max_cells_per_group=500)
    print(
        f"   cold rebuild / in place, median tick: {cold['median_tick'] / mono['median_tick']:.1f}x"
        f"; decomposed / monolithic tick: {deco['median_tick'] / mono['median_tick']:.2f}x"
        f", objective {100 * (deco['objective'] / mono['objective'] - 1):+.4f}%"
    )

    stores, skus = (100, 100) if args.quick else (100, 500)
    print(f"== large: {stores} stores x {skus} SKUs x 14 days, 5 DCs, 5 suppliers, ring lanes ==")
    big = ticks(random_snapshot(stores, skus, n_dcs=5, n_suppliers=5, seed=2), max(3, n_ticks // 2))
    for cells in (1000, 3000):
        run(f"decomposed (<={cells} cells/group)", big, max_cells_per_group=cells)


if __name__ == "__main__":
    main()
