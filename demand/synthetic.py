"""Sales histories drawn from the twin's own demand generator, with known true parameters.

Used to check that fitting recovers what generated the data (and that its intervals cover the
truth at about their nominal rate), and to give examples of the history format.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from promotwin.demand.model import DemandModel
from promotwin.scenarios.network import compile_network
from promotwin.scenarios.schema import (
    DC,
    DemandParams,
    Lane,
    LocationFilter,
    Promotion,
    Scenario,
    Sku,
    Store,
    Supplier,
)


def simulate_history(scenario: Scenario, seed: int = 0, days: int | None = None) -> pd.DataFrame:
    """Every day x location x SKU x channel of demand (zeros included) with promotion columns.

    Stores get ``walk_in`` and ``pickup`` rows, DCs ``ecommerce`` rows (the twin's layout).
    ``price`` is the selling price; ``depth``, ``display``, ``feature`` describe the promotion
    running on the row's cell that day.
    """
    net = compile_network(scenario)
    model = DemandModel(scenario, net)
    rng = np.random.default_rng(seed)
    n_days = days or scenario.horizon_days
    nd, n_loc, n_sku = net.n_dcs, net.n_locations, net.n_skus
    loc_ids = np.asarray(net.locations.index, dtype=object)
    sku_ids = np.asarray(net.skus.index, dtype=object)
    price = net.price
    parts = []
    for day in range(n_days):
        dem = model.sample(day, [rng])  # one stream for all SKUs: a history is never sharded
        depth = np.zeros((n_loc, n_sku))
        display = np.zeros((n_loc, n_sku), np.int64)
        feature = np.zeros((n_loc, n_sku), np.int64)
        for pc in model.promotions:
            if pc.start_day <= day <= pc.end_day:
                p = pc.promotion
                depth = np.where(pc.cells, np.maximum(depth, p.depth), depth)
                display = np.where(pc.cells & p.display, 1, display)
                feature = np.where(pc.cells & p.feature, 1, feature)
        date = pd.Timestamp(model.date(day))
        for channel, units, rows in (
            ("walk_in", dem.walk_in, slice(nd, None)),
            ("pickup", dem.pickup, slice(nd, None)),
            ("ecommerce", dem.ecommerce, slice(0, nd)),
        ):
            loc_idx = np.arange(n_loc)[rows]
            li, si = np.meshgrid(loc_idx, np.arange(n_sku), indexing="ij")
            parts.append(
                {
                    "date": np.full(li.size, date),
                    "location": loc_ids[li.ravel()],
                    "sku": sku_ids[si.ravel()],
                    "channel": np.full(li.size, channel, dtype=object),
                    "units": units.ravel(),
                    "price": (price[None, :] * (1 - depth[rows])).ravel(),
                    "depth": depth[rows].ravel(),
                    "display": display[rows].ravel(),
                    "feature": feature[rows].ravel(),
                }
            )
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    frame = pd.DataFrame(cols)
    if "ecommerce" not in set(frame["channel"]) or not (net.skus["ecommerce_share"] > 0).any():
        frame = frame[frame["channel"] != "ecommerce"]
    return frame.reset_index(drop=True)


def promotion_calendar(
    scenario: Scenario,
    seed: int,
    days: int,
    gap_days: int = 10,
    length: tuple[int, int] = (7, 14),
) -> tuple[Promotion, ...]:
    """Non-overlapping promotions per category: 1-2 of its SKUs at a time, random depth,
    display and feature, in all stores or one region, ``gap_days`` apart (for the dip)."""
    rng = np.random.default_rng(seed)
    by_cat: dict[str, list[str]] = {}
    for k in scenario.skus:
        by_cat.setdefault(k.category, []).append(k.id)
    regions = sorted({s.region for s in scenario.stores})
    promos = []
    for cat, skus in by_cat.items():
        day = int(rng.integers(0, gap_days))
        n = 0
        while True:
            span = int(rng.integers(length[0], length[1] + 1))
            if day + span >= days:
                break
            chosen = rng.choice(skus, size=min(len(skus), int(rng.integers(1, 3))), replace=False)
            where = (
                LocationFilter(regions=(str(rng.choice(regions)),))
                if len(regions) > 1 and rng.random() < 0.4
                else LocationFilter()
            )
            start = scenario.start_date + dt.timedelta(days=day)
            promos.append(
                Promotion(
                    id=f"{cat}-{n}",
                    skus=tuple(str(s) for s in chosen),
                    locations=where,
                    channels=("walk_in", "pickup", "ecommerce"),
                    start=start,
                    end=start + dt.timedelta(days=span - 1),
                    depth=float(np.round(rng.uniform(0.1, 0.45), 2)),
                    display=bool(rng.random() < 0.5),
                    feature=bool(rng.random() < 0.4),
                )
            )
            n += 1
            day += span + gap_days + int(rng.integers(0, 6))
    return tuple(promos)


def recovery_scenario(
    days: int = 364,
    stores: int = 6,
    categories: int = 2,
    skus_per_category: int = 4,
    seed: int = 0,
    demand: DemandParams | None = None,
) -> Scenario:
    """A small network with known, varied per-SKU elasticities and a dense promotion calendar."""
    rng = np.random.default_rng(seed)
    store_list = tuple(
        Store(
            id=f"S{i + 1:02d}",
            region=f"R{i % 2 + 1}",
            channels=("walk_in", "pickup"),
            size=float(np.round(rng.uniform(0.7, 1.4), 2)),
            pickup_share=0.15,
        )
        for i in range(stores)
    )
    dc = DC(id="DC1", region="R1", throughput=1e6, serves=tuple(s.id for s in store_list))
    skus = []
    for c in range(categories):
        for k in range(skus_per_category):
            skus.append(
                Sku(
                    id=f"C{c + 1}-K{k + 1}",
                    category=f"C{c + 1}",
                    price=10.0 + 5 * k,
                    unit_cost=6.0 + 3 * k,
                    supplier="V1",
                    baseline=float(np.round(rng.uniform(2.0, 6.0), 2)),
                    ecommerce_share=0.0,
                    elasticity=float(np.round(rng.uniform(-3.0, -1.2), 2)),
                )
            )
    params = demand or DemandParams(
        dispersion=5.0,
        display_lift=0.25,
        feature_lift=0.4,
        cannibalisation=0.3,
        post_promo_dip=0.3,
        post_promo_days=7,
        forecast_error=0.0,
    )
    base = Scenario(
        name="recovery",
        start_date=dt.date(2025, 1, 6),
        horizon_days=days,
        stores=store_list,
        dcs=(dc,),
        suppliers=(Supplier(id="V1"),),
        lanes=tuple(Lane(origin="DC1", destination=s.id) for s in store_list),
        skus=tuple(skus),
        demand=params,
    )
    return base.model_copy(update={"promotions": promotion_calendar(base, seed + 1, days)})
