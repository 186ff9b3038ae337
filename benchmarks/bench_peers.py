"""Promotwin against two open-source peers on the same network: SupplyNetPy and stockpyl.

    python benchmarks/bench_peers.py [--sizes 10 100 1000] [--reps 3] [--days 365]
                                     [--peer-python /tmp/peers/bin/python]

The network: 1 supplier (unlimited, 3 days' fixed lead time) -> 1 DC -> N stores (1-day lanes),
1 SKU, 365 days, Poisson(20) demand a store a day, (s, S) at every store (s = 60, S = 100) and at
the DC (s = 100 N, S = 200 N: 5 and 10 days of the stores' demand), with the same opening stock.
Each engine runs it in a subprocess of its own (alternated: Promotwin, SupplyNetPy, stockpyl,
then again), and reports CPU and wall seconds of the simulation proper (the network built
before the clock starts, results read after it stops) and the stores' fill rate (units sold /
units demanded). Ratios are per size, against the peers measured in the same run: their CPU s
/ Promotwin's (above 1: Promotwin is faster). ``--baseline-tree DIR`` also runs an earlier
Promotwin from a source tree (``git archive main | tar -x -C DIR``), alternated with this one.

Nothing is installed here. The peers are used when importable, by this interpreter or by the
one named with ``--peer-python`` (their workers import no Promotwin), e.g.::

    python -m venv /tmp/peers && /tmp/peers/bin/pip install supplynetpy stockpyl
    .venv/bin/python benchmarks/bench_peers.py --peer-python /tmp/peers/bin/python

Timing conventions differ (stated because they move the fill rates a little, not the timings):

- Promotwin: a day is one tick; demand is met first, the (s, S) review runs at the end of the
  day on the inventory position, and what it ships arrives at the start of day t + transit
  (a 1-day lane delivers before tomorrow's demand). Unmet demand is lost. Its clock covers the
  twin's whole day: demand, fulfilment, the ledger (every unit movement), the daily records,
  the snapshot, governance (auto-approve) and execution.
- SupplyNetPy 0.5.1: continuous-time SimPy; one customer order a day of Poisson(20) units per
  store (``consume_available``: a short store sells what it has, the rest is lost); the (s, S)
  review runs every time unit (``period=1``); an order arrives ``lead_time`` later. It keeps
  per-node statistics only, no movement ledger.
- stockpyl 1.0.2: periodic review, one period a day, unmet demand backordered (not lost), its
  fill rate the share of demand met from stock; the DC's supplier is its external supply.

Measured 2026-12-01 (load average 17-20 on 2 cores shared with other engineers; median CPU s
of 3 alternated runs, 2 at N = 1,000; stockpyl not run at N = 1,000):

    N      Promotwin   SupplyNetPy       stockpyl      fill rate (P / SNP / spl)
    10     0.381 s     0.336 s (0.9x)    2.21 s (5.8x)   1.000 / 0.984 / 1.000
    100    0.640 s     4.17 s  (6.5x)    23.7 s (37x)    1.000 / 0.984 / 1.000
    1,000  1.739 s     57.9 s  (33x)     -               1.000 / 0.985 / -

Promotwin's day: about 1.0 ms fixed + 3.8 us per store at this load. Against the tree this
work started from (``--baseline-tree``, N = 10, 5 alternated runs): median 0.52 -> 0.42 CPU s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

STORE_S, STORE_BIG_S = 60, 100  # store reorder point and order-up-to level (units)
DC_S_DAYS, DC_BIG_S_DAYS = 5, 10  # the DC's, in days of the stores' total demand
DEMAND_MEAN = 20.0  # Poisson units a store a day
LANE_DAYS, SUPPLIER_DAYS = 1, 3
ENGINES = ("promotwin", "supplynetpy", "stockpyl")
BASELINE = "promotwin-baseline"  # --baseline-tree: an earlier Promotwin, for before/after
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _dc_levels(n: int) -> tuple[float, float]:
    daily = DEMAND_MEAN * n
    return DC_S_DAYS * daily, DC_BIG_S_DAYS * daily


# -- the three engines, each a worker run in its own subprocess ---------------------------------


def _promotwin(n: int, days: int, seed: int) -> dict[str, Any]:
    import numpy as np
    import yaml

    from promotwin.policies.contract import Plan, PlanningSnapshot
    from promotwin.policies.heuristics import MinMax, min_max_plan
    from promotwin.scenarios import parse_scenario
    from promotwin.twin.kpis import compute_kpis
    from promotwin.twin.model import Twin
    from promotwin.twin.run import daily_frame

    stores = [f"S{i}" for i in range(n)]
    raw = {
        "name": "peers",
        "start_date": "2026-01-05",
        "horizon_days": days,
        "stores": [
            {"id": s, "region": "R", "channels": ["walk_in"], "pickup_share": 0.0} for s in stores
        ],
        "dcs": [{"id": "DC", "region": "R", "throughput": 1e12, "serves": stores}],
        "suppliers": [
            {
                "id": "V",
                "lead_time": {"distribution": "fixed", "mean": SUPPLIER_DAYS},
                "fill_rate": 1.0,
            }
        ],
        "lanes": [{"origin": "DC", "destination": s, "transit_days": LANE_DAYS} for s in stores],
        "skus": [
            {
                "id": "K",
                "category": "c",
                "price": 10,
                "unit_cost": 6,
                "supplier": "V",
                "baseline": DEMAND_MEAN,
                "ecommerce_share": 0.0,
            }
        ],
        # k = 1e9: the negative binomial is Poisson to within 1e-8 of the variance
        "demand": {"dispersion": 1e9, "weekday": [1] * 7, "forecast_error": 0.0},
        "initial_inventory": {"store_days": STORE_BIG_S / DEMAND_MEAN, "dc_days": DC_S_DAYS},
    }
    scenario = parse_scenario(yaml.safe_dump(raw, sort_keys=False))
    dc_s, dc_big_s = _dc_levels(n)
    minimum = np.array([[dc_s]] + [[STORE_S]] * n, dtype=np.float64)
    maximum = np.array([[dc_big_s]] + [[STORE_BIG_S]] * n, dtype=np.float64)

    class FixedMinMax:
        """(s, S) at every location, fixed: the peers' policy."""

        name = "s-S"
        horizon_days = 1
        points = MinMax(minimum, maximum)

        def decide(self, snapshot: PlanningSnapshot) -> Plan:
            return min_max_plan(self.name, snapshot, self.points, 1.0, "(s, S)")

    twin = Twin(scenario, FixedMinMax(), seed=seed)
    start, start_cpu = time.perf_counter(), time.process_time()
    twin.run()
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    daily = daily_frame(twin.daily, list(twin.net.locations.index))
    kpis = compute_kpis(twin.ledger.frame(), daily, 0, 0)
    return {"cpu_s": cpu, "wall_s": wall, "fill_rate": kpis["fill_rate"]}


