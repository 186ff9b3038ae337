"""Hand-built ``PlanningSnapshot``s for optimizer tests and benchmarks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from promotwin.policies.contract import InboundShipment, PlanningSnapshot


def tiny_snapshot(
    *,
    n_dcs: int = 1,
    n_stores: int = 1,
    n_skus: int = 1,
    horizon: int = 5,
    on_hand: Sequence[Sequence[float]] | None = None,  # [L][S]
    demand: Sequence[Sequence[Sequence[float]]] | float = 0.0,  # [H][L][S] or constant
    lanes: Sequence[tuple[int, int, int, float, float]] | None = None,  # o, d, transit, cost, cap
    serving_dc: Sequence[int] | None = None,
    lead_time: float = 2.0,
    expedite_lead_time: int = 1,
    fill_rate: float = 1.0,
    supplier_capacity: float = 1e9,
    dc_throughput: float = 1e9,
    lost_sale_cost: float = 10.0,
    holding_cost: float = 0.1,
    expedite_premium: float = 1.0,
    inbound: Sequence[InboundShipment] = (),
    day: int = 0,
    dispersion: float = 4.0,
) -> PlanningSnapshot:
    """One supplier; DCs ``0..n_dcs-1`` then stores; default lanes DC0 -> every store, 1 day."""
    L = n_dcs + n_stores
    S = n_skus
    oh = np.zeros((L, S), np.int64) if on_hand is None else np.asarray(on_hand, np.int64)
    if np.isscalar(demand):
        fc = np.full((horizon, L, S), float(demand))  # type: ignore[arg-type]
        fc[:, :n_dcs] = 0.0
    else:
        fc = np.asarray(demand, np.float64)
    if serving_dc is None:
        serving = np.concatenate([np.arange(n_dcs), np.zeros(n_stores, np.int64)])
    else:
        serving = np.asarray(serving_dc, np.int64)
    if lanes is None:
        lanes = [(int(serving[st]), st, 1, 0.0, 1e9) for st in range(n_dcs, L)]
    lane_df = pd.DataFrame(
        list(lanes), columns=["o", "d", "transit_days", "cost_per_unit", "capacity"]
    )
    in_transit = np.zeros((L, S), np.int64)
    on_order = np.zeros((L, S), np.int64)
    for sh in inbound:
        target = on_order if sh.kind in ("purchase", "expedite") else in_transit
        np.add.at(target[sh.destination], sh.sku, sh.qty)
    return PlanningSnapshot(
        day=day,
        date=dt.date(2025, 1, 1) + dt.timedelta(days=day),
        location_ids=tuple([f"DC{i}" for i in range(n_dcs)] + [f"S{i}" for i in range(n_stores)]),
        sku_ids=tuple(f"K{k}" for k in range(S)),
        n_dcs=n_dcs,
        serving_dc=serving,
        on_hand=oh,
        in_transit=in_transit,
        on_order=on_order,
        inbound=tuple(inbound),
        forecast_mean=fc,
        forecast_dispersion=dispersion,
        history_mean=fc.mean(axis=0),
        baseline_mean=fc.mean(axis=0),
        promotions=pd.DataFrame(columns=["id", "start_day", "end_day", "depth", "planned_uplift"]),
        promotion_cells={},
        sku_supplier=np.zeros(S, np.int64),
        supplier_ids=("V0",),
        lead_time_mean=np.array([lead_time]),
        lead_time_sd=np.array([0.0]),
        expedite_lead_time=np.array([expedite_lead_time], np.int64),
        supplier_capacity=np.array([supplier_capacity]),
        moq=np.array([0.0]),
        fill_rate=np.array([fill_rate]),
        lanes=lane_df,
        dc_throughput=np.full(n_dcs, dc_throughput),
        price=np.full(S, 20.0),
        unit_cost=np.full(S, 10.0),
        holding_cost=np.full(S, holding_cost),
        lost_sale_cost=np.full(S, lost_sale_cost),
        expedite_premium=np.full(S, expedite_premium),
    )


def random_snapshot(
    n_stores: int,
    n_skus: int,
    *,
    n_dcs: int = 2,
    n_suppliers: int = 3,
    horizon: int = 14,
    ring_transfers: bool = True,
    throughput_factor: float = 3.0,
    seed: int = 0,
) -> PlanningSnapshot:
    """A seeded network with promotions-like demand spikes, open orders and ring store lanes."""
    rng = np.random.default_rng(seed)
    L = n_dcs + n_stores
    S = n_skus
    serving = np.concatenate([np.arange(n_dcs), np.arange(n_stores) % n_dcs])
    base = rng.lognormal(-0.5, 0.9, S)[None, :] * rng.lognormal(0, 0.3, n_stores)[:, None]
    fc = np.zeros((horizon, L, S))
    fc[:, n_dcs:] = base[None]
    promo = rng.random(S) < 0.2
    start = rng.integers(0, horizon, S)
    for k in np.flatnonzero(promo):
        fc[start[k] : start[k] + 7, n_dcs:, k] *= 2.5
    for d in range(n_dcs):
        fc[:, d] = 0.1 * fc[:, n_dcs:][:, serving[n_dcs:] == d].sum(axis=1)
    on_hand = np.zeros((L, S), np.int64)
    on_hand[n_dcs:] = rng.poisson(base * rng.uniform(0, 6, (n_stores, S)))
    for d in range(n_dcs):
        on_hand[d] = rng.poisson(base[serving[n_dcs:] == d].sum(axis=0) * rng.uniform(2, 12, S))
    lanes = [(int(serving[st]), st, int(rng.integers(1, 3)), 0.5, 1e9) for st in range(n_dcs, L)]
    lanes += [(a, b, 2, 0.8, 1e9) for a in range(n_dcs) for b in range(n_dcs) if a != b]
    if ring_transfers and n_stores > 2:
        for i in range(n_stores):
            a, b = n_dcs + i, n_dcs + (i + 1) % n_stores
            lanes += [(a, b, 1, 1.5, 1e9), (b, a, 1, 1.5, 1e9)]
    sku_supplier = np.arange(S) % n_suppliers
    inbound = []
    for d in range(n_dcs):
        sku = np.flatnonzero(rng.random(S) < 0.3)
        if len(sku):
            qty = np.maximum(1, rng.poisson(on_hand[d, sku] + 5)).astype(np.int64)
            # one open PO per supplier
            for v in range(n_suppliers):
                m = sku_supplier[sku] == v
                if m.any():
                    inbound.append(
                        InboundShipment("purchase", v, d, int(rng.integers(1, 8)), sku[m], qty[m])
                    )
    snap = tiny_snapshot(
        n_dcs=n_dcs,
        n_stores=n_stores,
        n_skus=S,
        horizon=horizon,
        on_hand=on_hand.tolist(),
        demand=fc.tolist(),
        lanes=lanes,
        serving_dc=serving.tolist(),
        inbound=inbound,
    )
    price = np.round(rng.lognormal(3.0, 0.8, S), 2) + 1.0
    cost = price * rng.uniform(0.5, 0.75, S)
    volume = fc[:, n_dcs:].sum(axis=(1, 2)).mean()
    from dataclasses import replace

    return replace(
        snap,
        sku_supplier=sku_supplier.astype(np.int64),
        supplier_ids=tuple(f"V{v}" for v in range(n_suppliers)),
        lead_time_mean=rng.integers(4, 11, n_suppliers).astype(np.float64),
        lead_time_sd=rng.uniform(0.5, 2.0, n_suppliers),
        expedite_lead_time=np.full(n_suppliers, 2, np.int64),
        supplier_capacity=np.full(n_suppliers, 1e9),
        moq=np.zeros(n_suppliers),
        fill_rate=rng.uniform(0.93, 0.995, n_suppliers),
        dc_throughput=np.full(n_dcs, throughput_factor * volume / n_dcs),
        price=price,
        unit_cost=cost,
        holding_cost=cost * 0.25 / 365,
        lost_sale_cost=(price - cost) + 0.5 * price,
        expedite_premium=0.3 * cost,
    )
