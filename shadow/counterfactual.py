"""Counterfactual replay of a shadow period in the twin: what the ERP did vs what the policy
recommended, on the same demand (the sales that actually happened, replayed exactly).

Both runs start from the ERP's state at the end of the day before the period (on hand and open
purchase orders due on their planned dates) on a network built from the ERP (the snapshot's
locations, lanes, suppliers with their planned lead times as fixed lead times, fill rate 1).
The ``erp-actual`` run replays the purchases and transfers the ERP really made, on the day they
were placed, arriving when the ERP received them (the last receipt of each line, the share
received; a line not received by the period's end only matters after it and is left out).
Both runs see the same supplier behaviour (common random numbers): on a day the ERP ordered
from a supplier, the policy's orders to it take the ERP's actual lead time and fill too; on
other days, the planned lead time. The policy run calls the same policy object the shadow
runner uses, every day.
Replayed demand is the ERP's recorded sales (censored by the ERP's own stock-outs: where the
ERP ran out, true demand was higher — so the policy's lost sales are, if anything, understated).
The twin's forecast for the policy is built from the ERP's trailing sales before the period.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from promotwin.arrays import UNLIMITED
from promotwin.policies import supply
from promotwin.policies.contract import ActionKind, Plan, PlanBuilder, PlanningSnapshot, Policy
from promotwin.policies.registry import make_policy
from promotwin.scenarios.schema import Scenario
from promotwin.shadow.erpdata import ErpActions
from promotwin.shadow.snapshot import BuiltSnapshot, SnapshotOptions
from promotwin.twin.execution import SupplierOutcomes
from promotwin.twin.kpis import compute_kpis
from promotwin.twin.model import Twin
from promotwin.twin.run import daily_frame

# a store's (supplied directly, replenished by its DC) flags -> its scenario ``supplied_by``
SUPPLIED_BY = {(True, False): "supplier", (True, True): "both"}

KPI_KEYS = (
    "demand_units",
    "sold_units",
    "fill_rate",
    "lost_sales_units",
    "lost_sales_value",
    "stockout_days",
    "avg_inventory_value",
    "holding_cost",
    "transport_cost",
    "ordering_cost",
    "lost_sale_cost",
    "total_cost",
    "purchased_units",
    "gross_margin",
)


@dataclass
class ReplayActionsPolicy:
    """Replays the ERP's actual orders: ``orders[day]`` lists (kind, origin, dest, sku, qty)."""

    orders: dict[int, list[tuple[int, int, int, int, int]]]
    unit_cost: np.ndarray
    name: str = "erp-actual"
    horizon_days: int = 1

    def decide(self, s: PlanningSnapshot) -> Plan:
        plan = PlanBuilder(self.name)
        for kind, o, d, k, q in self.orders.get(s.day, []):
            cost = self.unit_cost[k] if kind == ActionKind.PURCHASE else 0.0
            plan.add(ActionKind(kind), o, d, k, q, cost, 1.0, "what the ERP did")
        return plan.build()


@dataclass
class Receipts:
    """What the ERP's suppliers actually did with the orders placed in the period: per (twin
    supplier id, order day) the days until the goods arrived and the share that arrived."""

    lag_days: dict[tuple[str, int], float] = field(default_factory=dict)  # unit-weighted
    ordered: dict[tuple[str, int], float] = field(default_factory=dict)
    received: dict[tuple[str, int], float] = field(default_factory=dict)
    lags: dict[tuple[str, int], set[int]] = field(default_factory=dict)

    def add(self, supplier: str, day: int, qty: float, lag: int, received: float) -> None:
        key = (supplier, day)
        before = self.ordered.get(key, 0.0)
        self.ordered[key] = before + qty
        mean = self.lag_days.get(key, 0.0)
        self.lag_days[key] = mean + (lag - mean) * qty / max(before + qty, 1e-9)
        self.received[key] = self.received.get(key, 0.0) + received
        self.lags.setdefault(key, set()).add(lag)


