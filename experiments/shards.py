"""One simulation sharded by SKU group across a Dask cluster, gathered as one run.

A shard is a group of whole categories (categories linked by a halo stay together, so
cannibalisation and halo stay inside a shard), balanced by forecast volume: the groups are
filled largest first, each into the lightest shard so far. Each shard is one long-running task
that owns its twin for the whole run: the cell arrays never leave the worker; what comes back
is its KPI sums, its CPU time and peak memory, and Parquet parts written into the run's staging
folder.

Coupling through shared capacity: **fixed shares**. Every shared capacity (DC throughput, lane
capacity, supplier capacity and a supplier's fixed order cost) is split between the shards in
proportion to their forecast volume (the baseline demand of their SKUs; for a supplier, of the
SKUs it supplies). No exchange happens during the run, so where no capacity binds the shards
are exactly independent; where one binds, a shard cannot borrow another's unused share.

Random streams: every shard runs with the run's seed. The twin draws every per-SKU quantity
(demand, pickup split, supplier fill rounding, uplift estimate errors, hidden-truth noise) per
category from a stream spawned from the seed and the category's name
(``demand.model.group_streams``), and the per-supplier draws cover every supplier in every
shard, so a shard draws exactly what the unsharded run draws for its SKUs: where no shared
capacity binds, the gathered ledger is the unsharded run's, line for line. Which worker runs
which shard never matters.

Outputs: ``ledger.parquet`` and ``decisions.parquet`` are Parquet datasets (one part per
shard, SKUs as the whole network's indices) read as one table; ``daily.parquet`` sums the
shards' per-location records; KPIs come from those, as for any run. Everything is written
into a staging folder moved in place at the end: a failed shard leaves no result folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import promotwin
from promotwin import strict_json
from promotwin.scenarios.schema import Scenario

INLINE = "inline"  # run the shards one after another in this process (no Dask)
DAILY_KEYS = ("day", "location")


class ShardError(ValueError):
    """The scenario cannot be split as asked (bad input: exit 2)."""


class ShardFailed(RuntimeError):
    """A shard did not finish (its error, or its worker died): the run wrote nothing."""


@dataclasses.dataclass(frozen=True)
class ShardSpec:
    """One shard: its index, the run's shard count, its scenario and seed, and the whole
    network's index of each of its SKUs."""

    index: int
    count: int
    scenario: Scenario
    seed: int
    sku_index: tuple[int, ...]
    score_days: tuple[int, ...] = ()  # the whole run's promotion days (forecast-error KPIs)
    score_first_day: int = 0


@dataclasses.dataclass(frozen=True)
class ShardedRun:
    run_id: str
    kpis: dict[str, float]
    shards: int
    cpu_s: list[float]  # per shard, the twin's run
    peak_gb: list[float]  # per shard, the worker's peak resident memory
    wall_s: float


def category_groups(scenario: Scenario) -> list[list[str]]:
    """Categories that must stay in one shard: those linked by a halo (planned or hidden)."""
    categories = list(dict.fromkeys(s.category for s in scenario.skus))
    parent = {c: c for c in categories}

    def root(c: str) -> str:
        while parent[c] != c:
            c = parent[c]
        return c

    links = {**scenario.demand.halo, **scenario.demand.truth.unplanned_halo}
    for source, complements in links.items():
        for c in complements:
            if source in parent and c in parent:
                parent[root(c)] = root(source)
    groups: dict[str, list[str]] = {}
    for c in categories:
        groups.setdefault(root(c), []).append(c)
    return list(groups.values())