def _supplynetpy(n: int, days: int, seed: int) -> dict[str, Any]:
    import numpy as np
    import simpy
    import SupplyNetPy.Components as scm

    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    dc_s, dc_big_s = _dc_levels(n)
    supplier = scm.Supplier(env=env, ID="V", name="V", node_type="infinite_supplier", logging=False)

    def site(node_id: str, kind: str, s: float, big_s: float, level: float) -> Any:
        return scm.InventoryNode(
            env=env,
            ID=node_id,
            name=node_id,
            node_type=kind,
            capacity=float("inf"),
            initial_level=level,
            inventory_holding_cost=0.0,
            replenishment_policy=scm.SSReplenishment,
            policy_param={"s": s, "S": big_s, "period": 1},
            product_sell_price=10,
            product_buy_price=6,
            logging=False,
        )

    dc = site("DC", "distributor", dc_s, dc_big_s, dc_s)
    nodes, demands = [supplier, dc], []
    links = [
        scm.Link(env=env, ID="L", source=supplier, sink=dc, cost=0, lead_time=lambda: SUPPLIER_DAYS)
    ]
    for i in range(n):
        store = site(f"S{i}", "retailer", STORE_S, STORE_BIG_S, STORE_BIG_S)
        nodes.append(store)
        lane = scm.Link(
            env=env, ID=f"L{i}", source=dc, sink=store, cost=0, lead_time=lambda: LANE_DAYS
        )
        links.append(lane)
        demands.append(
            scm.Demand(
                env=env,
                ID=f"D{i}",
                name=f"D{i}",
                order_arrival_model=lambda: 1,
                order_quantity_model=lambda: int(rng.poisson(DEMAND_MEAN)),
                demand_node=store,
                consume_available=True,
                logging=False,
            )
        )
    scm.create_sc_net(nodes, links, demands, env=env)
    start, start_cpu = time.perf_counter(), time.process_time()
    env.run(until=days)
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    placed = sum(d.stats.demand_placed[1] for d in demands)
    received = sum(d.stats.fulfillment_received[1] for d in demands)
    return {"cpu_s": cpu, "wall_s": wall, "fill_rate": received / placed}


