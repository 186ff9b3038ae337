"""Build the policies' ``PlanningSnapshot`` from canonical ERP tables, mirroring ``Twin.snapshot``.

Semantics (same as the twin): the snapshot is taken at the end of ``as_of`` (day 0), after that
day's sales; locations are DCs first then stores (each group sorted by twin id), SKUs sorted by
twin id; ``forecast_mean[h]`` is the forecast for day ``h + 1``.

What an ERP cannot supply is filled as follows (``SnapshotOptions`` holds the constants):

- ``history_mean``: units sold per day over the last ``history_days`` days (done customer moves),
  store rows from store sales, DC rows from ecommerce sales (as in the twin).
- ``forecast_mean``: the ERP has no forecast with uncertainty, so ``history_mean`` repeated over
  the horizon; ``baseline_mean`` is ``history_mean`` too; ``forecast_dispersion`` an option.
- ``promotions``: none (Tryton's base modules have no promotions); a snapshot folder may add none
  either — the contract's promotion fields are empty.
- Suppliers: one twin supplier per ERP supplier; if its products have different lead times, one
  per (supplier, lead time) (``SUP@5d``), so every SKU keeps its own planned lead time.
  ``lead_time_sd`` 0, fill rate 1, capacity and DC throughput unlimited (1e9), MOQ 0, expedite lead
  time ``ceil(lead x expedite_factor)``.
- A product with no supplier gets the ``(no supplier)`` placeholder (default lead time) and is
  reported; the runner drops purchases for it (nobody to order from).
- Costs: holding ``unit_cost x holding_rate / 365``, lost sale ``margin + penalty x price``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from promotwin.policies.contract import BoolArray, InboundShipment, PlanningSnapshot
from promotwin.shadow.erpdata import ErpState
from promotwin.shadow.mapping import IdMapping

NO_SUPPLIER = "(no supplier)"
UNLIMITED = 1e9


@dataclass(frozen=True)
class SnapshotOptions:
    horizon_days: int = 21
    dispersion: float = 4.0
    default_transit_days: int = 1
    default_lead_time_days: float = 7.0
    expedite_factor: float = 0.5
    holding_rate: float = 0.25
    lost_sale_penalty: float = 0.5
    expedite_premium: float = 0.3
    lane_cost: float = 0.5


@dataclass(frozen=True)
class BuiltSnapshot:
    """A snapshot plus what is needed to translate its indices back to the ERP."""

    snapshot: PlanningSnapshot
    issues: tuple[str, ...]
    location_erp: tuple[str, ...]  # ERP id per location index
    sku_erp: tuple[str, ...]  # ERP id per SKU index
    supplier_erp: tuple[str, ...]  # ERP supplier id per twin supplier index ("" = none)
    no_supplier: BoolArray  # [S] SKUs without a supplier
    history: pd.DataFrame  # sales in the canonical replay format, twin ids
    digest: str


def snapshot_digest(s: PlanningSnapshot) -> str:
    """Content hash of every array and id list of a snapshot."""
    h = hashlib.sha256()
    for name in ("location_ids", "sku_ids", "supplier_ids"):
        h.update("|".join(getattr(s, name)).encode())
    h.update(str(s.date).encode())
    for name in [
        "serving_dc",
        "on_hand",
        "in_transit",
        "on_order",
        "forecast_mean",
        "history_mean",
        "baseline_mean",
        "sku_supplier",
        "lead_time_mean",
        "lead_time_sd",
        "expedite_lead_time",
        "supplier_capacity",
        "moq",
        "fill_rate",
        "dc_throughput",
        "price",
        "unit_cost",
        "holding_cost",
        "lost_sale_cost",
        "expedite_premium",
    ]:
        h.update(np.ascontiguousarray(getattr(s, name)).tobytes())
    h.update(s.lanes.to_csv(index=False).encode())
    for sh in s.inbound:
        h.update(f"{sh.kind},{sh.origin},{sh.destination},{sh.due_day}".encode())
        h.update(sh.sku.tobytes() + sh.qty.tobytes())
    return h.hexdigest()[:16]


def _index(ids: list[str]) -> dict[str, int]:
    return {x: i for i, x in enumerate(ids)}


def build_snapshot(
    state: ErpState,
    mapping: IdMapping,
    options: SnapshotOptions | None = None,
    add_new: bool = False,
) -> BuiltSnapshot:
    """Translate the ERP tables through the mapping into a ``PlanningSnapshot``."""
    opt = options or SnapshotOptions()
    issues = list(state.notes) + mapping.resolve(state.tables, add_new)
    as_of = state.as_of

    # locations: mapped DCs, then mapped stores whose DC is mapped
    locs = state["locations"]
    loc_twin = {e: mapping.twin_id("location", e) for e in locs["erp_id"]}
    dcs = sorted(
        (loc_twin[e], e)
        for e, k in zip(locs["erp_id"], locs["kind"], strict=True)
        if k == "dc" and loc_twin[e] is not None
    )
    if not dcs:
        raise ValueError(
            f"{state.source}: no DC among the ERP's locations (or none mapped); a DC is a "
            "warehouse that no other warehouse provisions"
        )
    dc_erp = {e for _, e in dcs}
    stores = []
    for e, k, dc in zip(locs["erp_id"], locs["kind"], locs["serving_dc"], strict=True):
        if k != "store" or loc_twin[e] is None:
            continue
        if dc not in dc_erp:
            issues.append(f"store {loc_twin[e]!r} left out: its serving DC {dc!r} is not mapped")
            continue
        stores.append((loc_twin[e], e))
    stores.sort()
    location_erp = [e for _, e in dcs] + [e for _, e in stores]
    location_ids = [t for t, _ in dcs] + [t for t, _ in stores]
    li = _index(location_erp)
    n_dcs, n_loc = len(dcs), len(location_erp)
    serving = np.arange(n_loc, dtype=np.int64)
    dc_of = dict(zip(locs["erp_id"], locs["serving_dc"], strict=True))
    for i in range(n_dcs, n_loc):
        serving[i] = li[dc_of[location_erp[i]]]

    # products
    prods = state["products"]
    mapped = [
        (mapping.twin_id("product", e), e, i)
        for i, e in enumerate(prods["erp_id"])
        if mapping.twin_id("product", e) is not None
    ]
    mapped.sort()
    sku_ids = [t for t, _, _ in mapped]
    sku_erp = [e for _, e, _ in mapped]
    rows = [i for _, _, i in mapped]
    si = _index(sku_erp)
    n_sku = len(sku_erp)
    price = prods["price"].to_numpy(np.float64)[rows]
    unit_cost = prods["unit_cost"].to_numpy(np.float64)[rows]
    bad_price = ~(np.isfinite(price) & (price > 0))
    if bad_price.any():
        issues.append(f"{int(bad_price.sum())} product(s) with no selling price: price set to cost")
        price = np.where(bad_price, unit_cost, price)
    unit_cost = np.where(np.isfinite(unit_cost), unit_cost, 0.0)

    # suppliers: main supplier per SKU (lowest sequence, then shortest lead time)
    ps = state["product_suppliers"]
    ps = ps[ps["product"].isin(si)].sort_values(["product", "sequence", "lead_time_days"])
    main = ps.drop_duplicates("product")
    lead_of = dict(zip(main["product"], main["lead_time_days"], strict=True))
    party_of = dict(zip(main["product"], main["supplier"], strict=True))
    leads_by_party: dict[str, set[float]] = {}
    for p, lt in zip(main["supplier"], main["lead_time_days"], strict=True):
        leads_by_party.setdefault(p, set()).add(float(lt))
    sup_names = {
        e: mapping.twin_id("supplier", e) or f"erp-supplier-{e}"
        for e in state["suppliers"]["erp_id"]
    }
    keys: dict[tuple[str, float], int] = {}
    supplier_ids: list[str] = []
    supplier_erp: list[str] = []
    lead_mean: list[float] = []
    sku_supplier = np.zeros(n_sku, np.int64)
    no_supplier = np.zeros(n_sku, bool)
    for k, e in enumerate(sku_erp):
        if e in party_of:
            party, lead = party_of[e], float(lead_of[e])
        else:
            party, lead = "", opt.default_lead_time_days
            no_supplier[k] = True
        key = (party, lead)
        if key not in keys:
            keys[key] = len(supplier_ids)
            base = sup_names.get(party, f"erp-supplier-{party}") if party else NO_SUPPLIER
            many = party and len(leads_by_party.get(party, ())) > 1
            supplier_ids.append(f"{base}@{lead:g}d" if many else base)
            supplier_erp.append(party)
            lead_mean.append(lead)
        sku_supplier[k] = keys[key]
    if no_supplier.any():
        codes = [sku_ids[k] for k in np.nonzero(no_supplier)[0][:10]]
        issues.append(
            f"{int(no_supplier.sum())} product(s) with no supplier: {codes}; their purchases "
            "are not recommended (add a supplier in the ERP)"
        )
    lead = np.asarray(lead_mean, np.float64)

    # stock
    on_hand = np.zeros((n_loc, n_sku), np.int64)
    stock = state["stock"]
    keep = stock["location"].isin(li) & stock["product"].isin(si)
    st = stock[keep]
    if len(st):
        qty = np.rint(st["on_hand"].to_numpy(np.float64)).astype(np.int64)
        if (qty < 0).any():
            issues.append(
                f"{int((qty < 0).sum())} cell(s) with negative stock in the ERP: read as 0"
            )
        on_hand[st["location"].map(li).to_numpy(), st["product"].map(si).to_numpy()] = np.maximum(
            qty, 0
        )

    # inbound: open purchases (on order) and transfers (in transit)
    on_order = np.zeros((n_loc, n_sku), np.int64)
    in_transit = np.zeros((n_loc, n_sku), np.int64)
    inbound: list[InboundShipment] = []
    inb = state["inbound"]
    inb = inb[inb["destination"].isin(li) & inb["product"].isin(si)]
    if len(inb):
        d_idx = inb["destination"].map(li).to_numpy(np.int64)
        k_idx = inb["product"].map(si).to_numpy(np.int64)
        q = np.rint(inb["qty"].to_numpy(np.float64)).astype(np.int64)
        is_po = (inb["kind"] == "purchase").to_numpy()
        origin = np.empty(len(inb), np.int64)
        for r, (kind, o, k) in enumerate(zip(inb["kind"], inb["origin"], k_idx, strict=True)):
            if kind == "purchase":
                variant = keys.get((o, float(lead[sku_supplier[k]])))
                origin[r] = variant if variant is not None else sku_supplier[k]
            else:
                origin[r] = li.get(o, serving[d_idx[r]])
        planned = [
            (p - as_of).days if isinstance(p, dt.date) else int(round(lead[sku_supplier[k]]))
            for p, k in zip(inb["planned_date"], k_idx, strict=True)
        ]
        due = np.asarray(planned, np.int64)
        np.add.at(on_order, (d_idx[is_po], k_idx[is_po]), q[is_po])
        np.add.at(in_transit, (d_idx[~is_po], k_idx[~is_po]), q[~is_po])
        frame = pd.DataFrame({"po": is_po, "o": origin, "d": d_idx, "due": due, "k": k_idx, "q": q})
        for (po, o, d, due_day), g in frame.groupby(["po", "o", "d", "due"], sort=True):
            inbound.append(
                InboundShipment(
                    "purchase" if po else "transfer",
                    int(o),
                    int(d),
                    int(due_day),
                    g["k"].to_numpy(np.int64),
                    g["q"].to_numpy(np.int64),
                )
            )

    # sales history -> trailing average daily sales
    history = sales_history(state, mapping)
    first = as_of - dt.timedelta(days=state.history_days - 1)
    window = history[(history["date"] >= first) & (history["date"] <= as_of)]
    sold = np.zeros((n_loc, n_sku))
    li_twin = _index(location_ids)
    si_twin = _index(sku_ids)
    window = window[window["location"].isin(li_twin) & window["sku"].isin(si_twin)]
    if len(window):
        w_loc = window["location"].map(li_twin).to_numpy(np.int64)
        w_loc = np.where((window["channel"] == "ecommerce").to_numpy(), serving[w_loc], w_loc)
        np.add.at(sold, (w_loc, window["sku"].map(si_twin).to_numpy()), window["units"])
    history_mean = sold / state.history_days
    forecast = np.ascontiguousarray(np.broadcast_to(history_mean, (opt.horizon_days, n_loc, n_sku)))

    # lanes: the ERP's warehouse-to-warehouse lead times, and a default lane to every store
    lane_rows = {}
    for o, d, t in zip(
        *(state["lanes"][c] for c in ("origin", "destination", "transit_days")), strict=True
    ):
        if o in li and d in li and o != d:
            lane_rows[(li[o], li[d])] = max(int(t), 1)
    for i in range(n_dcs, n_loc):
        lane_rows.setdefault((int(serving[i]), i), opt.default_transit_days)
    pairs = sorted(lane_rows)
    lanes = pd.DataFrame(
        {
            "origin": [location_ids[o] for o, _ in pairs],
            "destination": [location_ids[d] for _, d in pairs],
            "o": np.asarray([o for o, _ in pairs], np.int64),
            "d": np.asarray([d for _, d in pairs], np.int64),
            "transit_days": np.asarray([lane_rows[p] for p in pairs], np.int64),
            "cost_per_unit": np.full(len(pairs), opt.lane_cost),
            "capacity": np.full(len(pairs), UNLIMITED),
        }
    )

    snap = PlanningSnapshot(
        day=0,
        date=as_of,
        location_ids=tuple(location_ids),
        sku_ids=tuple(sku_ids),
        n_dcs=n_dcs,
        serving_dc=serving,
        on_hand=on_hand,
        in_transit=in_transit,
        on_order=on_order,
        inbound=tuple(inbound),
        forecast_mean=forecast,
        forecast_dispersion=opt.dispersion,
        history_mean=history_mean,
        baseline_mean=history_mean.copy(),
        promotions=pd.DataFrame(
            {
                "id": pd.Series(dtype=object),
                "start_day": pd.Series(dtype=np.int64),
                "end_day": pd.Series(dtype=np.int64),
                "depth": pd.Series(dtype=np.float64),
                "planned_uplift": pd.Series(dtype=np.float64),
            }
        ),
        promotion_cells={},
        sku_supplier=sku_supplier,
        supplier_ids=tuple(supplier_ids),
        lead_time_mean=lead,
        lead_time_sd=np.zeros(len(lead)),
        expedite_lead_time=np.maximum(np.ceil(lead * opt.expedite_factor), 1).astype(np.int64),
        supplier_capacity=np.full(len(lead), UNLIMITED),
        moq=np.zeros(len(lead)),
        fill_rate=np.ones(len(lead)),
        lanes=lanes,
        dc_throughput=np.full(n_dcs, UNLIMITED),
        price=price,
        unit_cost=unit_cost,
        holding_cost=unit_cost * opt.holding_rate / 365.0,
        lost_sale_cost=np.maximum(price - unit_cost, 0) + opt.lost_sale_penalty * price,
        expedite_premium=opt.expedite_premium * unit_cost,
        seed=0,
    )
    return BuiltSnapshot(
        snapshot=snap,
        issues=tuple(issues),
        location_erp=tuple(location_erp),
        sku_erp=tuple(sku_erp),
        supplier_erp=tuple(supplier_erp),
        no_supplier=no_supplier,
        history=history,
        digest=snapshot_digest(snap),
    )


def sales_history(state: ErpState, mapping: IdMapping) -> pd.DataFrame:
    """The ERP's sales in the canonical replay format (date, location, sku, channel, units)."""
    sales = state["sales"]
    loc = sales["location"].map(lambda e: mapping.twin_id("location", e))
    sku = sales["product"].map(lambda e: mapping.twin_id("product", e))
    ok = loc.notna() & sku.notna()
    out = pd.DataFrame(
        {
            "date": sales["date"][ok].to_numpy(object),
            "location": loc[ok].to_numpy(object),
            "sku": sku[ok].to_numpy(object),
            "channel": sales["channel"][ok].to_numpy(object),
            "units": np.rint(sales["units"][ok].to_numpy(np.float64)).astype(np.int64),
        }
    )
    return out.groupby(["date", "location", "sku", "channel"], as_index=False, sort=True)[
        "units"
    ].sum()