def assign_shards(scenario: Scenario, count: int) -> list[list[str]]:
    """The SKU ids of each shard, in the scenario's order: category groups by forecast volume,
    largest first, each to the lightest shard so far (ties: the lower shard)."""
    groups = category_groups(scenario)
    if count > len(groups):
        raise ShardError(
            f"--shards {count}: {scenario.name} has {len(groups)} independent category "
            f"group(s) (categories linked by a halo stay together); use --shards "
            f"{len(groups)} or fewer"
        )
    volume: dict[str, float] = {}
    for s in scenario.skus:
        volume[s.category] = volume.get(s.category, 0.0) + s.baseline * (1 + s.ecommerce_share)
    weights = [sum(volume[c] for c in g) for g in groups]
    load = [0.0] * count
    shard_of: dict[str, int] = {}
    for g in sorted(range(len(groups)), key=lambda i: (-weights[i], i)):
        target = min(range(count), key=lambda i: (load[i], i))
        load[target] += weights[g]
        for c in groups[g]:
            shard_of[c] = target
    return [[s.id for s in scenario.skus if shard_of[s.category] == i] for i in range(count)]


def shard_specs(scenario: Scenario, count: int, seed: int) -> list[ShardSpec]:
    """The shards of ``scenario`` (expanded if synthetic), each with its share of every shared
    capacity."""
    from promotwin.scenarios.generator import expand_synthetic

    if count < 1:
        raise ShardError(f"--shards must be at least 1, not {count}")
    if scenario.demand.history is not None:
        raise ShardError("--shards replays no history: drop demand.history or --shards")
    full = expand_synthetic(scenario) if scenario.synthetic is not None else scenario
    if count == 1:
        return [ShardSpec(0, 1, scenario, seed, tuple(range(len(full.skus))))]
    index = {s.id: i for i, s in enumerate(full.skus)}
    days, first = _score_days(full)
    return [
        ShardSpec(
            i,
            count,
            _sub_scenario(full, ids, i, count),
            seed,
            tuple(index[x] for x in ids),
            days,
            first,
        )
        for i, ids in enumerate(assign_shards(full, count))
    ]


def _score_days(scenario: Scenario) -> tuple[tuple[int, ...], int]:
    """The days the promotion forecast error is scored on (those of every promotion, after
    the warm-up) and its first week's start, as ``PromotionForecastScore.for_model`` counts
    them for the whole network: a shard scores its promoted SKUs on the same days."""
    spans = [(scenario.day_of(p.start), scenario.day_of(p.end)) for p in scenario.promotions]
    days = {d for start, end in spans for d in range(max(start, scenario.warmup_days), end + 1)}
    return tuple(sorted(days)), min((start for start, _ in spans), default=0)


def _volume(scenario: Scenario, skus: set[str] | None = None) -> dict[str | None, float]:
    """Baseline volume per supplier (and in total, key None) of ``skus`` (all if None)."""
    out: dict[str | None, float] = {None: 0.0}
    for s in scenario.skus:
        if skus is None or s.id in skus:
            v = s.baseline * (1 + s.ecommerce_share)
            out[s.supplier] = out.get(s.supplier, 0.0) + v
            out[None] += v
    return out


def _sub_scenario(full: Scenario, ids: list[str], index: int, count: int) -> Scenario:
    """The scenario of one shard: its SKUs, the promotions on them, and its fixed share of
    every shared capacity (by forecast volume)."""
    keep = set(ids)
    cats = {s.category for s in full.skus if s.id in keep}
    total, mine = _volume(full), _volume(full, keep)
    share = mine[None] / total[None] if total[None] > 0 else 1.0 / count

    def supplier_share(v: str) -> float:
        return mine.get(v, 0.0) / total[v] if total.get(v, 0.0) > 0 else 1.0

    promotions = []
    for p in full.promotions:
        skus = tuple(x for x in p.skus if x in keep)
        categories = tuple(c for c in p.categories if c in cats)
        if skus or categories:
            promotions.append(p.model_copy(update={"skus": skus, "categories": categories}))
    promo_ids = {p.id for p in promotions}
    demand = full.demand
    truth = demand.truth.model_copy(
        update={
            "uplift_deviations": tuple(
                d.model_copy(
                    update={"promotions": tuple(x for x in d.promotions if x in promo_ids)}
                )
                for d in demand.truth.uplift_deviations
                if not d.promotions or any(x in promo_ids for x in d.promotions)
            ),
            "unplanned_halo": {k: v for k, v in demand.truth.unplanned_halo.items() if k in cats},
        }
    )
    demand = demand.model_copy(
        update={
            "seasonality": {k: v for k, v in demand.seasonality.items() if k in cats},
            "halo": {k: v for k, v in demand.halo.items() if k in cats},
            "truth": truth,
        }
    )
    suppliers = []
    for v in full.suppliers:
        part = supplier_share(v.id)
        if part > 0:  # a supplier none of the shard's SKUs uses keeps its terms (never ordered)
            v = v.model_copy(
                update={"capacity": v.capacity * part, "order_cost": v.order_cost * part}
            )
        suppliers.append(v)
    return full.model_copy(
        update={
            "name": f"{full.name}-shard{index + 1}of{count}",
            "skus": tuple(s for s in full.skus if s.id in keep),
            "promotions": tuple(promotions),
            "demand": demand,
            "suppliers": tuple(suppliers),
            "dcs": tuple(
                d.model_copy(update={"throughput": d.throughput * share}) for d in full.dcs
            ),
            "lanes": tuple(
                x.model_copy(update={"capacity": x.capacity * share}) for x in full.lanes
            ),
        }
    )