@dataclass
class CounterfactualResult:
    start: dt.date
    end: dt.date
    kpis: dict[str, dict[str, float]]  # run name -> KPIs
    notes: list[str] = field(default_factory=list)
    receipts: Receipts = field(default_factory=Receipts)

    def table(self) -> pd.DataFrame:
        """KPI per run and the policy-minus-ERP difference."""
        erp, pol = self.kpis["erp-actual"], self.kpis["policy"]
        rows = [
            {
                "kpi": k,
                "erp_actual": erp.get(k, np.nan),
                "policy": pol.get(k, np.nan),
                "difference": pol.get(k, np.nan) - erp.get(k, np.nan),
            }
            for k in KPI_KEYS
        ]
        return pd.DataFrame(rows)


def scenario_from_snapshot(
    built: BuiltSnapshot,
    categories: dict[str, str],
    days: int,
    start: dt.date,
    options: SnapshotOptions | None = None,
) -> Scenario:
    """A twin scenario with the ERP's network: DCs, stores, lanes, suppliers, SKUs."""
    opt = options or SnapshotOptions()
    s = built.snapshot
    nd = s.n_dcs
    hist = s.history_mean
    store_rate = hist[nd:]
    baseline = store_rate.mean(axis=0) if len(store_rate) else hist.mean(axis=0)
    totals = store_rate.sum(axis=1)
    size = totals / max(float(totals.mean()) if len(totals) else 1.0, 1e-9)
    ecom = np.divide(
        hist[:nd].sum(axis=0),
        store_rate.sum(axis=0),
        out=np.zeros(s.n_skus),
        where=store_rate.sum(axis=0) > 0,
    )
    used_suppliers = sorted(set(s.sku_supplier.tolist()))
    direct, replenished = supply.direct(s), supply.dc_replenished(s)
    raw: dict[str, Any] = {
        "name": "shadow-counterfactual",
        "description": f"ERP network from {built.snapshot.date}",
        "start_date": start,
        "horizon_days": days,
        "dcs": [
            {
                "id": s.location_ids[d],
                "region": "erp",
                "throughput": UNLIMITED,
                "serves": [
                    s.location_ids[i]
                    for i in range(nd, s.n_locations)
                    if s.serving_dc[i] == d and replenished[i]
                ],
            }
            for d in range(nd)
        ],
        "stores": [
            {
                "id": s.location_ids[i],
                "region": "erp",
                "channels": ["walk_in"],
                "pickup_share": 0.0,
                "size": float(max(size[i - nd], 0.01)),
                **({"supplied_by": SUPPLIED_BY[(direct[i], replenished[i])]} if direct[i] else {}),
            }
            for i in range(nd, s.n_locations)
        ],
        "suppliers": [
            {
                "id": s.supplier_ids[v],
                "lead_time": {
                    "distribution": "fixed",
                    "mean": float(max(s.lead_time_mean[v], 1)),
                    "min": 1,
                },
                "fill_rate": 1.0,
                "expedite_lead_time": int(s.expedite_lead_time[v]),
            }
            for v in used_suppliers
        ],
        "lanes": [
            {"origin": o, "destination": d, "transit_days": int(t), "cost_per_unit": float(c)}
            for o, d, t, c in zip(
                s.lanes["origin"],
                s.lanes["destination"],
                s.lanes["transit_days"],
                s.lanes["cost_per_unit"],
                strict=True,
            )
        ],
        "skus": [
            {
                "id": k,
                "category": categories.get(k, "") or "uncategorised",
                "price": float(max(s.price[i], 0.01)),
                "unit_cost": float(min(max(s.unit_cost[i], 0.01), max(s.price[i], 0.01))),
                "supplier": s.supplier_ids[s.sku_supplier[i]],
                "holding_rate": opt.holding_rate,
                "baseline": float(baseline[i]),
                "ecommerce_share": float(min(ecom[i], 1.0)),
            }
            for i, k in enumerate(s.sku_ids)
        ],
        "demand": {"dispersion": opt.dispersion, "weekday": [1.0] * 7, "forecast_error": 0.0},
        # opening stock is the ERP's, set on the twin directly (not days of baseline demand)
        "initial_inventory": {"store_days": 0.0, "dc_days": 0.0},
        "costs": {
            "lost_sale_penalty": opt.lost_sale_penalty,
            "expedite_premium": opt.expedite_premium,
        },
    }
    return Scenario.model_validate(raw)


