"""Fulfilment: a day's demand met from stock, with the day's prices, as plain array functions.

Store walk-in then pickup (BOPIS) from store stock; ecommerce from the DC, then from the DC's
ship-from-store stores in order; what is left is a lost sale. The stock arrays passed in are
updated in place; the sales, lost sales and vendor funding go to the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from promotwin.demand.model import DayDemand, PromotionCells
from promotwin.policies.contract import BoolArray, FloatArray, IntArray
from promotwin.scenarios.network import Network
from promotwin.twin.ledger import CellList, Kind, Ledger

HISTORY_WINDOW_DAYS = 28  # the ERP's "average daily usage" smoothing window


@dataclass(frozen=True)
class Pricing:
    """The selling-price discount, vendor funding and promoted flag per ``[location, sku]``
    cell from the promotions active today (``active`` False: none, every price is regular)."""

    depth: FloatArray
    funding: FloatArray
    promoted: BoolArray
    active: bool


def price_cells(active: Sequence[PromotionCells], shape: tuple[int, int]) -> Pricing:
    """The pricing of the cells under the ``active`` promotions (deepest discount wins, the
    last promotion's funding)."""
    depth, funding = np.zeros(shape), np.zeros(shape)
    promoted = np.zeros(shape, bool)
    for pc in active:
        depth = np.where(pc.cells, np.maximum(depth, pc.promotion.depth), depth)
        funding = np.where(pc.cells, pc.promotion.vendor_funding, funding)
        promoted |= pc.cells
    return Pricing(depth, funding, promoted, bool(active))


@dataclass(frozen=True)
class FulfilmentRules:
    """What fulfilment needs of the network: prices, costs and who ships from store."""

    net: Network
    ship_from_store: list[IntArray] | None  # per DC: its ship-from-store stores (None: off)
    lost_sale_penalty: float  # goodwill share of the regular price per lost unit


@dataclass(frozen=True)
class DaySales:
    """A day's fulfilment per location: units sold, units of demand lost, cells that lost some."""

    sold: IntArray  # [L]
    lost: IntArray  # [L]
    stockout_cells: IntArray  # [L]


def sfs_stores(net: Network) -> list[IntArray]:
    """Per DC, the stores (counted from the first store) that may ship its ecommerce orders."""
    nd = net.n_dcs
    allowed = net.locations["ship_from_store"].to_numpy()[nd:]
    return [np.nonzero((net.serving_dc[nd:] == d) & allowed)[0] for d in range(nd)]


def fulfil(
    day: int,
    dem: DayDemand,
    on_hand: IntArray,
    history_mean: FloatArray,
    pricing: Pricing,
    rules: FulfilmentRules,
    ledger: Ledger,
) -> DaySales:
    """Meet ``dem`` from ``on_hand``; updates it and the trailing sales ``history_mean``.

    Store demand is worked on the cells that have some (``dem.store_cells``: a third of them
    on a typical day of the big network), not on every ``[store, sku]`` cell.
    """
    net = rules.net
    nd, n_sku = net.n_dcs, net.n_skus
    cells = dem.store_cells
    listed = CellList(*np.divmod(cells, n_sku))
    want_pick = dem.store_pickup
    want_walk = dem.by_location[nd:].ravel()[cells] - want_pick
    store = on_hand[nd:]
    stock = store.ravel()[cells]
    walk = np.minimum(stock, want_walk)
    stock -= walk
    pick = np.minimum(stock, want_pick)
    stock -= pick
    store.ravel()[cells] = stock
    dc = on_hand[:nd]
    ecom = np.minimum(dc, dem.ecommerce)
    dc -= ecom
    unmet = dem.ecommerce - ecom
    sfs, sfs_qty = ship_from_store(unmet, store, rules.ship_from_store)
    lost_walk, lost_pick = want_walk - walk, want_pick - pick
    sold_cells, lost_cells = walk + pick, lost_walk + lost_pick
    record = StoreSales(day, pricing, rules, ledger)
    record.lines(listed, [(Kind.SALE, walk, 0), (Kind.SALE, pick, 1)])
    short = lost_cells > 0  # a tenth of the cells with demand on a typical day
    record.lines(
        listed.subset(short), [(Kind.LOST, lost_walk[short], 0), (Kind.LOST, lost_pick[short], 1)]
    )
    record.lines(sfs, [(Kind.SALE, sfs_qty, 2)])
    ledger_dc_rows(day, ecom, unmet, pricing, rules, ledger)
    learn_usage(history_mean, [(listed, sold_cells), (sfs, sfs_qty)], ecom, nd)
    n_stores = net.n_stores
    sold = _row_totals(listed.rows, sold_cells, n_stores)
    sold += _row_totals(sfs.rows, sfs_qty, n_stores)
    return DaySales(
        sold=np.concatenate([ecom.sum(axis=1), sold]),
        lost=np.concatenate([unmet.sum(axis=1), _row_totals(listed.rows, lost_cells, n_stores)]),
        stockout_cells=np.concatenate(
            [np.count_nonzero(unmet, axis=1), np.bincount(listed.rows[short], minlength=n_stores)]
        ),
    )


def ship_from_store(
    unmet: IntArray, store_on_hand: IntArray, stores_of_dc: list[IntArray] | None
) -> tuple[CellList, IntArray]:
    """Ecommerce the DCs could not fill (``unmet`` ``[D, S]``), from their ship-from-store
    stores in order: the store cells it is shipped from and the units. Takes them off ``unmet``
    and ``store_on_hand`` (``[stores, S]``). Only the SKUs a DC is short of are looked at."""
    rows: list[IntArray] = []
    skus: list[IntArray] = []
    units: list[IntArray] = []
    if stores_of_dc is not None and unmet.any():
        for d, stores in enumerate(stores_of_dc):
            short = np.flatnonzero(unmet[d])
            if not len(stores) or not len(short):
                continue
            block = np.ix_(stores, short)
            avail = store_on_hand[block]
            before = np.cumsum(avail, axis=0) - avail
            take = np.clip(unmet[d, short] - before, 0, avail)
            store_on_hand[block] -= take
            unmet[d, short] -= take.sum(axis=0)
            r, c = np.nonzero(take)
            rows.append(stores[r])
            skus.append(short[c])
            units.append(take[r, c])
    if not rows:
        empty = np.zeros(0, np.int64)
        return CellList(empty, empty), empty
    row, sku, qty = np.concatenate(rows), np.concatenate(skus), np.concatenate(units)
    order = np.lexsort((sku, row))  # by store, as listed cells are
    return CellList(row[order], sku[order]), qty[order]


def learn_usage(
    history: FloatArray, sold: list[tuple[CellList, IntArray]], ecom: IntArray, n_dcs: int
) -> None:
    """The ERP's trailing average of daily sales: ``h += (sold - h) / 28``, written as
    ``h * (1 - a) + a * sold`` so the sales are added on the cells that sold only."""
    alpha = 1.0 / HISTORY_WINDOW_DAYS
    n_sku = history.shape[1]
    history *= 1.0 - alpha
    history[:n_dcs] += alpha * ecom
    stores = history[n_dcs:].ravel()
    for where, qty in sold:
        np.add.at(stores, where.rows * n_sku + where.skus, alpha * qty)


def lost_unit_cost(
    price: FloatArray, regular: FloatArray, cost: FloatArray, penalty: float
) -> FloatArray:
    """What a lost sale costs per unit: the margin at the selling price, plus the goodwill
    penalty (a share of the regular price)."""
    return np.maximum(price - cost, 0.0) + penalty * regular


@dataclass(frozen=True)
class StoreSales:
    """Writes a day's sales and lost sales on listed store cells to the ledger."""

    day: int
    pricing: Pricing
    rules: FulfilmentRules
    ledger: Ledger

    def lines(self, listed: CellList, moves: list[tuple[Kind, IntArray, int]]) -> None:
        """Sales (with vendor funding on promoted units) and lost sales on listed store cells,
        split by promotion; ``moves`` are (kind, units per listed cell, channel)."""
        if not len(listed.rows):
            return
        net, pricing, day, ledger = self.rules.net, self.pricing, self.day, self.ledger
        nd = net.n_dcs
        skus = listed.skus
        at = listed.rows * net.n_skus + skus
        regular, cost = net.price[skus], net.unit_cost[skus]
        # prices are per SKU except on the cells of active promotions (their discount)
        price = regular * (1.0 - pricing.depth[nd:].ravel()[at]) if pricing.active else regular
        lost_cost = lost_unit_cost(price, regular, cost, self.rules.lost_sale_penalty)
        groups: list[tuple[bool, npt.NDArray[np.bool_] | None]] = [(False, None)]
        if pricing.active:
            promoted = pricing.promoted[nd:].ravel()[at]
            groups = [(False, ~promoted), (True, promoted)]
        for flag, mask in groups:
            where = listed if mask is None else listed.subset(mask)
            value = _masked(price, mask)
            for kind, qty, channel in moves:
                q = _masked(qty, mask)
                unit_cost = _masked(lost_cost if kind == Kind.LOST else cost, mask)
                ledger.listed(day, kind, where, q, value, unit_cost, nd, channel, flag)
                if flag and kind == Kind.SALE:  # vendor funding on the promoted units sold
                    funding = _masked(pricing.funding[nd:].ravel()[at], mask)
                    ledger.listed(day, Kind.FUNDING, where, q, funding, 0.0, nd, channel, flag)


def ledger_dc_rows(
    day: int,
    ecom: IntArray,
    unmet: IntArray,
    pricing: Pricing,
    rules: FulfilmentRules,
    ledger: Ledger,
) -> None:
    """Ecommerce sold and lost at the DCs (their rows, a few of them: as arrays)."""
    if not (ecom.any() or unmet.any()):  # no ecommerce today (or none at all): no line to write
        return
    net = rules.net
    nd = net.n_dcs
    price = net.price * (1.0 - pricing.depth[:nd]) if pricing.active else net.price
    lost_cost = lost_unit_cost(price, net.price, net.unit_cost, rules.lost_sale_penalty)
    promo = pricing.promoted[:nd] if pricing.active else None
    ledger.cells(day, Kind.SALE, ecom, price, net.unit_cost, 0, 2, promo)
    if promo is not None:
        ledger.cells(day, Kind.FUNDING, ecom, pricing.funding[:nd], 0.0, 0, 2, promo, True)
    ledger.cells(day, Kind.LOST, unmet, price, lost_cost, 0, 2, promo)


def _masked(a: npt.NDArray, mask: npt.NDArray[np.bool_] | None) -> npt.NDArray:
    return a if mask is None else a[mask]


def _row_totals(rows: IntArray, qty: IntArray, n_rows: int) -> IntArray:
    """Units per row of listed cells (whole units summed in floating point are exact)."""
    return np.bincount(rows, qty, minlength=n_rows).astype(np.int64)
