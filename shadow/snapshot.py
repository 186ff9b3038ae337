"""Build the policies' ``PlanningSnapshot`` from canonical ERP tables, mirroring ``Twin.snapshot``.

Semantics (same as the twin): the snapshot is taken at the end of ``as_of`` (day 0), after that
day's sales; locations are DCs first then stores (each group sorted by twin id), SKUs sorted by
twin id; ``forecast_mean[h]`` is the forecast for day ``h + 1``.

What an ERP cannot supply is filled as follows (``SnapshotOptions`` holds the constants):

- ``history_mean``: units sold per day over the last ``history_days`` days (done customer moves),
  store rows from store sales, DC rows from ecommerce sales (as in the twin).
- ``forecast_mean``: the ERP has no forecast with uncertainty, so ``history_mean`` repeated over
  the horizon, or a fitted model's forecast (``options.forecast``, ``shadow.forecast``);
  ``baseline_mean`` is ``history_mean`` too; ``forecast_dispersion`` an option (or the model's).
- ``promotions``: none (Tryton's base modules have no promotions); a snapshot folder may add none
  either — the contract's promotion fields are empty.
- Suppliers: one twin supplier per ERP supplier; if its products have different lead times, one
  per (supplier, lead time) (``SUP@5d``), so every SKU keeps its own planned lead time.
  ``lead_time_sd`` 0, fill rate 1, capacity and DC throughput unlimited
  (``promotwin.arrays.UNLIMITED``), MOQ 0, expedite lead time ``ceil(lead x expedite_factor)``.
- A product with no supplier gets the ``(no supplier)`` placeholder (default lead time) and is
  reported; the runner drops purchases for it (nobody to order from).
- Unit cost: the product's cost price, else its main supplier's price list; neither is a
  ``cost-missing`` warning (the run is degraded) and reads as 0.
- Reservations: ``on_hand`` is what is available (ERP on hand less units promised to customer
  orders not yet shipped); ``committed`` holds the promised units.
- Costs: holding ``unit_cost x holding_rate / 365``, lost sale ``margin + penalty x price``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from promotwin.arrays import UNLIMITED
from promotwin.policies.contract import (
    BoolArray,
    FloatArray,
    InboundShipment,
    IntArray,
    PlanningSnapshot,
)
from promotwin.shadow.erpdata import ErpState
from promotwin.shadow.forecast import ModelForecast, model_forecast
from promotwin.shadow.mapping import IdMapping

NO_SUPPLIER = "(no supplier)"

# warnings whose inputs make the recommendations meaningless: the run is ``degraded``
DEGRADING = frozenset(
    {"ambiguous-warehouse", "no-stores", "no-sales-history", "all-forecasts-zero", "cost-missing"}
)


@dataclass(frozen=True)
class DataWarning:
    """A named finding about the ERP's data (``code``), with what to do about it."""

    code: str
    message: str

    @property
    def degrading(self) -> bool:
        return self.code in DEGRADING


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
    forecast: str = "average"  # or a model kind (shadow.forecast.FORECASTS)
    model_file: str | None = None  # loaded if it exists, else fitted on the ERP's sales and saved


@dataclass(frozen=True)
class BuiltSnapshot:
    """A snapshot plus what is needed to translate its indices back to the ERP."""

    snapshot: PlanningSnapshot
    warnings: tuple[DataWarning, ...]
    location_erp: tuple[str, ...]  # ERP id per location index
    sku_erp: tuple[str, ...]  # ERP id per SKU index
    supplier_erp: tuple[str, ...]  # ERP supplier id per twin supplier index ("" = none)
    no_supplier: BoolArray  # [S] SKUs without a supplier
    supplier_price: FloatArray  # [S] the main supplier's price list, NaN where it has none
    history: pd.DataFrame  # sales in the canonical replay format, twin ids
    digest: str
    model_file: str | None = None  # the forecast model fitted or loaded (None: the average)

    @property
    def issues(self) -> tuple[str, ...]:
        return tuple(w.message for w in self.warnings)