def _receipt(r: dict[Any, Any], day: int, days: int, planned: float) -> tuple[int, float] | None:
    """(days from order to arrival, units arrived) of one ERP purchase line: its last receipt;
    None if nothing of it arrived within the period (it only matters after it). With no
    receipt data (an older snapshot folder): its planned lead time, all of it."""
    received_qty = r.get("received_qty")
    if received_qty is None or not np.isfinite(float(received_qty)):
        return max(int(round(planned)), 1), float(r["qty"])
    got = r.get("received_date")
    if got is None or pd.isna(got) or float(received_qty) <= 0:
        return None
    lag = (pd.Timestamp(got).date() - r["order_date"]).days
    if day + lag >= days:
        return None
    # received the day it was ordered: on the shelf for the next day's sales
    return max(lag, 1), float(received_qty)


def _replay_orders(
    built: BuiltSnapshot,
    actions: ErpActions,
    start: dt.date,
    days: int,
    notes: list[str],
    receipts: Receipts | None = None,
) -> dict[int, list[tuple[int, int, int, int, int]]]:
    s = built.snapshot
    li = {e: i for i, e in enumerate(built.location_erp)}
    si = {e: i for i, e in enumerate(built.sku_erp)}
    orders: dict[int, list[tuple[int, int, int, int, int]]] = {}
    skipped = to_stores = late = 0
    direct = supply.direct(s)
    for r in actions["purchases"].to_dict("records"):
        day = (r["order_date"] - start).days if isinstance(r["order_date"], dt.date) else -1
        d, k = li.get(r["destination"]), si.get(r["product"])
        if d is None or k is None or not 0 <= day < days:
            skipped += 1
            continue
        # purchases go to a DC, or to a store the supplier delivers to directly
        if d >= s.n_dcs and not direct[d]:
            to_stores += 1
            continue
        q = int(round(r["qty"]))
        v = int(s.sku_supplier[k])
        if receipts is not None:
            receipt = _receipt(r, day, days, float(s.lead_time_mean[v]))
            if receipt is None:  # arrives after the period: no effect on it (costs on receipt)
                late += 1
                continue
            receipts.add(s.supplier_ids[v], day, float(q), *receipt)
        orders.setdefault(day, []).append((ActionKind.PURCHASE, v, d, k, q))
    lanes = set(zip(s.lanes["o"].tolist(), s.lanes["d"].tolist(), strict=True))
    for r in actions["transfers"].to_dict("records"):
        day = (r["date"] - start).days if isinstance(r["date"], dt.date) else -1
        o, d, k = li.get(r["origin"]), li.get(r["destination"]), si.get(r["product"])
        if o is None or d is None or k is None or (o, d) not in lanes or not 0 <= day < days:
            skipped += 1
            continue
        kind = ActionKind.SHIPMENT if s.serving_dc[d] == o and d >= s.n_dcs else ActionKind.TRANSFER
        orders.setdefault(day, []).append((kind, o, d, k, int(round(r["qty"]))))
    if skipped:
        notes.append(f"{skipped} ERP action line(s) outside the period or network not replayed")
    if late:
        notes.append(
            f"{late} ERP purchase line(s) not received by the period's end: they arrive after it"
        )
    if to_stores:
        notes.append(
            f"{to_stores} ERP purchase line(s) straight to stores the layout has only their DC "
            "supply not replayed: set those stores' supplied_by to 'both' or 'supplier'"
        )
    return orders


