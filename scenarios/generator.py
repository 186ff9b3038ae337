"""Seeded generator of synthetic networks and catalogues of any size."""

from __future__ import annotations

import datetime as dt

import numpy as np

from promotwin.scenarios.schema import (
    DC,
    Lane,
    LeadTime,
    LocationFilter,
    Promotion,
    Scenario,
    Sku,
    Store,
    Supplier,
    Synthetic,
)


def expand_synthetic(scenario: Scenario) -> Scenario:
    """Replace a scenario's ``synthetic`` block with the explicit network it describes."""
    spec = scenario.synthetic
    assert spec is not None
    parts = generate_network(spec, scenario.start_date, scenario.horizon_days)
    return scenario.model_copy(update={"synthetic": None, **parts})


def direct_stores(stores: list[Store], spec: Synthetic) -> list[Store]:
    """Make ``spec.direct_share`` of the stores direct-store delivery, chosen by a stream of
    their own (the rest of the network is drawn as without them); every second one chosen is
    also supplied by its DC (``both``), the others by suppliers only."""
    n = int(round(spec.direct_share * len(stores)))
    if n == 0:
        return stores
    chosen = np.sort(np.random.default_rng([spec.seed, 14]).permutation(len(stores))[:n])
    out = list(stores)
    for j, i in enumerate(chosen.tolist()):
        supplied_by = "both" if j % 2 else "supplier"
        out[i] = out[i].model_copy(update={"supplied_by": supplied_by})
    return out


def generate_network(spec: Synthetic, start: dt.date, horizon_days: int) -> dict[str, tuple]:
    """Stores, DCs, suppliers, lanes, SKUs and promotions for ``spec`` (same seed, same network)."""
    rng = np.random.default_rng(spec.seed)
    n_regions = min(spec.regions, spec.stores)  # every region has a store
    regions = [f"R{r + 1}" for r in range(n_regions)]
    dc_ids = [f"DC{d + 1}" for d in range(spec.dcs)]
    store_region = np.arange(spec.stores) % n_regions
    store_dc = store_region % spec.dcs
    stores = []
    for i in range(spec.stores):
        channels = (
            ("walk_in", "pickup", "ship_from_store")
            if rng.random() < 0.3
            else ("walk_in", "pickup")
        )
        stores.append(
            Store(
                id=f"S{i + 1:04d}",
                region=regions[int(store_region[i])],
                cluster=("urban", "suburban", "rural")[int(rng.integers(3))],
                channels=channels,
                size=float(np.round(rng.lognormal(0, 0.35), 3)),
                pickup_share=float(np.round(rng.uniform(0.05, 0.25), 3)),
            )
        )
    stores = direct_stores(stores, spec)
    dcs = [
        DC(
            id=dc_ids[d],
            region=regions[d % n_regions],
            throughput=1e12,  # set below from the network's volume
            serves=tuple(
                s.id
                for s, k in zip(stores, store_dc, strict=True)
                if k == d and s.supplied_by != "supplier"
            ),
        )
        for d in range(spec.dcs)
    ]
    suppliers = [
        Supplier(
            id=f"V{v + 1:02d}",
            lead_time=LeadTime(
                distribution="lognormal",
                mean=float(rng.integers(4, 11)),
                sd=float(np.round(rng.uniform(0.5, 2.0), 2)),
                min=2,
            ),
            fill_rate=float(np.round(rng.uniform(0.93, 0.995), 3)),
            expedite_lead_time=2,
        )
        for v in range(spec.suppliers)
    ]
    n_categories = min(spec.categories, spec.skus)  # every category has a SKU
    categories = [f"C{c + 1:02d}" for c in range(n_categories)]
    cat_of = rng.permutation(np.arange(spec.skus) % n_categories)
    prices = np.round(rng.lognormal(3.0, 0.8, spec.skus), 2) + 1.0
    margins = rng.uniform(0.25, 0.5, spec.skus)
    baselines = np.round(rng.lognormal(-1.0, 0.9, spec.skus), 3) + 0.01
    skus = [
        Sku(
            id=f"K{k + 1:05d}",
            category=categories[int(cat_of[k])],
            price=float(prices[k]),
            unit_cost=float(np.round(prices[k] * (1 - margins[k]), 2)),
            supplier=suppliers[k % spec.suppliers].id,
            baseline=float(baselines[k]),
            ecommerce_share=float(np.round(rng.uniform(0.05, 0.2), 3)),
        )
        for k in range(spec.skus)
    ]
    # every store draws its lane's transit (the draws stay the same whatever is direct)
    transit = [int(rng.integers(1, 3)) for _ in stores]
    lanes = [
        Lane(origin=dc_ids[int(store_dc[i])], destination=s.id, transit_days=transit[i])
        for i, s in enumerate(stores)
        if s.supplied_by != "supplier"
    ]
    lanes += [
        Lane(origin=a, destination=b, transit_days=2, cost_per_unit=0.8)
        for a in dc_ids
        for b in dc_ids
        if a != b
    ]
    size = np.array([s.size for s in stores])
    volume = float(baselines.sum()) * (1 + 0.2)
    dcs = [
        dc.model_copy(
            update={"throughput": float(np.ceil(3.0 * volume * size[store_dc == d].sum() + 100))}
        )
        for d, dc in enumerate(dcs)
    ]
    promotions = []
    for p in range(spec.promotions if horizon_days >= 14 else 0):
        first = int(rng.integers(3, max(4, horizon_days - 14)))
        last = min(horizon_days - 1, first + 13)
        promotions.append(
            Promotion(
                id=f"P{p + 1}",
                categories=(categories[p % n_categories],),
                locations=LocationFilter(regions=(regions[p % n_regions],)),
                start=start + dt.timedelta(days=first),
                end=start + dt.timedelta(days=last),
                depth=float(np.round(rng.uniform(0.1, 0.4), 2)),
                display=bool(rng.random() < 0.5),
                feature=bool(rng.random() < 0.5),
            )
        )
    return {
        "stores": tuple(stores),
        "dcs": tuple(dcs),
        "suppliers": tuple(suppliers),
        "lanes": tuple(lanes),
        "skus": tuple(skus),
        "promotions": tuple(promotions),
    }
