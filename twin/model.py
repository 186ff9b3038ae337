"""The SimPy twin: a daily tick process, one event per shipment, promotions and disruptions as
events. A day's demand and fulfilment for every ``[location, sku]`` cell is one numpy step.

Time: arrivals fire at integer times ``t`` (start of day t); the tick runs at ``t + 0.5``:
receipts (the shipments that arrived at ``t``, booked together) -> demand -> fulfilment ->
snapshot -> ``policy.decide()`` -> governance -> execute -> records.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import simpy

from promotwin.demand.forecast import RollingForecast
from promotwin.demand.model import DayDemand, DemandModel, PromotionCells
from promotwin.demand.replay import ReplayDemand
from promotwin.policies.allocation import cut_to_limit
from promotwin.policies.contract import (
    ActionKind,
    BoolArray,
    FloatArray,
    InboundShipment,
    IntArray,
    Plan,
    PlanningSnapshot,
    Policy,
)
from promotwin.scenarios.network import Network, compile_network
from promotwin.scenarios.schema import Scenario
from promotwin.twin.ledger import CellList, Detail, Kind, Ledger
from promotwin.workflow.governance import AutoApprove, Governance

HISTORY_WINDOW_DAYS = 28  # the ERP's "average daily usage" smoothing window
SKU_DETAIL_MAX_CELLS = 200_000  # above this the ledger keeps per-location summaries
CONCENTRATION = 50.0  # beta concentration of a supplier's daily fill fraction


class PlanError(ValueError):
    """A policy proposed an action the network cannot carry out (a policy bug)."""


@dataclass
class Shipment:
    """Units in flight: from a supplier (``origin`` = supplier index) or between locations."""

    kind: str
    origin: int
    destination: int
    planned_day: int
    sku: IntArray
    qty: IntArray  # ordered / dispatched units
    delivered: IntArray  # units that will arrive (supplier short-shipments already taken off)
    premium: FloatArray  # extra cost per unit (expedite)
    order_cost: float = 0.0

    @functools.cached_property
    def inbound(self) -> InboundShipment:
        """What a policy sees of it (made once: it is in every snapshot until it lands)."""
        return InboundShipment(
            self.kind, self.origin, self.destination, self.planned_day, self.sku, self.qty
        )


@dataclass(frozen=True)
class DaySales:
    """A day's fulfilment per location: units sold, units of demand lost, cells that lost some."""

    sold: IntArray  # [L]
    lost: IntArray  # [L]
    stockout_cells: IntArray  # [L]


@dataclass(frozen=True)
class Groups:
    """Lines grouped by an integer key: group ``g`` is lines ``order[starts[g]:starts[g + 1]]``
    (``order`` None: the lines already come grouped, each group one run in line order)."""

    order: IntArray | None
    starts: IntArray  # [G + 1]
    keys: IntArray  # [G]

    def lines(self, a: npt.NDArray) -> npt.NDArray:
        """``a`` (one value per line) in grouped order."""
        return a if self.order is None else a[self.order]

    def first_lines(self) -> IntArray:
        """The first line of each group."""
        head = self.starts[:-1]
        return head if self.order is None else self.order[head]

    def of_line(self) -> IntArray:
        """The group of each line, in line order."""
        group = np.repeat(np.arange(len(self.keys)), np.diff(self.starts))
        if self.order is None:
            return group
        out = np.empty_like(group)
        out[self.order] = group
        return out


def group_lines(key: IntArray) -> Groups:
    """Group lines by ``key``. A policy usually adds a store's lines together, so the keys come
    in runs: when no key has two runs, the runs are the groups and nothing is sorted."""
    n = len(key)
    first = np.empty(n, bool)
    first[:1] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    run_keys = key[starts]
    if len(np.unique(run_keys)) == len(starts):
        return Groups(None, np.append(starts, n), run_keys)
    # some key has several runs: sort the runs (not the lines) by key, stably, so each group's
    # lines stay in line order, and merge neighbouring runs of one key
    lengths = np.diff(np.append(starts, n))
    by_key = np.argsort(run_keys, kind="stable")
    sorted_keys, sorted_lengths = run_keys[by_key], lengths[by_key]
    new_starts = np.cumsum(sorted_lengths) - sorted_lengths
    order = np.arange(n) + np.repeat(starts[by_key] - new_starts, sorted_lengths)
    head = np.empty(len(sorted_keys), bool)
    head[:1] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=head[1:])
    return Groups(order, np.append(new_starts[head], n), sorted_keys[head])


def _masked(a: npt.NDArray, mask: npt.NDArray[np.bool_] | None) -> npt.NDArray:
    return a if mask is None else a[mask]