def snapshot_digest(s: PlanningSnapshot) -> str:
    """Content hash of every array and id list of a snapshot."""
    h = hashlib.sha256()
    for name in ("location_ids", "sku_ids", "supplier_ids"):
        h.update("|".join(getattr(s, name)).encode())
    h.update(str(s.date).encode())
    for name in [
        "serving_dc",
        "on_hand",
        "committed",
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
    for name in ("direct", "dc_replenished"):  # only where some store buys direct
        if getattr(s, name) is not None:
            h.update(np.ascontiguousarray(getattr(s, name)).tobytes())
    h.update(s.lanes.to_csv(index=False).encode())
    for sh in s.inbound:
        h.update(f"{sh.kind},{sh.origin},{sh.destination},{sh.due_day}".encode())
        h.update(sh.sku.tobytes() + sh.qty.tobytes())
    return h.hexdigest()[:16]


def _index(ids: list[str]) -> dict[str, int]:
    return {x: i for i, x in enumerate(ids)}


@dataclass(frozen=True)
class _Locations:
    """Mapped DCs first, then mapped stores whose DC is mapped, each group sorted by twin id."""

    erp: list[str]
    twin: list[str]
    n_dcs: int
    serving_dc: IntArray  # [L] index of the DC that replenishes each location (a DC: itself)
    direct: BoolArray | None = None  # [L] stores that buy from suppliers (None: none does)
    dc_replenished: BoolArray | None = None  # [L] stores their DC replenishes

    @property
    def index(self) -> dict[str, int]:  # ERP id -> location index
        return _index(self.erp)


@dataclass(frozen=True)
class _Catalogue:
    """Mapped products sorted by twin id, with their selling price and unit cost."""

    erp: list[str]
    twin: list[str]
    price: FloatArray
    unit_cost: FloatArray
    supplier_price: FloatArray  # the main supplier's price list, NaN where it has none

    @property
    def index(self) -> dict[str, int]:  # ERP id -> SKU index
        return _index(self.erp)


@dataclass(frozen=True)
class _Suppliers:
    """One twin supplier per (ERP supplier, planned lead time) among the SKUs' main suppliers."""

    of_key: dict[tuple[str, float], int]  # (ERP party, lead time days) -> supplier index
    twin: list[str]
    erp: list[str]  # "" for the no-supplier placeholder
    lead_time: FloatArray  # [V] days
    sku_supplier: IntArray  # [S]
    no_supplier: BoolArray  # [S]


def _supplied_by(kind: str, supplied_by: str) -> str:
    """Who replenishes a location: a DC always suppliers; a store its DC unless told."""
    return "supplier" if kind == "dc" else supplied_by or "dc"


def _locations(state: ErpState, mapping: IdMapping, issues: list[DataWarning]) -> _Locations:
    """DCs first, then stores: served by a DC, buying from suppliers (direct-store delivery,
    home DC the first DC), or both; ambiguous warehouses (no role) are left out and reported.
    A layout without any DC plans the stores that buy from suppliers as DCs."""
    locs = state["locations"]
    code_of = dict(zip(locs["erp_id"], locs["code"], strict=True))
    has_dc = any(
        k == "dc" and mapping.twin_id("location", e) is not None
        for e, k in zip(locs["erp_id"], locs["kind"], strict=True)
    )
    supply, stores, ambiguous = [], [], []
    for e, k, dc, by, why in zip(
        locs["erp_id"],
        locs["kind"],
        locs["serving_dc"],
        locs["supplied_by"],
        locs["reason"],
        strict=True,
    ):
        twin = mapping.twin_id("location", e)
        if twin is None:
            continue
        if k not in ("dc", "store"):
            ambiguous.append(f"{code_of[e]} ({why or 'no role'})")
        elif k == "dc" or (_supplied_by(k, by) == "supplier" and not has_dc):
            supply.append((twin, e))
        else:
            stores.append((twin, e, dc, _supplied_by(k, by)))
    if ambiguous:
        issues.append(
            DataWarning(
                "ambiguous-warehouse",
                f"{len(ambiguous)} warehouse(s) with no role left out: {'; '.join(ambiguous)} — "
                "see `twin shadow layout`",
            )
        )
    if not supply:
        raise ValueError(
            f"{state.source}: no DC and no store buying from suppliers in the layout (or none "
            "mapped): give warehouses their roles with `twin shadow layout --import`"
        )
    supply.sort()
    supply_erp = {e for _, e in supply}
    kept = []
    for twin, e, dc, by in sorted(stores):
        if by != "supplier" and dc not in supply_erp:
            issues.append(
                DataWarning(
                    "store-left-out",
                    f"store {twin!r} left out: its serving DC {code_of.get(dc, dc)!r} is not a "
                    "mapped DC of the layout",
                )
            )
            continue
        kept.append((twin, e, dc, by))
    if not any(k == "store" for k in locs["kind"]):
        issues.append(
            DataWarning(
                "no-stores",
                f"no store warehouses: {len(supply)} warehouse(s) read as DCs — "
                "see `twin shadow layout`",
            )
        )
    erp = [e for _, e in supply] + [e for _, e, _, _ in kept]
    li = _index(erp)
    serving = np.arange(len(erp), dtype=np.int64)
    for i, (_, _, dc, by) in enumerate(kept, start=len(supply)):
        serving[i] = 0 if by == "supplier" else li[dc]  # a direct-only store's home DC: the first
    twin_ids = [t for t, _ in supply] + [t for t, _, _, _ in kept]
    by_of = ["supplier"] * len(supply) + [by for _, _, _, by in kept]
    direct = np.array([by in ("supplier", "both") for by in by_of])
    direct[: len(supply)] = False
    if not direct.any():
        return _Locations(erp, twin_ids, len(supply), serving)
    replenished = np.array([by in ("dc", "both") for by in by_of])
    replenished[: len(supply)] = False
    return _Locations(erp, twin_ids, len(supply), serving, direct, replenished)


def _catalogue(state: ErpState, mapping: IdMapping, issues: list[DataWarning]) -> _Catalogue:
    prods = state["products"]
    mapped = sorted(
        (twin, e, i)
        for i, e in enumerate(prods["erp_id"])
        if (twin := mapping.twin_id("product", e)) is not None
    )
    rows = [i for _, _, i in mapped]
    price = prods["price"].to_numpy(np.float64)[rows]
    unit_cost = prods["unit_cost"].to_numpy(np.float64)[rows]
    main = _main_suppliers(state, set(prods["erp_id"]))
    list_price = dict(zip(main["product"], main["unit_price"], strict=True))
    fallback = np.asarray([list_price.get(e, np.nan) for _, e, _ in mapped], np.float64)
    unit_cost = np.where(np.isfinite(unit_cost) & (unit_cost > 0), unit_cost, fallback)
    bad_price = ~(np.isfinite(price) & (price > 0))
    if bad_price.any():
        issues.append(
            DataWarning(
                "price-missing",
                f"{int(bad_price.sum())} product(s) with no selling price: price set to cost",
            )
        )
        price = np.where(bad_price, unit_cost, price)
    no_cost = ~(np.isfinite(unit_cost) & (unit_cost > 0))
    if no_cost.any():
        codes = [mapped[k][0] for k in np.flatnonzero(no_cost)[:10]]
        issues.append(
            DataWarning(
                "cost-missing",
                f"{int(no_cost.sum())} product(s) have cost 0 (no cost price and no supplier "
                f"price): {codes}; holding and lost-sale costs are 0 for them",
            )
        )
    unit_cost = np.where(no_cost, 0.0, unit_cost)
    return _Catalogue(
        [e for _, e, _ in mapped], [t for t, _, _ in mapped], price, unit_cost, fallback
    )


def _main_suppliers(state: ErpState, products: set[str]) -> pd.DataFrame:
    """The main supplier row per product: the lowest sequence, then the shortest lead time."""
    ps = state["product_suppliers"]
    ps = ps[ps["product"].isin(products)].sort_values(["product", "sequence", "lead_time_days"])
    return ps.drop_duplicates("product")


def _suppliers(
    state: ErpState,
    mapping: IdMapping,
    skus: _Catalogue,
    default_lead_time_days: float,
    issues: list[DataWarning],
) -> _Suppliers:
    """Main supplier per SKU (``_main_suppliers``), one twin supplier per (party, lead time)."""
    main = _main_suppliers(state, set(skus.index))
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
    twin: list[str] = []
    erp: list[str] = []
    lead_mean: list[float] = []
    sku_supplier = np.zeros(len(skus.erp), np.int64)
    no_supplier = np.zeros(len(skus.erp), bool)
    for k, e in enumerate(skus.erp):
        if e in party_of:
            party, lead = party_of[e], float(lead_of[e])
        else:
            party, lead = "", default_lead_time_days
            no_supplier[k] = True
        key = (party, lead)
        if key not in keys:
            keys[key] = len(twin)
            base = sup_names.get(party, f"erp-supplier-{party}") if party else NO_SUPPLIER
            many = party and len(leads_by_party.get(party, ())) > 1
            twin.append(f"{base}@{lead:g}d" if many else base)
            erp.append(party)
            lead_mean.append(lead)
        sku_supplier[k] = keys[key]
    if no_supplier.any():
        codes = [skus.twin[k] for k in np.nonzero(no_supplier)[0][:10]]
        issues.append(
            DataWarning(
                "no-supplier",
                f"{int(no_supplier.sum())} product(s) with no supplier: {codes}; their "
                "purchases are not recommended (add a supplier in the ERP)",
            )
        )
    return _Suppliers(keys, twin, erp, np.asarray(lead_mean, np.float64), sku_supplier, no_supplier)


def _on_hand(
    state: ErpState, locs: _Locations, skus: _Catalogue, issues: list[DataWarning]
) -> tuple[IntArray, IntArray]:
    """Units available [L, S] (on hand less what is promised to customers, at least 0) and
    units committed [L, S]; negative ERP stock reads as 0."""
    li, si = locs.index, skus.index
    available = np.zeros((len(locs.erp), len(skus.erp)), np.int64)
    committed = np.zeros_like(available)
    stock = state["stock"]
    st = stock[stock["location"].isin(li) & stock["product"].isin(si)]
    if len(st):
        qty = np.rint(st["on_hand"].to_numpy(np.float64)).astype(np.int64)
        promised = np.rint(st["committed"].fillna(0).to_numpy(np.float64)).astype(np.int64)
        if (qty < 0).any():
            issues.append(
                DataWarning(
                    "negative-stock",
                    f"{int((qty < 0).sum())} cell(s) with negative stock in the ERP: read as 0",
                )
            )
        short = promised > np.maximum(qty, 0)
        if short.any():
            issues.append(
                DataWarning(
                    "over-promised",
                    f"{int(short.sum())} cell(s) promise customers more than is on hand: "
                    "available read as 0 (the shortfall is not planned as a backorder)",
                )
            )
        cells = (st["location"].map(li).to_numpy(), st["product"].map(si).to_numpy())
        available[cells] = np.maximum(qty - promised, 0)
        committed[cells] = np.maximum(promised, 0)
    return available, committed


def _inbound(
    state: ErpState, locs: _Locations, skus: _Catalogue, sup: _Suppliers
) -> tuple[IntArray, IntArray, tuple[InboundShipment, ...]]:
    """Open purchases (on order [L, S]) and transfers (in transit [L, S]), one shipment per
    (kind, origin, destination, due day); a line without a planned date is due after its
    supplier's lead time."""
    li, si = locs.index, skus.index
    on_order = np.zeros((len(locs.erp), len(skus.erp)), np.int64)
    in_transit = np.zeros_like(on_order)
    inb = state["inbound"]
    inb = inb[inb["destination"].isin(li) & inb["product"].isin(si)]
    if not len(inb):
        return on_order, in_transit, ()
    d_idx = inb["destination"].map(li).to_numpy(np.int64)
    k_idx = inb["product"].map(si).to_numpy(np.int64)
    q = np.rint(inb["qty"].to_numpy(np.float64)).astype(np.int64)
    is_po = (inb["kind"] == "purchase").to_numpy()
    lead = sup.lead_time[sup.sku_supplier[k_idx]]
    origin = np.empty(len(inb), np.int64)
    for r, (kind, o, k) in enumerate(zip(inb["kind"], inb["origin"], k_idx, strict=True)):
        if kind == "purchase":
            variant = sup.of_key.get((o, float(lead[r])))
            origin[r] = variant if variant is not None else sup.sku_supplier[k]
        else:
            origin[r] = li.get(o, locs.serving_dc[d_idx[r]])
    planned = [
        (p - state.as_of).days if isinstance(p, dt.date) else int(round(lt))
        for p, lt in zip(inb["planned_date"], lead, strict=True)
    ]
    due = np.asarray(planned, np.int64)
    np.add.at(on_order, (d_idx[is_po], k_idx[is_po]), q[is_po])
    np.add.at(in_transit, (d_idx[~is_po], k_idx[~is_po]), q[~is_po])
    frame = pd.DataFrame({"po": is_po, "o": origin, "d": d_idx, "due": due, "k": k_idx, "q": q})
    inbound = []
    for key, g in frame.groupby(["po", "o", "d", "due"], sort=True):
        po, o, d, due_day = cast(tuple[bool, int, int, int], key)
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
    return on_order, in_transit, tuple(inbound)


def _history_mean(
    state: ErpState, history: pd.DataFrame, locs: _Locations, skus: _Catalogue
) -> FloatArray:
    """Units sold per day [L, S] over the trailing ``history_days``: store rows from store
    sales, DC rows from ecommerce sales (as in the twin)."""
    as_of = state.as_of
    first = as_of - dt.timedelta(days=state.history_days - 1)
    window = history[(history["date"] >= first) & (history["date"] <= as_of)]
    sold = np.zeros((len(locs.erp), len(skus.erp)))
    li_twin, si_twin = _index(locs.twin), _index(skus.twin)
    window = window[window["location"].isin(li_twin) & window["sku"].isin(si_twin)]
    if len(window):
        w_loc = window["location"].map(li_twin).to_numpy(np.int64)
        w_loc = np.where(
            (window["channel"] == "ecommerce").to_numpy(), locs.serving_dc[w_loc], w_loc
        )
        np.add.at(sold, (w_loc, window["sku"].map(si_twin).to_numpy()), window["units"])
    mean: FloatArray = sold / state.history_days
    return mean


def _lanes(state: ErpState, locs: _Locations, opt: SnapshotOptions) -> pd.DataFrame:
    """The ERP's warehouse-to-warehouse lead times, and a default lane to every store."""
    li = locs.index
    lane_rows = {}
    erp_lanes = state["lanes"]
    for o, d, t in zip(
        erp_lanes["origin"], erp_lanes["destination"], erp_lanes["transit_days"], strict=True
    ):
        if o in li and d in li and o != d:
            lane_rows[(li[o], li[d])] = max(int(t), 1)
    for i in range(locs.n_dcs, len(locs.erp)):
        if locs.dc_replenished is None or locs.dc_replenished[i]:
            lane_rows.setdefault((int(locs.serving_dc[i]), i), opt.default_transit_days)
    pairs = sorted(lane_rows)
    return pd.DataFrame(
        {
            "origin": [locs.twin[o] for o, _ in pairs],
            "destination": [locs.twin[d] for _, d in pairs],
            "o": np.asarray([o for o, _ in pairs], np.int64),
            "d": np.asarray([d for _, d in pairs], np.int64),
            "transit_days": np.asarray([lane_rows[p] for p in pairs], np.int64),
            "cost_per_unit": np.full(len(pairs), opt.lane_cost),
            "capacity": np.full(len(pairs), UNLIMITED),
        }
    )


def _no_promotions() -> pd.DataFrame:
    """Tryton's base modules have no promotions: the contract's promotion table, empty."""
    return pd.DataFrame(
        {
            "id": pd.Series(dtype=object),
            "start_day": pd.Series(dtype=np.int64),
            "end_day": pd.Series(dtype=np.int64),
            "depth": pd.Series(dtype=np.float64),
            "planned_uplift": pd.Series(dtype=np.float64),
        }
    )


def build_snapshot(
    state: ErpState,
    mapping: IdMapping,
    options: SnapshotOptions | None = None,
    add_new: bool = False,
) -> BuiltSnapshot:
    """Translate the ERP tables through the mapping into a ``PlanningSnapshot``."""
    opt = options or SnapshotOptions()
    issues = [DataWarning("erp-note", n) for n in state.notes]
    issues += [
        DataWarning("unknown-item" if "unknown" in m else "new-item", m)
        for m in mapping.resolve(state.tables, add_new)
    ]
    locs = _locations(state, mapping, issues)
    skus = _catalogue(state, mapping, issues)
    sup = _suppliers(state, mapping, skus, opt.default_lead_time_days, issues)
    on_hand, committed = _on_hand(state, locs, skus, issues)
    on_order, in_transit, inbound = _inbound(state, locs, skus, sup)
    history = sales_history(state, mapping)
    history_mean = _history_mean(state, history, locs, skus)
    if not history_mean.any():
        issues.append(
            DataWarning(
                "no-sales-history",
                f"no sales history in the last {state.history_days} days for the mapped "
                "locations: all forecasts are 0 (check done customer moves and sale orders)",
            )
        )
    forecast = np.ascontiguousarray(
        np.broadcast_to(history_mean, (opt.horizon_days, *history_mean.shape))
    )
    dispersion, model_file = opt.dispersion, None
    if opt.forecast != "average":
        fitted = _fitted_forecast(state, opt, history, locs, skus)
        forecast, dispersion, model_file = fitted.mean, fitted.dispersion, fitted.model_file
        if not forecast.any():
            issues.append(
                DataWarning(
                    "all-forecasts-zero", f"the {opt.forecast} model forecasts 0 everywhere"
                )
            )
    lead, price, unit_cost = sup.lead_time, skus.price, skus.unit_cost
    snap = PlanningSnapshot(
        day=0,
        date=state.as_of,
        location_ids=tuple(locs.twin),
        sku_ids=tuple(skus.twin),
        n_dcs=locs.n_dcs,
        serving_dc=locs.serving_dc,
        direct=locs.direct,
        dc_replenished=locs.dc_replenished,
        on_hand=on_hand,
        in_transit=in_transit,
        on_order=on_order,
        inbound=inbound,
        forecast_mean=forecast,
        forecast_dispersion=dispersion,
        history_mean=history_mean,
        baseline_mean=history_mean.copy(),
        promotions=_no_promotions(),
        promotion_cells={},
        sku_supplier=sup.sku_supplier,
        supplier_ids=tuple(sup.twin),
        lead_time_mean=lead,
        lead_time_sd=np.zeros(len(lead)),
        expedite_lead_time=np.maximum(np.ceil(lead * opt.expedite_factor), 1).astype(np.int64),
        supplier_capacity=np.full(len(lead), UNLIMITED),
        moq=np.zeros(len(lead)),
        fill_rate=np.ones(len(lead)),
        lanes=_lanes(state, locs, opt),
        dc_throughput=np.full(locs.n_dcs, UNLIMITED),
        price=price,
        unit_cost=unit_cost,
        holding_cost=unit_cost * opt.holding_rate / 365.0,
        lost_sale_cost=np.maximum(price - unit_cost, 0) + opt.lost_sale_penalty * price,
        expedite_premium=opt.expedite_premium * unit_cost,
        seed=0,
        committed=committed,
    )
    return BuiltSnapshot(
        snapshot=snap,
        warnings=tuple(issues),
        location_erp=tuple(locs.erp),
        sku_erp=tuple(skus.erp),
        supplier_erp=tuple(sup.erp),
        no_supplier=sup.no_supplier,
        supplier_price=skus.supplier_price,
        history=history,
        digest=snapshot_digest(snap),
        model_file=model_file,
    )


def _fitted_forecast(
    state: ErpState, opt: SnapshotOptions, history: pd.DataFrame, locs: _Locations, skus: _Catalogue
) -> ModelForecast:
    if opt.model_file is None:
        raise ValueError(f"--forecast {opt.forecast} needs a model file to load or fit into")
    prods = state["products"]
    code = dict(zip(prods["erp_id"], prods["category"], strict=True))
    categories = {
        t: code.get(e, "") or "uncategorised" for e, t in zip(skus.erp, skus.twin, strict=True)
    }
    return model_forecast(
        opt.forecast,
        Path(opt.model_file),
        history,
        categories,
        state.as_of,
        opt.horizon_days,
        locs.twin,
        skus.twin,
        locs.serving_dc,
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
        ["units"]
    ].sum()