def with_receipts(
    outcomes: SupplierOutcomes, suppliers: pd.Index, got: Receipts
) -> SupplierOutcomes:
    """The twin's supplier outcomes with the ERP's actual ones on the days the ERP ordered:
    an order placed that day to that supplier arrives after the ERP's lag with the share the
    ERP received (the other days keep the planned lead time and full fill)."""
    lead, fill = outcomes.lead_days.copy(), outcomes.fill_fraction.copy()
    row = {sid: i for i, sid in enumerate(suppliers)}
    for (sid, day), mean_lag in got.lag_days.items():
        v = row[sid]
        lead[v, day] = int(round(mean_lag))
        fill[v, day] = min(got.received[sid, day] / max(got.ordered[sid, day], 1e-9), 1.0)
    return dataclasses.replace(outcomes, lead_days=lead, fill_fraction=fill)


def _run(
    scenario: Scenario,
    policy: Policy,
    built: BuiltSnapshot,
    history: pd.DataFrame,
    seed: int,
    receipts: Receipts,
) -> dict[str, float]:
    twin = Twin(scenario, policy, seed=seed, history=history)
    twin.suppliers = with_receipts(twin.suppliers, twin.net.suppliers.index, receipts)
    s = built.snapshot
    # open orders arrive on their planned day; due day 1 = the period's first day (twin day 0)
    twin.start_from(s.on_hand, s.inbound, s.history_mean, day_offset=1)
    twin.run()
    ledger = twin.ledger.frame()
    daily = daily_frame(twin.daily, list(twin.net.locations.index))
    return compute_kpis(ledger, daily, twin.exceptions, 0)


def counterfactual(
    built: BuiltSnapshot,
    actions: ErpActions,
    sales: pd.DataFrame,
    policy: str | Policy,
    categories: dict[str, str] | None = None,
    options: SnapshotOptions | None = None,
    seed: int = 0,
) -> CounterfactualResult:
    """Replay ``actions.start .. actions.end`` twice from ``built`` (the ERP state at the end of
    the day before ``start``): the ERP's actual actions vs the policy; same replayed ``sales``."""
    start, end = actions.start, actions.end
    days = (end - start).days + 1
    if days < 1:
        raise ValueError(f"the period {start}..{end} is empty")
    if built.snapshot.date != start - dt.timedelta(days=1):
        raise ValueError(
            f"the snapshot is as of {built.snapshot.date}; the counterfactual needs the state at "
            f"the end of {start - dt.timedelta(days=1)}, the day before the period"
        )
    if built.snapshot.n_locations == built.snapshot.n_dcs:
        raise ValueError(
            "no store in the layout: the counterfactual replays store demand served by a DC; "
            "give warehouses their roles with `twin shadow layout --import`"
        )
    scenario = scenario_from_snapshot(built, categories or {}, days, start, options)
    known_l = set(built.snapshot.location_ids)
    known_k = set(built.snapshot.sku_ids)
    dates = pd.to_datetime(sales["date"]).dt.date
    history = sales[
        (dates >= start)
        & (dates <= end)
        & sales["location"].isin(known_l)
        & sales["sku"].isin(known_k)
    ].reset_index(drop=True)
    notes: list[str] = []
    receipts = Receipts()
    orders = _replay_orders(built, actions, start, days, notes, receipts)
    mixed = sum(len(lags) > 1 for lags in receipts.lags.values())
    if mixed:
        notes.append(
            f"{mixed} supplier order day(s) whose lines arrived on different days: replayed at "
            "their unit-weighted mean lead time"
        )
    erp_policy = ReplayActionsPolicy(orders, built.snapshot.unit_cost)
    pol = make_policy(policy) if isinstance(policy, str) else policy
    kpis = {
        "erp-actual": _run(scenario, erp_policy, built, history, seed, receipts),
        "policy": _run(scenario, pol, built, history, seed, receipts),
    }
    return CounterfactualResult(start, end, kpis, notes, receipts)