def _row_totals(rows: IntArray, qty: IntArray, n_rows: int) -> IntArray:
    """Units per row of listed cells (whole units summed in floating point are exact)."""
    return np.bincount(rows, qty, minlength=n_rows).astype(np.int64)


def _streams(seed: int) -> dict[str, np.random.Generator]:
    names = ("demand", "lead_time", "fill", "forecast")
    seqs = np.random.SeedSequence(seed).spawn(len(names))
    return {n: np.random.default_rng(s) for n, s in zip(names, seqs, strict=True)}


class Twin:
    """The network's state and the processes that change it."""

    def __init__(
        self,
        scenario: Scenario,
        policy: Policy,
        seed: int = 0,
        governance: Governance | None = None,
        days: int | None = None,
        ledger_detail: Detail | None = None,
        history: pd.DataFrame | None = None,
    ):
        self.scenario = scenario
        self.policy = policy
        self.seed = seed
        self.governance: Governance = governance or AutoApprove()
        self.days = days or scenario.horizon_days
        net = compile_network(scenario)
        self.net: Network = net
        n_loc, n_sku = net.n_locations, net.n_skus
        if ledger_detail is None:
            ledger_detail = "sku" if n_loc * n_sku <= SKU_DETAIL_MAX_CELLS else "summary"
        self.ledger = Ledger(ledger_detail)
        self.rng = _streams(seed)
        self.model = DemandModel(scenario, net)
        self.replay: ReplayDemand | None = None
        if history is not None:
            self.replay = ReplayDemand(history, scenario, net)
        self.forecast = RollingForecast(self.model, policy.horizon_days, self.rng["forecast"])
        # the forecast's rows are a function of the date, the scenario and the seed's forecast
        # stream alone, so equal scenarios and seeds give the same run (see PlanningSnapshot)
        self._forecast_run = f"twin:{scenario.content_hash()}:{seed}"
        self._draw_supplier_outcomes()

        nd = net.n_dcs
        mean_weekday = float(np.mean(scenario.demand.weekday))
        self.baseline_mean: FloatArray = self.model.base * mean_weekday
        init = scenario.initial_inventory
        cover = np.where(np.arange(n_loc)[:, None] < nd, init.dc_days, init.store_days)
        dc_total = self.baseline_mean[:nd].copy()
        np.add.at(dc_total, net.serving_dc[nd:], self.baseline_mean[nd:])
        opening = np.vstack([dc_total, self.baseline_mean[nd:]]) * cover
        self.on_hand: IntArray = np.rint(opening).astype(np.int64)
        self.in_transit: IntArray = np.zeros((n_loc, n_sku), np.int64)
        self.on_order: IntArray = np.zeros((n_loc, n_sku), np.int64)
        self.history_mean: FloatArray = self.baseline_mean.copy()
        self.open: dict[int, Shipment] = {}
        self._landed: list[Shipment] = []  # arrived since the last tick, booked by the tick
        self._ids = itertools.count()

        self.depth: FloatArray = np.zeros((n_loc, n_sku))
        self.funding: FloatArray = np.zeros((n_loc, n_sku))
        self.promoted: BoolArray = np.zeros((n_loc, n_sku), bool)
        self.active: list[PromotionCells] = []
        self.dc_factor: FloatArray = np.ones(nd)
        self.supplier_delay: IntArray = np.zeros(len(net.suppliers), np.int64)

        lanes = net.lanes
        self.lanes: dict[tuple[int, int], tuple[int, float, float]] = {
            (int(o), int(d)): (int(t), float(c), float(cap))
            for o, d, t, c, cap in zip(
                lanes["o"],
                lanes["d"],
                lanes["transit_days"],
                lanes["cost_per_unit"],
                lanes["capacity"],
                strict=True,
            )
        }
        self.sfs_stores = [
            np.nonzero(
                (net.serving_dc[nd:] == d) & net.locations["ship_from_store"].to_numpy()[nd:]
            )[0]
            for d in range(nd)
        ]
        promo_skus = np.zeros(n_sku, bool)
        for pc in self.model.promotions:
            promo_skus |= pc.cells.any(axis=0)
        self.promo_skus = promo_skus
        self._lost_cost_share = scenario.costs.lost_sale_penalty
        self._buffers: dict[str, np.ndarray] = {}
        self.daily: list[dict[str, Any]] = []
        self.decisions: list[dict[str, np.ndarray]] = []
        self.exceptions = 0
        self._static = self._static_view()
        self._throughput = net.locations["throughput"].to_numpy(np.float64)  # [L] units a day

        self.env = simpy.Environment()
        self.ledger.cells(0, Kind.INITIAL, self.on_hand, net.unit_cost, 0.0)

    # -- randomness drawn up front so every policy sees the same outcomes (common random numbers)

    def _draw_supplier_outcomes(self) -> None:
        """Lead time and fill fraction per supplier x order day; rounding noise per day x SKU."""
        sup = self.net.suppliers
        n_days = self.days
        rng = self.rng["lead_time"]
        mean = sup["lead_mean"].to_numpy()[:, None]
        sd = sup["lead_sd"].to_numpy()[:, None]
        shape = (len(sup), n_days)
        dist = sup["lead_dist"].to_numpy()[:, None]
        sigma2 = np.log1p((sd / mean) ** 2)
        lognormal = rng.lognormal(np.log(mean) - sigma2 / 2, np.sqrt(sigma2), shape)
        poisson = rng.poisson(np.broadcast_to(mean, shape))
        lead = np.where(dist == "fixed", mean, np.where(dist == "poisson", poisson, lognormal))
        self.lead_days = np.maximum(np.rint(lead), sup["lead_min"].to_numpy()[:, None]).astype(
            np.int64
        )
        rng = self.rng["fill"]
        fill = sup["fill_rate"].to_numpy()[:, None]
        a, b = fill * CONCENTRATION, (1 - fill) * CONCENTRATION
        beta = rng.beta(np.maximum(a, 1e-9), np.maximum(b, 1e-9), shape)
        self.fill_fraction = np.where(fill >= 1, 1.0, beta)
        self.fill_rounding = rng.random((n_days, self.net.n_skus))

    # -- processes ------------------------------------------------------------------------------

    def start_from(
        self,
        on_hand: IntArray,
        inbound: Sequence[InboundShipment],
        history_mean: FloatArray | None = None,
        day_offset: int = 0,
    ) -> None:
        """Start from a known state (e.g. an ERP snapshot) instead of the scenario's opening stock.

        Call before ``run()``. Each open shipment arrives in full at the start of day
        ``due_day - day_offset`` (day 0 at the earliest); the ledger's opening stock is replaced.
        """
        if self.env.now > 0 or self.open:
            raise RuntimeError("start_from() must be called once, before run()")
        self.on_hand[:] = on_hand
        if history_mean is not None:
            self.history_mean[:] = history_mean
        self.ledger = Ledger(self.ledger.detail)
        self.ledger.cells(0, Kind.INITIAL, self.on_hand, self.net.unit_cost, 0.0)
        for sh in inbound:
            arrive = max(sh.due_day - day_offset, 0)
            target = self.on_order if sh.kind in ("purchase", "expedite") else self.in_transit
            np.add.at(target[sh.destination], sh.sku, sh.qty)
            shipment = Shipment(
                sh.kind,
                sh.origin,
                sh.destination,
                arrive,
                sh.sku,
                sh.qty,
                sh.qty,
                np.zeros(len(sh.sku)),
            )
            sid = next(self._ids)
            self.open[sid] = shipment
            self.env.timeout(arrive).callbacks.append(functools.partial(self._arrive, sid))

    def run(self, progress: Callable[[int, int], None] | None = None) -> None:
        for pc in self.model.promotions:
            self.env.process(self._promotion(pc))
        for drop in self.scenario.disruptions.dc_capacity_drops:
            d = self.net.location_index[drop.dc]
            self.env.process(
                self._window(drop.start, drop.end, functools.partial(self._dc, d, drop.factor))
            )
        for delay in self.scenario.disruptions.supplier_delays:
            v = self.net.supplier_index[delay.supplier]
            self.env.process(
                self._window(
                    delay.start, delay.end, functools.partial(self._delay, v, delay.extra_days)
                )
            )
        self.env.process(self._ticks(progress))
        self.env.run(until=self.days)

    def _ticks(
        self, progress: Callable[[int, int], None] | None
    ) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(0.5)
        for day in range(self.days):
            self.tick(day)
            if progress is not None:
                progress(day + 1, self.days)
            yield self.env.timeout(1)

    def _promotion(self, pc: PromotionCells) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(pc.start_day)
        self.active.append(pc)
        self._reprice()
        yield self.env.timeout(pc.end_day - pc.start_day + 1)
        self.active.remove(pc)
        self._reprice()

    def _window(
        self, start: dt.date, end: dt.date, switch: Callable[[bool], None]
    ) -> Generator[simpy.Event, Any, None]:
        first = max(0, self.scenario.day_of(start))
        yield self.env.timeout(first)
        switch(True)
        yield self.env.timeout(self.scenario.day_of(end) - first + 1)
        switch(False)

    def _dc(self, d: int, factor: float, on: bool) -> None:
        self.dc_factor[d] = factor if on else 1.0

    def _delay(self, v: int, extra: int, on: bool) -> None:
        self.supplier_delay[v] = extra if on else 0

    def _reprice(self) -> None:
        """Selling price discount, vendor funding and promoted flags of the active promotions."""
        self.depth[:] = 0.0
        self.funding[:] = 0.0
        self.promoted[:] = False
        for pc in self.active:
            self.depth = np.where(pc.cells, np.maximum(self.depth, pc.promotion.depth), self.depth)
            self.funding = np.where(pc.cells, pc.promotion.vendor_funding, self.funding)
            self.promoted |= pc.cells

    # -- one day ------------------------------------------------------------------------------

    def tick(self, day: int) -> None:
        self._receive(day)
        window = self.forecast.window(day)
        demand = self._demand(day)
        sales = self._fulfil(day, demand)
        self._record_day(day, demand, sales)
        snapshot = self.snapshot(day, window)
        plan = self.policy.decide(snapshot)
        review = self.governance.review(plan, snapshot)
        self.exceptions += len(review.routed)
        executed = self._execute(day, review.approved)
        review.executed(executed)  # governance records what was carried out (audit trail)
        self._record_decisions(day, review.approved, executed, review.routed)

    def _demand(self, day: int) -> DayDemand:
        if self.replay is not None:
            return self.replay.sample(day)
        return self.model.sample(day, self.rng["demand"])

    def _fulfil(self, day: int, dem: DayDemand) -> DaySales:
        """Walk-in then pickup from store stock; ecommerce from the DC, then ship-from-store.

        Store demand is worked on the cells that have some (``dem.store_cells``: a third of them
        on a typical day of the big network), not on every ``[store, sku]`` cell.
        """
        nd, n_sku = self.net.n_dcs, self.net.n_skus
        cells = dem.store_cells
        listed = CellList(*np.divmod(cells, n_sku))
        want_pick = dem.store_pickup
        want_walk = dem.by_location[nd:].ravel()[cells] - want_pick
        store = self.on_hand[nd:]
        stock = store.ravel()[cells]
        walk = np.minimum(stock, want_walk)
        stock -= walk
        pick = np.minimum(stock, want_pick)
        stock -= pick
        store.ravel()[cells] = stock
        dc = self.on_hand[:nd]
        ecom = np.minimum(dc, dem.ecommerce)
        dc -= ecom
        unmet = dem.ecommerce - ecom
        sfs, sfs_qty = self._ship_from_store(unmet)
        lost_walk, lost_pick = want_walk - walk, want_pick - pick
        sold_cells, lost_cells = walk + pick, lost_walk + lost_pick
        self._ledger_store_cells(day, listed, [(Kind.SALE, walk, 0), (Kind.SALE, pick, 1)])
        short = lost_cells > 0  # a tenth of the cells with demand on a typical day
        self._ledger_store_cells(
            day,
            listed.subset(short),
            [(Kind.LOST, lost_walk[short], 0), (Kind.LOST, lost_pick[short], 1)],
        )
        self._ledger_store_cells(day, sfs, [(Kind.SALE, sfs_qty, 2)])
        self._ledger_dc_rows(day, ecom, unmet)
        self._learn_usage([(listed, sold_cells), (sfs, sfs_qty)], ecom)
        n_stores = self.net.n_stores
        sold = _row_totals(listed.rows, sold_cells, n_stores)
        sold += _row_totals(sfs.rows, sfs_qty, n_stores)
        return DaySales(
            sold=np.concatenate([ecom.sum(axis=1), sold]),
            lost=np.concatenate(
                [unmet.sum(axis=1), _row_totals(listed.rows, lost_cells, n_stores)]
            ),
            stockout_cells=np.concatenate(
                [
                    np.count_nonzero(unmet, axis=1),
                    np.bincount(listed.rows[short], minlength=n_stores),
                ]
            ),
        )

    def _ship_from_store(self, unmet: IntArray) -> tuple[CellList, IntArray]:
        """Ecommerce the DCs could not fill, from their ship-from-store stores in order: the
        store cells it is shipped from and the units; takes them off ``unmet`` and the stores'
        stock. Only the SKUs a DC is short of are looked at."""
        rows: list[IntArray] = []
        skus: list[IntArray] = []
        units: list[IntArray] = []
        if self.scenario.fulfilment.ecommerce == "dc_then_store" and unmet.any():
            store = self.on_hand[self.net.n_dcs :]
            for d, stores in enumerate(self.sfs_stores):
                short = np.flatnonzero(unmet[d])
                if not len(stores) or not len(short):
                    continue
                block = np.ix_(stores, short)
                avail = store[block]
                before = np.cumsum(avail, axis=0) - avail
                take = np.clip(unmet[d, short] - before, 0, avail)
                store[block] -= take
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

    def _learn_usage(self, sold: list[tuple[CellList, IntArray]], ecom: IntArray) -> None:
        """The ERP's trailing average of daily sales: ``h += (sold - h) / 28``, written as
        ``h * (1 - a) + a * sold`` so the sales are added on the cells that sold only."""
        alpha = 1.0 / HISTORY_WINDOW_DAYS
        nd, n_sku = self.net.n_dcs, self.net.n_skus
        history = self.history_mean
        history *= 1.0 - alpha
        history[:nd] += alpha * ecom
        stores = history[nd:].ravel()
        for where, qty in sold:
            np.add.at(stores, where.rows * n_sku + where.skus, alpha * qty)

    def _ledger_store_cells(
        self, day: int, listed: CellList, moves: list[tuple[Kind, IntArray, int]]
    ) -> None:
        """Sales (with vendor funding on promoted units) and lost sales on listed store cells,
        split by promotion; ``moves`` are (kind, units per listed cell, channel)."""
        if not len(listed.rows):
            return
        net, nd, ledger = self.net, self.net.n_dcs, self.ledger
        skus = listed.skus
        at = listed.rows * net.n_skus + skus
        regular, cost = net.price[skus], net.unit_cost[skus]
        # prices are per SKU except on the cells of active promotions (their discount)
        price = regular * (1.0 - self.depth[nd:].ravel()[at]) if self.active else regular
        lost_cost = self._lost_unit_cost(price, regular, cost)
        groups: list[tuple[bool, npt.NDArray[np.bool_] | None]] = [(False, None)]
        if self.active:
            promoted = self.promoted[nd:].ravel()[at]
            groups = [(False, ~promoted), (True, promoted)]
        for flag, mask in groups:
            where = listed if mask is None else listed.subset(mask)
            value = _masked(price, mask)
            for kind, qty, channel in moves:
                q = _masked(qty, mask)
                unit_cost = _masked(lost_cost if kind == Kind.LOST else cost, mask)
                ledger.listed(day, kind, where, q, value, unit_cost, nd, channel, flag)
                if flag and kind == Kind.SALE:  # vendor funding on the promoted units sold
                    funding = _masked(self.funding[nd:].ravel()[at], mask)
                    ledger.listed(day, Kind.FUNDING, where, q, funding, 0.0, nd, channel, flag)

    def _lost_unit_cost(
        self, price: FloatArray, regular: FloatArray, cost: FloatArray
    ) -> FloatArray:
        """What a lost sale costs per unit: the margin at the selling price, plus the goodwill
        penalty (a share of the regular price)."""
        return np.maximum(price - cost, 0.0) + self._lost_cost_share * regular

    def _ledger_dc_rows(self, day: int, ecom: IntArray, unmet: IntArray) -> None:
        """Ecommerce sold and lost at the DCs (their rows, a few of them: as arrays)."""
        net, nd, ledger = self.net, self.net.n_dcs, self.ledger
        price = net.price * (1.0 - self.depth[:nd]) if self.active else net.price
        lost_cost = self._lost_unit_cost(price, net.price, net.unit_cost)
        promo = self.promoted[:nd] if self.active else None
        ledger.cells(day, Kind.SALE, ecom, price, net.unit_cost, 0, 2, promo)
        if promo is not None:
            ledger.cells(day, Kind.FUNDING, ecom, self.funding[:nd], 0.0, 0, 2, promo, True)
        ledger.cells(day, Kind.LOST, unmet, price, lost_cost, 0, 2, promo)

    def _work(self, name: str, shape: tuple[int, ...], dtype: type = np.int64) -> np.ndarray:
        """A work array for one day's step, kept from day to day: a fresh 8 MB temporary costs
        more in page faults (the kernel zeroing new memory) than the arithmetic done in it."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._buffers[name] = np.empty(shape, dtype)
        return buf

    def _record_day(self, day: int, dem: DayDemand, sales: DaySales) -> None:
        net = self.net
        served = dem.by_location
        forecast = self.forecast.today(day)
        error = np.subtract(forecast, served, out=self._work("real", served.shape, np.float64))
        self.daily.append(
            {
                "day": day,
                "on_hand": self.on_hand.sum(axis=1),
                "on_hand_value": self.on_hand @ net.unit_cost,
                "holding_cost": self.on_hand @ net.holding_cost_per_day,
                "in_transit": self.in_transit.sum(axis=1),
                "on_order": self.on_order.sum(axis=1),
                "promo_on_hand": self.on_hand[:, self.promo_skus].sum(axis=1),
                "demand": served.sum(axis=1),
                "sold": sales.sold,
                "lost": sales.lost,
                "stockout_cells": sales.stockout_cells,
                "forecast": forecast.sum(axis=1),
                "abs_error": np.abs(error, out=error).sum(axis=1),
            }
        )

    # -- the policy's view ---------------------------------------------------------------------

    def snapshot(self, day: int, window: FloatArray) -> PlanningSnapshot:
        net = self.net
        return PlanningSnapshot(
            day=day,
            date=self.scenario.start_date + dt.timedelta(days=day),
            on_hand=self.on_hand.copy(),
            in_transit=self.in_transit.copy(),
            on_order=self.on_order.copy(),
            inbound=tuple(s.inbound for s in self.open.values()),
            forecast_mean=window,
            history_mean=self.history_mean.copy(),
            dc_throughput=self._throughput[: net.n_dcs] * self.dc_factor,
            seed=self.seed,
            forecast_run=self._forecast_run,
            **self._static,
        )

    def _static_view(self) -> dict[str, Any]:
        """The snapshot fields that never change during a run, built once (shared, not copied)."""
        net = self.net
        sup = net.suppliers
        return {
            "location_ids": tuple(net.locations.index),
            "sku_ids": tuple(net.skus.index),
            "n_dcs": net.n_dcs,
            "serving_dc": net.serving_dc,
            "forecast_dispersion": self.scenario.demand.dispersion,
            "baseline_mean": self.baseline_mean,
            "promotions": self.model.promotion_table(),
            "promotion_cells": {pc.promotion.id: pc.cells for pc in self.model.promotions},
            "sku_supplier": net.sku_supplier,
            "supplier_ids": tuple(sup.index),
            "lead_time_mean": sup["lead_mean"].to_numpy(np.float64),
            "lead_time_sd": sup["lead_sd"].to_numpy(np.float64),
            "expedite_lead_time": sup["expedite_lead_time"].to_numpy(np.int64),
            "supplier_capacity": sup["capacity"].to_numpy(np.float64),
            "moq": sup["moq"].to_numpy(np.float64),
            "fill_rate": sup["fill_rate"].to_numpy(np.float64),
            "lanes": net.lanes,
            "price": net.price,
            "unit_cost": net.unit_cost,
            "holding_cost": net.holding_cost_per_day,
            "lost_sale_cost": self._lost_unit_cost(net.price, net.price, net.unit_cost),
            "expedite_premium": self.scenario.costs.expedite_premium * net.unit_cost,
        }

    # -- execution ----------------------------------------------------------------------------

    def _execute(self, day: int, plan: Plan) -> IntArray:
        """Carry out approved lines within stock, capacity and MOQ; return units done per line."""
        executed = np.zeros(len(plan), np.int64)
        if not len(plan):
            return executed
        supply = (plan.kind == ActionKind.PURCHASE) | (plan.kind == ActionKind.EXPEDITE)
        if supply.any():
            executed[supply] = self._order(day, plan.select(supply))
        if (~supply).any():
            executed[~supply] = self._dispatch(day, plan.select(~supply))
        return executed

    def _order(self, day: int, plan: Plan) -> IntArray:
        net = self.net
        if (plan.destination >= net.n_dcs).any():
            raise PlanError(
                f"{plan.policy}: purchase orders must go to a DC (locations 0..{net.n_dcs - 1})"
            )
        if (plan.origin != net.sku_supplier[plan.sku]).any():
            raise PlanError(
                f"{plan.policy}: a purchase names a supplier that does not supply the SKU"
            )
        sup = net.suppliers
        qty = np.maximum(plan.qty, sup["moq"].to_numpy()[plan.origin]).astype(np.int64)
        qty = cut_to_limit(qty, plan.origin, sup["capacity"].to_numpy())
        lead_mean = sup["lead_mean"].to_numpy()
        expedite_lt = sup["expedite_lead_time"].to_numpy()
        order_cost = sup["order_cost"].to_numpy()
        premium = self.scenario.costs.expedite_premium * net.unit_cost
        day_idx = min(day, self.days - 1)
        # what each line's supplier will deliver (the day's fill fraction, rounding noise per SKU)
        fill = self.fill_fraction[plan.origin, day_idx]
        rounding = self.fill_rounding[day_idx, plan.sku]
        delivered = np.minimum(np.floor(qty * fill + rounding), qty).astype(np.int64)
        placed = qty > 0
        np.add.at(self.on_order, (plan.destination[placed], plan.sku[placed]), qty[placed])
        # one purchase order per kind x supplier x DC
        key = (plan.kind * len(sup) + plan.origin) * net.n_dcs + plan.destination
        groups = group_lines(key[placed])
        by_order = groups.lines(np.flatnonzero(placed))
        for a, b in zip(groups.starts[:-1], groups.starts[1:], strict=True):
            lines = by_order[a:b]
            first = lines[0]
            v, d = int(plan.origin[first]), int(plan.destination[first])
            expedite = plan.kind[first] == ActionKind.EXPEDITE
            if expedite:
                lead = planned = int(expedite_lt[v])
            else:
                lead = int(self.lead_days[v, day_idx]) + int(self.supplier_delay[v])
                planned = int(round(lead_mean[v]))
            sku = plan.sku[lines]
            shipment = Shipment(
                kind="expedite" if expedite else "purchase",
                origin=v,
                destination=d,
                planned_day=day + planned,
                sku=sku,
                qty=qty[lines],
                delivered=delivered[lines],
                premium=premium[sku] if expedite else np.zeros(len(sku)),
                order_cost=float(order_cost[v]),
            )
            self._schedule(shipment, lead)
        return qty

    def _dispatch(self, day: int, plan: Plan) -> IntArray:
        """Shipments and transfers: limited by origin stock, DC throughput and lane capacity."""
        net = self.net
        n_loc, n_sku = net.n_locations, net.n_skus
        # one group per (origin, destination) route, checked once each, not once per line
        groups = group_lines(plan.origin * n_loc + plan.destination)
        routes = [(int(k) // n_loc, int(k) % n_loc) for k in groups.keys]
        missing = [r for r in routes if r not in self.lanes]
        if missing:
            names = net.locations.index
            shown = ", ".join(f"{names[o]}->{names[d]}" for o, d in missing[:5])
            raise PlanError(f"{plan.policy}: no lane for {shown}")
        flat = plan.origin * n_sku + plan.sku
        qty = cut_to_limit(plan.qty, flat, self.on_hand.ravel())
        throughput = self._throughput.copy()
        throughput[: net.n_dcs] *= self.dc_factor
        qty = cut_to_limit(qty, plan.origin, np.minimum(throughput, 1e15))
        caps = np.array([self.lanes[r][2] for r in routes])
        executed = cut_to_limit(qty, groups.of_line(), caps)
        # whole units summed in floating point are exact; only the origins' rows can move
        moved = np.bincount(flat, executed).astype(np.int64)
        self.on_hand.ravel()[: len(moved)] -= moved
        # the executed lines by route, gathered once: each shipment takes slices (views)
        sent = groups.lines(executed) > 0
        if not sent.any():
            return executed
        bounds = np.zeros(len(routes) + 1, np.int64)
        np.cumsum(np.add.reduceat(sent, groups.starts[:-1], dtype=np.int64), out=bounds[1:])
        if groups.order is None and sent.all():  # the usual day: every line as it came
            sku_all, q_all, dest = plan.sku, executed, plan.destination
            first_kind = plan.kind[groups.first_lines()]
        else:
            line = np.flatnonzero(sent) if groups.order is None else groups.order[sent]
            sku_all, q_all, dest = plan.sku[line], executed[line], plan.destination[line]
            first_kind = plan.kind[line[np.minimum(bounds[:-1], len(line) - 1)]]
        route = np.repeat(np.arange(len(routes)), np.diff(bounds))
        value_all = q_all * net.unit_cost[sku_all]
        lane_cost = np.array([self.lanes[r][1] for r in routes])
        cost_all = q_all * lane_cost[route]
        premium = np.zeros(len(q_all))
        np.add.at(self.in_transit.ravel(), dest * n_sku + sku_all, q_all)
        origins, destinations = np.divmod(groups.keys, n_loc)
        self.ledger.shipments(
            day, Kind.DISPATCH, origins, destinations, bounds, sku_all, q_all, value_all, cost_all
        )
        # a route carries one kind (a DC->store lane ships, every other lane transfers)
        shipping = first_kind == ActionKind.SHIPMENT
        for g, (o, d) in enumerate(routes):
            a, b = bounds[g], bounds[g + 1]
            if a == b:
                continue
            transit = self.lanes[(o, d)][0]
            kind = "shipment" if shipping[g] else "transfer"
            sku, q = sku_all[a:b], q_all[a:b]
            self._schedule(Shipment(kind, o, d, day + transit, sku, q, q, premium[a:b]), transit)
        return executed

    def _schedule(self, shipment: Shipment, days: int) -> None:
        sid = next(self._ids)
        self.open[sid] = shipment
        event = self.env.timeout(max(days, 1) - 0.5)
        event.callbacks.append(functools.partial(self._arrive, sid))

    def _arrive(self, sid: int, _event: simpy.Event) -> None:
        """A shipment reaches its destination (start of a day): booked at that day's tick with
        the day's other receipts, before anything else of the day happens."""
        self._landed.append(self.open.pop(sid))

    def _receive(self, day: int) -> None:
        """Book the shipments that landed at the start of ``day``: stock, the pipeline they leave
        (on order or in transit) and the ledger, one vectorised step per kind of receipt."""
        landed, self._landed = self._landed, []
        for kinds, kind, pipeline in (
            (("purchase",), Kind.SUPPLIER_RECEIPT, self.on_order),
            (("expedite",), Kind.EXPEDITE_RECEIPT, self.on_order),
            (("shipment", "transfer"), Kind.RECEIPT, self.in_transit),
        ):
            group = [s for s in landed if s.kind in kinds]
            if group:
                self._book(day, group, kind, pipeline)

    def _book(self, day: int, group: list[Shipment], kind: Kind, pipeline: IntArray) -> None:
        sizes = np.array([len(s.sku) for s in group])
        bounds = np.zeros(len(group) + 1, np.int64)
        np.cumsum(sizes, out=bounds[1:])
        sku = np.concatenate([s.sku for s in group])
        qty = np.concatenate([s.qty for s in group])
        whole = all(s.delivered is s.qty for s in group)  # moves between locations lose nothing
        delivered = qty if whole else np.concatenate([s.delivered for s in group])
        where = np.array([s.destination for s in group])
        flat = np.repeat(where, sizes) * self.net.n_skus + sku
        np.add.at(self.on_hand.ravel(), flat, delivered)
        np.add.at(pipeline.ravel(), flat, -qty)
        value = delivered * self.net.unit_cost[sku]
        if kind == Kind.RECEIPT:
            origin = np.array([s.origin for s in group])
            self.ledger.shipments(
                day, kind, where, origin, bounds, sku, delivered, value, 0 * value
            )
            return
        nobody = np.full(len(group), -1)
        per_line = np.repeat([s.order_cost / len(s.sku) for s in group], sizes)
        cost = delivered * np.concatenate([s.premium for s in group]) + per_line
        self.ledger.shipments(day, kind, where, nobody, bounds, sku, delivered, value, cost)
        zero = 0 * value
        self.ledger.shipments(
            day, Kind.SHORT, where, nobody, bounds, sku, qty - delivered, zero, zero
        )

    def _record_decisions(self, day: int, approved: Plan, executed: IntArray, routed: Plan) -> None:
        """Append the day's decision lines (per-route sums when the ledger is in summary detail)."""
        for plan, status, done in ((approved, "approved", executed), (routed, "routed", None)):
            if not len(plan):
                continue
            cols: dict[str, np.ndarray] = {
                "kind": plan.kind,
                "origin": plan.origin,
                "destination": plan.destination,
                "sku": plan.sku,
                "proposed": plan.qty,
                "executed": np.zeros(len(plan), np.int64) if done is None else done,
                "value": plan.qty * plan.unit_cost,
                "confidence": plan.confidence,
                "reason": plan.reason,
                "lines": np.ones(len(plan), np.int64),
            }
            if self.ledger.detail == "summary":
                n_loc = self.net.n_locations
                groups = group_lines((plan.kind * n_loc + plan.origin) * n_loc + plan.destination)
                head = groups.starts[:-1]
                sums = {
                    c: np.add.reduceat(groups.lines(cols[c]), head)
                    for c in ("proposed", "executed", "value", "confidence")
                }
                n_lines = np.diff(groups.starts)
                first = groups.first_lines()
                cols = {c: cols[c][first] for c in ("kind", "origin", "destination", "reason")}
                cols.update(
                    proposed=sums["proposed"],
                    executed=sums["executed"],
                    value=sums["value"],
                    confidence=sums["confidence"] / n_lines,
                    lines=n_lines,
                    sku=np.full(len(first), -1),
                )
            reasons = np.asarray(plan.reasons, dtype=object)[cols.pop("reason")]
            self.decisions.append(
                {
                    **cols,
                    "day": np.full(len(reasons), day),
                    "reason": reasons,
                    "status": np.full(len(reasons), status),
                }
            )