def run_shard(
    spec: ShardSpec,
    policy_name: str,
    days: int | None,
    forecast: str,
    ledger_detail: str | None,
    staging: str,
) -> dict[str, Any]:
    """Simulate one shard (on a worker: its twin lives here for the whole run) and write its
    Parquet parts into ``staging``; return its KPI sums, CPU seconds and peak memory."""
    from promotwin.demand.forecaster import make_forecaster
    from promotwin.policies.registry import make_policy
    from promotwin.twin.model import Twin
    from promotwin.twin.run import _decisions_frame, daily_frame

    forecaster = make_forecaster(forecast, None, False)
    twin = Twin(
        spec.scenario,
        make_policy(policy_name),
        spec.seed,
        days=days,
        ledger_detail=ledger_detail,  # type: ignore[arg-type]
        forecaster=forecaster,
    )
    if spec.count > 1:  # score on the whole run's promotion days, not just the shard's own
        twin.forecast_score = dataclasses.replace(
            twin.forecast_score, days=set(spec.score_days), first_day=spec.score_first_day
        )
    start = time.process_time()
    twin.run()
    cpu = time.process_time() - start
    skus = np.asarray(spec.sku_index, dtype=np.int64)
    ledger = twin.ledger.frame()
    decisions = _decisions_frame(twin.decisions)
    for frame in (ledger, decisions):  # the whole network's SKU indices (-1: summed lines)
        local = frame["sku"].to_numpy()
        frame["sku"] = np.where(local >= 0, skus[np.maximum(local, 0)], -1).astype(local.dtype)
    part = f"part-{spec.index:05d}.parquet"
    for name, frame in (("ledger", ledger), ("decisions", decisions)):
        folder = Path(staging) / f"{name}.parquet"
        folder.mkdir(exist_ok=True)
        frame.to_parquet(folder / part, index=False)
    daily = daily_frame(twin.daily, list(twin.net.locations.index))
    (Path(staging) / "daily").mkdir(exist_ok=True)
    daily.to_parquet(Path(staging) / "daily" / part, index=False)
    score = twin.forecast_score
    region_week = sum(float(np.abs(f - d).sum()) for f, d in score.weeks.values())
    return {
        "index": spec.index,
        "cpu_s": cpu,
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "days": twin.days,
        "score": (score.abs_error, score.forecast, score.demand, region_week),
        "run_score": (twin.run_forecast_score.region_week_error(), twin.run_forecast_score.demand),
    }


