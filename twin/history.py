"""What happened, seen from outside a run: a pre-season sales history for a scenario (what the
retailer's ERP would hold before the season), and the inputs of the hindsight bound.

Earlier seasons are simulated under a named policy, with earlier promotions on the same SKUs
(varied depth, display and feature, so a fit can tell them apart) and the persistent part of the
hidden truth (the true elasticity, the unplanned halo). This season's cell deviations are not in
it: they are the surprise. What is recorded is **sales**, not demand: a cell that ran out sold
its stock, and is flagged ``stockout`` (its on hand hit zero that day, so demand went unmet).

Columns: ``date, location, sku, channel, units, stockout`` and the promotion columns the fit
reads (``price, regular_price, depth, display, feature, promo, category``). A row is written
for every cell-day that sold, was promoted or stocked out; a missing row is a day without
sales or promotion (the fit's ``fill_zeros``).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from promotwin.demand.model import DemandModel
from promotwin.policies.contract import Policy
from promotwin.policies.hindsight import HindsightInputs
from promotwin.scenarios.network import compile_network
from promotwin.scenarios.schema import Disruptions, Promotion, Scenario
from promotwin.twin.ledger import Kind
from promotwin.twin.run import simulate

PROMO_EVERY_WEEKS = 6  # an earlier promotion on the season's SKUs about every six weeks
DEPTHS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
CHANNELS = ("walk_in", "pickup", "ecommerce")


def earlier_promotions(
    scenario: Scenario, start: dt.date, days: int, rng: np.random.Generator
) -> tuple[Promotion, ...]:
    """The season's promotions run earlier: same SKUs, locations and channels, every ~6 weeks,
    with a drawn depth, display and feature (no campaign waves), all before the season."""
    out: list[Promotion] = []
    for p in scenario.promotions:
        length = min((p.end - p.start).days + 1, 14)
        first = int(rng.integers(0, 7 * PROMO_EVERY_WEEKS))
        for n, offset in enumerate(range(first, days - length, 7 * PROMO_EVERY_WEEKS)):
            begin = start + dt.timedelta(days=offset)
            out.append(
                p.model_copy(
                    update={
                        "id": f"{p.id}-past{n + 1}",
                        "start": begin,
                        "end": begin + dt.timedelta(days=length - 1),
                        "depth": float(rng.choice(DEPTHS)),
                        "display": bool(rng.random() < 0.6),
                        "feature": bool(rng.random() < 0.5),
                        "ecommerce_waves": (),
                        "planned_uplift": None,
                    }
                )
            )
    return tuple(out)


def pre_season(scenario: Scenario, weeks: int, seed: int) -> Scenario:
    """The ``weeks`` before ``scenario`` starts, with earlier promotions and no disruptions."""
    days = 7 * weeks
    start = scenario.start_date - dt.timedelta(days=days)
    rng = np.random.default_rng([seed, 0x68697374])  # "hist": its own stream
    truth = scenario.demand.truth.model_copy(update={"uplift_deviations": ()})
    return scenario.model_copy(
        update={
            "name": f"{scenario.name}-history",
            "start_date": start,
            "horizon_days": days,
            "warmup_days": 0,
            "promotions": earlier_promotions(scenario, start, days, rng),
            "disruptions": Disruptions(),
            "demand": scenario.demand.model_copy(update={"truth": truth}),
        }
    )


def sales_history(scenario: Scenario, weeks: int, policy: Policy, seed: int = 0) -> pd.DataFrame:
    """Simulate the pre-season under ``policy``; its sales in the canonical history format."""
    if weeks < 1:
        raise ValueError("--weeks must be at least 1")
    past = pre_season(scenario, weeks, seed)
    result = simulate(past, policy, seed=seed, ledger_detail="sku")
    net = compile_network(past)
    n_loc, n_sku, nd = net.n_locations, net.n_skus, net.n_dcs
    days = past.horizon_days
    led = result.ledger
    cell = (led["day"].to_numpy(np.int64) * n_loc + led["location"].to_numpy(np.int64)) * n_sku
    cell += led["sku"].to_numpy(np.int64)
    channel = led["channel"].to_numpy(np.int64)
    loc = led["location"].to_numpy(np.int64)
    # ship-from-store units are the DC's ecommerce demand: recorded on the DC's row
    sfs = (channel == 2) & (loc >= nd)
    dc_of = net.serving_dc[loc[sfs]]
    cell[sfs] += (dc_of - loc[sfs]) * n_sku
    units = np.zeros((3, days * n_loc * n_sku), np.int64)
    sale = (led["kind"] == int(Kind.SALE)).to_numpy()
    np.add.at(units, (channel[sale], cell[sale]), led["qty"].to_numpy(np.int64)[sale])
    lost = (led["kind"] == int(Kind.LOST)).to_numpy() & (led["qty"] > 0).to_numpy()
    stockout = np.zeros((3, days * n_loc * n_sku), bool)
    stockout[channel[lost], cell[lost]] = True
    stockout[:2] |= stockout[:2].any(axis=0)  # walk-in and pickup share the store's stock

    depth, display, feature = _promotion_columns(past)
    is_dc = np.tile(np.repeat(np.arange(n_loc) < nd, n_sku), days)
    frames = []
    for c, name in enumerate(CHANNELS):
        right_row = is_dc if name == "ecommerce" else ~is_dc
        promoted = (depth > 0) | display | feature
        keep = right_row & ((units[c] > 0) | stockout[c] | (promoted & (name != "pickup")))
        idx = np.flatnonzero(keep)
        day, rest = np.divmod(idx, n_loc * n_sku)
        li, si = np.divmod(rest, n_sku)
        regular = net.price[si]
        frames.append(
            pd.DataFrame(
                {
                    "date": pd.Timestamp(past.start_date) + pd.to_timedelta(day, unit="D"),
                    "location": np.asarray(net.locations.index, dtype=object)[li],
                    "sku": np.asarray(net.skus.index, dtype=object)[si],
                    "channel": name,
                    "units": units[c, idx],
                    "stockout": stockout[c, idx].astype(np.int64),
                    "price": np.round(regular * (1 - depth[idx]), 2),
                    "regular_price": regular,
                    "depth": depth[idx],
                    "display": display[idx].astype(np.int64),
                    "feature": feature[idx].astype(np.int64),
                    "promo": promoted[idx].astype(np.int64),
                    "category": net.skus["category"].to_numpy(str)[si],
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["date", "location", "sku", "channel"], ignore_index=True)


def _promotion_columns(
    scenario: Scenario,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth, display and feature of every day x location x SKU cell (flat, day-major)."""
    model = DemandModel(scenario, compile_network(scenario), view="plan")
    days = scenario.horizon_days
    shape = (days, *model.base.shape)
    depth = np.zeros(shape)
    display = np.zeros(shape, bool)
    feature = np.zeros(shape, bool)
    for pc in model.promotions:
        sl = slice(max(pc.start_day, 0), min(pc.end_day, days - 1) + 1)
        depth[sl] = np.where(pc.cells, np.maximum(depth[sl], pc.promotion.depth), depth[sl])
        display[sl] |= pc.cells & pc.promotion.display
        feature[sl] |= pc.cells & pc.promotion.feature
    return depth.ravel(), display.ravel(), feature.ravel()