def _stockpyl(n: int, days: int, seed: int) -> dict[str, Any]:
    from stockpyl.sim import simulation
    from stockpyl.supply_chain_network import network_from_edges

    stores = list(range(2, n + 2))  # node 1 is the DC (no predecessor: external supply)
    dc_s, dc_big_s = _dc_levels(n)
    net = network_from_edges(
        edges=[(1, s) for s in stores],
        node_order_in_lists=[1, *stores],
        local_holding_cost=[0.1] * (n + 1),
        stockout_cost=[1.0] * (n + 1),
        shipment_lead_time=[SUPPLIER_DAYS] + [LANE_DAYS] * n,
        demand_type=[None] + ["P"] * n,
        mean=[None] + [DEMAND_MEAN] * n,
        policy_type=["sS"] * (n + 1),
        reorder_point=[dc_s] + [STORE_S] * n,
        order_up_to_level=[dc_big_s] + [STORE_BIG_S] * n,
        initial_inventory_level=[dc_s] + [STORE_BIG_S] * n,
    )
    start, start_cpu = time.perf_counter(), time.process_time()
    simulation(net, days, rand_seed=seed, progress_bar=False)
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    rates = [net.nodes_by_index[s].state_vars[days - 1].fill_rate for s in stores]
    fill = sum(next(iter(r.values())) for r in rates) / n
    return {"cpu_s": cpu, "wall_s": wall, "fill_rate": fill}


WORKERS = {"promotwin": _promotwin, "supplynetpy": _supplynetpy, "stockpyl": _stockpyl}
PEER_MODULES = {"supplynetpy": "SupplyNetPy", "stockpyl": "stockpyl"}


# -- the driver ---------------------------------------------------------------------------------


def _python_for(engine: str, peer_python: str | None) -> str:
    return sys.executable if engine == "promotwin" or peer_python is None else peer_python


def _available(engine: str, python: str) -> bool:
    if engine == "promotwin":
        return True
    probe = [python, "-c", f"import {PEER_MODULES[engine]}"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def _run(
    engine: str, python: str, n: int, days: int, seed: int, tree: str | None = None
) -> dict[str, Any]:
    env = {**os.environ, **{v: "1" for v in BLAS_THREAD_VARS}}  # one core each
    if tree is not None:  # an earlier Promotwin: its source tree first on the path
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, env.get("PYTHONPATH")]))
    cmd = [python, __file__, "--worker", engine, str(n), str(days), str(seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{engine} worker (N={n}) failed (exit {proc.returncode})")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*header), line, *(fmt.format(*r) for r in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--reps", type=int, default=3, help="alternated runs per engine and size")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--peer-python", default=None, help="interpreter that has the peers")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument(
        "--baseline-tree",
        default=None,
        help="also run the Promotwin of this source tree (e.g. `git archive main | tar -x -C "
        "/tmp/base`), alternated with this one",
    )
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        engine, n, days, seed = args.worker
        print(json.dumps(WORKERS[engine](int(n), int(days), int(seed))))
        return

    if "promotwin" not in args.engines:
        parser.error("--engines: promotwin is the baseline of every ratio; keep it")
    engines = [e for e in args.engines if _available(e, _python_for(e, args.peer_python))]
    missing = sorted(set(args.engines) - set(engines))
    if args.baseline_tree is not None:
        engines.insert(0, BASELINE)
    print(f"1 supplier -> 1 DC -> N stores, 1 SKU, {args.days} days, Poisson({DEMAND_MEAN:g}),")
    print(f"(s, S) everywhere; {args.reps} alternated runs per engine; median CPU and wall s")
    if missing:
        print(f"not importable, skipped: {', '.join(missing)} (see the module docstring)")
    results: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for n in args.sizes:
        results[n] = {e: [] for e in engines}
        for rep in range(args.reps):
            for engine in engines:  # alternated: each rep runs every engine once, in turn
                if engine == BASELINE:
                    run = _run(
                        "promotwin", sys.executable, n, args.days, rep + 1, args.baseline_tree
                    )
                else:
                    python = _python_for(engine, args.peer_python)
                    run = _run(engine, python, n, args.days, seed=rep + 1)
                results[n][engine].append(run)

    rows = []
    for n, by_engine in results.items():
        node_days = (n + 1) * args.days
        ours = _median(by_engine["promotwin"], "cpu_s")
        for engine, runs in by_engine.items():
            cpu, wall = _median(runs, "cpu_s"), _median(runs, "wall_s")
            ratio = "" if engine == "promotwin" else f"{cpu / ours:.1f}x"
            wall_ratio = (
                ""
                if engine == "promotwin"
                else f"{wall / _median(by_engine['promotwin'], 'wall_s'):.1f}x"
            )
            rows.append(
                [
                    f"N={n} {engine}",
                    f"{cpu:.3f}",
                    f"{wall:.3f}",
                    f"{node_days / cpu / 1e3:.1f}",
                    f"{1e3 * cpu / args.days:.3f}",
                    f"{_median(runs, 'fill_rate'):.4f}",
                    ratio,
                    wall_ratio,
                ]
            )
    header = ["run", "CPU s", "wall s", "k node·days/CPU s", "CPU ms/day", "fill rate"]
    header += ["theirs/ours CPU", "theirs/ours wall"]
    print()
    print(_table(rows, header))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"days": args.days, "results": results}, fh, indent=2)


def _median(runs: list[dict[str, Any]], key: str) -> float:
    values = sorted(float(r[key]) for r in runs)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


if __name__ == "__main__":
    main()