def run_sharded(
    scenario: Scenario,
    policy_name: str,
    out: Path,
    shards: int,
    seed: int = 0,
    days: int | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    forecast: str = "oracle",
    ledger_detail: str | None = None,
) -> ShardedRun:
    """Simulate ``scenario`` in ``shards`` SKU-group shards and write one run's outputs to
    ``out`` (never half a folder). ``scheduler``: a Dask scheduler's address, ``"inline"``
    (every shard in this process, one after another), or None: a LocalCluster of ``workers``
    (default: one per shard, at most the machine's cores)."""
    specs = shard_specs(scenario, shards, seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)
    args = (policy_name, days, forecast, ledger_detail, str(staging))
    start = time.perf_counter()
    try:
        if scheduler == INLINE:
            results = [run_shard(spec, *args) for spec in specs]
        else:
            from promotwin.experiments.runner import dask_client

            n_workers = workers or max(1, min(shards, os.cpu_count() or 1))
            with dask_client(scheduler, n_workers) as client:
                futures = [
                    client.submit(run_shard, spec, *args, key=f"shard-{spec.index}-{staging.name}")
                    for spec in specs
                ]
                try:
                    results = client.gather(futures)
                except Exception as exc:  # a shard's error, or its worker died mid-run
                    raise ShardFailed(
                        f"a shard failed ({type(exc).__name__}: {exc}); nothing was written "
                        f"to {out}: rerun when the cluster is healthy"
                    ) from exc
        results = sorted(results, key=lambda r: r["index"])  # gathered in shard order
        kpis = _gather_outputs(scenario, staging, results)
        run_id = _run_id(scenario, policy_name, seed, results[0]["days"], shards, forecast)
        manifest = {
            "run_id": run_id,
            "scenario": scenario.name,
            "scenario_hash": scenario.content_hash(),
            "policy": policy_name,
            "forecaster": forecast,
            "seed": seed,
            "days": results[0]["days"],
            "version": promotwin.__version__,
            "shards": shards,
            "coupling": "fixed shares of shared capacity by forecast volume",
        }
        (staging / "manifest.json").write_text(strict_json.dumps(manifest, indent=2) + "\n")
        (staging / "kpis.json").write_text(strict_json.dumps(kpis, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ShardedRun(
        run_id=run_id,
        kpis=kpis,
        shards=shards,
        cpu_s=[r["cpu_s"] for r in results],
        peak_gb=[r["peak_gb"] for r in results],
        wall_s=time.perf_counter() - start,
    )


def _run_id(
    scenario: Scenario, policy: str, seed: int, days: int, shards: int, forecast: str
) -> str:
    key = f"{scenario.content_hash()}|{policy}|{seed}|{days}|{promotwin.__version__}"
    if forecast != "oracle":
        key += f"|{forecast}"
    if shards > 1:  # one shard is the single-process run: the same id
        key += f"|shards={shards}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _gather_outputs(
    scenario: Scenario, staging: Path, results: list[dict[str, Any]]
) -> dict[str, float]:
    """The shards' parts as one run: the daily records summed per location (their SKUs are
    disjoint), KPIs from the ledger read as one dataset."""
    from promotwin.twin.kpis import compute_kpis

    parts = sorted((staging / "daily").glob("part-*.parquet"))
    daily = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    order = daily.drop_duplicates(DAILY_KEYS)[list(DAILY_KEYS)]  # day-major, locations in order
    daily = order.merge(daily.groupby(list(DAILY_KEYS), sort=False).sum().reset_index())
    daily.to_parquet(staging / "daily.parquet", index=False)
    shutil.rmtree(staging / "daily")
    ledger = pd.read_parquet(staging / "ledger.parquet")
    kpis = compute_kpis(ledger, daily, 0, scenario.warmup_days)
    abs_error, forecast, demand, region_week = np.sum([r["score"] for r in results], axis=0)
    run_error, run_demand = np.sum([r["run_score"] for r in results], axis=0)  # SKUs disjoint
    nan = float("nan")
    kpis.update(
        {
            "forecast_wape_region_week": (
                float(np.round(run_error / run_demand, 6)) if run_demand else nan
            ),
            "promo_forecast_wape": float(np.round(abs_error / demand, 6)) if demand else nan,
            "promo_forecast_wape_region_week": (
                float(np.round(region_week / demand, 6)) if demand else nan
            ),
            "promo_forecast_bias": (
                float(np.round((forecast - demand) / demand, 6)) if demand else nan
            ),
        }
    )
    return kpis