def hindsight_inputs(scenario: Scenario, seed: int, days: int | None = None) -> HindsightInputs:
    """The perfect-information LP's inputs for a run of ``scenario`` with ``seed``: the demand
    every policy meets in that run (the twin's own demand stream), its opening stock, lanes,
    the earliest supplier arrival and each cell-day's lost-sale cost."""
    from promotwin.policies.heuristics import OrderPointPolicy
    from promotwin.twin.model import Twin

    twin = Twin(scenario, OrderPointPolicy(), seed, days=days)
    net, n_days = twin.net, twin.days
    demand = np.stack([twin.demand(day).by_location for day in range(n_days)])
    sup = net.suppliers
    order_day = np.arange(n_days)[None, :]
    earliest = np.minimum(
        (order_day + twin.suppliers.lead_days).min(axis=1),
        sup["expedite_lead_time"].to_numpy(np.int64),
    )
    depth = np.zeros((n_days, net.n_locations, net.n_skus))
    for pc in twin.model.promotions:
        sl = slice(pc.start_day, min(pc.end_day, n_days - 1) + 1)
        depth[sl] = np.where(pc.cells, np.maximum(depth[sl], pc.promotion.depth), depth[sl])
    price = net.price * (1 - depth)
    lost_cost = (
        np.maximum(price - net.unit_cost, 0.0) + scenario.costs.lost_sale_penalty * net.price
    )
    lanes = net.lanes
    sfs = net.locations["ship_from_store"].to_numpy(bool)
    if scenario.fulfilment.ecommerce != "dc_then_store":
        sfs = np.zeros_like(sfs)
    return HindsightInputs(
        demand=demand,
        opening=twin.on_hand.copy(),
        n_dcs=net.n_dcs,
        serving_dc=net.serving_dc,
        ship_from_store=sfs,
        lane_o=lanes["o"].to_numpy(np.int64),
        lane_d=lanes["d"].to_numpy(np.int64),
        lane_transit=lanes["transit_days"].to_numpy(np.int64),
        lane_cost=lanes["cost_per_unit"].to_numpy(np.float64),
        first_arrival=np.maximum(earliest, 1)[net.sku_supplier],
        holding_cost=net.holding_cost_per_day,
        lost_sale_cost=lost_cost,
        warmup_days=scenario.warmup_days,
    )
