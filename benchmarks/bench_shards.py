"""Scaling of one sharded run (``twin run --shards``) on a LocalCluster: 1 shard on 1 worker
against 2 shards on 2 workers, the same network, in the same run.

    python benchmarks/bench_shards.py [--stores 500] [--skus 4000] [--days 20] [--reps 1]

Reports per run: wall seconds of the whole sharded run (shards' setup, twins, Parquet parts,
gathering, KPIs; the cluster is started before the clock), each shard's loop CPU seconds and
peak resident memory (its worker's), and per-cell figures: loop CPU seconds per million
cell·days and GB of worker memory per million cells. Scaling efficiency 1 -> 2 workers is
``wall(1) / (2 * wall(2))`` (wall: on a machine other work shares, read the CPU figures too)
and, by CPU, ``cpu(1) / sum(cpu(2 shards))`` (what sharding itself costs).

A written model for 100 M cells (2,000 stores x 50,000 SKUs), from the per-cell figures this
run measures (``c`` loop CPU s per cell·day, ``m`` GB per million cells, ``b`` GB a worker
holds before any shard): with ``W`` workers and one shard each, a worker holds ``100/W`` M
cells, needs ``b + m * 100 / W`` GB, and a day takes ``c * 1e8 / W`` s (shards exchange
nothing under fixed shares, so the day scales with the largest shard; balanced by volume, the
shards are within a category group's size of each other). The report prints the model's
numbers for W = 16 and 64 next to the measured ones.

Measured 2026-12-01 (load average 14-20 on 2 cores shared with other engineers: the wall
figures are the machine's, the CPU figures the run's), ``--stores 400 --skus 4000 --days 20``,
1.62 M cells, base-stock: 1 shard 24.7 loop CPU s, 1.32 GB; 2 shards 12.9 + 12.0 CPU s,
0.78 GB each; CPU efficiency 0.99, wall 0.75; c = 0.76 CPU s per M cell·days, m = 0.67 GB per
M cells, b = 0.23 GB. Model, 100 M cells: 16 workers 6.25 M cells and 4.4 GB each, 4.8 CPU s a
day (0.5 h for 365 days); 64 workers 1.56 M cells and 1.3 GB each, 1.2 CPU s a day.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

MODEL_CELLS = 100e6
MODEL_WORKERS = (16, 64)


def _scenario(stores: int, skus: int, days: int) -> Any:
    from promotwin.testing.scenarios import small_scenario

    spec = {"stores": stores, "dcs": 5, "skus": skus, "suppliers": 20, "categories": 40}
    return small_scenario(
        name="shard_bench", synthetic={**spec, "promotions": 4, "seed": 7}, horizon_days=days
    )


def _warm_up() -> None:
    import promotwin.experiments.shards
    import promotwin.twin.model  # noqa: F401


def _run(scenario: Any, shards: int, workers: int, days: int, policy: str) -> dict[str, Any]:
    import dask
    import distributed

    from promotwin.experiments.runner import local_cluster
    from promotwin.experiments.shards import run_sharded

    scratch = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    with dask.config.set({"temporary-directory": str(scratch)}), local_cluster(workers) as c:
        with distributed.Client(c, set_as_default=False) as client:
            client.run(_warm_up)  # the package's import (seconds) is before the clock
        start = time.perf_counter()
        run = run_sharded(scenario, policy, scratch / "out", shards, 1, days, c.scheduler_address)
        wall = time.perf_counter() - start
    return {"wall_s": wall, "cpu_s": run.cpu_s, "peak_gb": run.peak_gb, "fill": run.kpis}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=500)
    parser.add_argument("--skus", type=int, default=4000)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--reps", type=int, default=1, help="alternated runs of each layout")
    parser.add_argument("--policy", default="base-stock")
    args = parser.parse_args()
    logging.getLogger("distributed").setLevel(logging.ERROR)

    scenario = _scenario(args.stores, args.skus, args.days)
    cells = (args.stores + 5) * args.skus
    print(f"{cells:,} cells ({args.stores} stores + 5 DCs x {args.skus} SKUs), {args.days} days")
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for _ in range(args.reps):
        for k in (1, 2):  # alternated
            runs[k].append(_run(scenario, k, k, args.days, args.policy))
    one, two = min(runs[1], key=lambda r: r["wall_s"]), min(runs[2], key=lambda r: r["wall_s"])
    cell_days = cells * args.days
    cpu_one, cpu_two = one["cpu_s"][0], sum(two["cpu_s"])
    for k, r in ((1, one), (2, two)):
        shards = ", ".join(
            f"{c:.1f} CPU s / {g:.2f} GB" for c, g in zip(r["cpu_s"], r["peak_gb"], strict=True)
        )
        print(f"  {k} shard(s) on {k} worker(s): wall {r['wall_s']:.1f} s; shards: {shards}")
    print(f"scaling efficiency 1 -> 2 workers: wall {one['wall_s'] / (2 * two['wall_s']):.2f},")
    print(f"  CPU {cpu_one / cpu_two:.2f} (1 shard's loop CPU / the 2 shards' together)")
    c = cpu_one / cell_days
    base = _worker_baseline_gb()
    m = max(one["peak_gb"][0] - base, 0.0) / (cells / 1e6)
    print(f"per cell: {1e6 * c:.3f} loop CPU s per M cell·days; {m:.3f} GB per M cells")
    print(f"  (a worker holds {base:.2f} GB before any shard)")
    fill_one, fill_two = one["fill"]["fill_rate"], two["fill"]["fill_rate"]
    print(f"fill rate: 1 shard {fill_one:.4f}, 2 shards {fill_two:.4f} (other random streams)")
    print("model, 100 M cells, one shard a worker:")
    for w in MODEL_WORKERS:
        per = MODEL_CELLS / w
        print(
            f"  {w} workers: {per / 1e6:.2f} M cells each, {base + m * per / 1e6:.1f} GB each,"
            f" {c * per:.1f} CPU s a day ({c * per * 365 / 3600:.1f} h for 365 days)"
        )


def _worker_baseline_gb() -> float:
    """Peak memory of a process that imported what a shard imports, before its twin."""
    import json
    import subprocess
    import sys

    code = (
        "import resource, json; import promotwin.twin.model, promotwin.experiments.shards;"
        "import distributed;"
        "print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
