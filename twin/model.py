"""The twin: the network's state and the SimPy processes that change it, one day at a time.

Time: arrivals fire at integer times ``t`` (start of day t); the tick runs at ``t + 0.5``. One
day (``Twin.tick``) reads top to bottom through four more files:

1. receipts: the shipments that landed at ``t``, booked together (``execution.receive``);
2. demand for every cell, from the generator or replayed history;
3. fulfilment with the day's prices (``fulfilment.fulfil``);
4. the policy's snapshot, ``policy.decide()``, governance (``review``);
5. execution within stock, capacity and MOQ (``execution.execute``), scheduling the arrivals;
6. governance records what was carried out; the day's record of end-of-day stock, taken after
   the dispatch so holding cost is charged on what stays overnight, and the decision lines
   (``records``).

The ledger (``ledger``) gets every unit movement on the way.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import simpy

from promotwin.arrays import FloatArray, IntArray, WorkBuffers
from promotwin.demand.forecaster import Forecaster, OracleForecaster, PromotionForecastScore
from promotwin.demand.model import DayDemand, DemandModel, PromotionCells, group_streams
from promotwin.demand.replay import ReplayDemand
from promotwin.policies.contract import (
    InboundShipment,
    PlanningSnapshot,
    Policy,
    RunContext,
    read_only,
    start_run,
)
from promotwin.policies.forecast_terms import ForecastTerms, RollingTerms
from promotwin.scenarios.network import Network, compile_network
from promotwin.scenarios.schema import Scenario
from promotwin.twin.execution import (
    Limits,
    PlanError,
    Shipment,
    Stock,
    SupplierTerms,
    draw_supplier_outcomes,
    execute,
    lane_map,
    receive,
)
from promotwin.twin.fulfilment import (
    FulfilmentRules,
    Pricing,
    fulfil,
    lost_unit_cost,
    price_cells,
    sfs_stores,
)
from promotwin.twin.kpis import RunForecastScore
from promotwin.twin.ledger import Detail, Kind, Ledger
from promotwin.twin.records import day_record, decision_lines
from promotwin.workflow.governance import AutoApprove, Governance

SKU_DETAIL_MAX_CELLS = 200_000  # above this the ledger keeps per-location summaries

__all__ = ["PlanError", "Shipment", "Twin"]


# -- processes: plain generator functions taking their dependencies (SimPy's own style) --------


def daily_ticks(
    env: simpy.Environment,
    tick: Callable[[int], None],
    days: int,
    progress: Callable[[int, int], None] | None,
) -> Generator[simpy.Event, Any, None]:
    """Run ``tick(day)`` at the middle of each day, after the day's arrivals."""
    yield env.timeout(0.5)
    for day in range(days):
        tick(day)
        if progress is not None:
            progress(day + 1, days)
        yield env.timeout(1)


def promotion(
    env: simpy.Environment,
    pc: PromotionCells,
    active: list[PromotionCells],
    reprice: Callable[[], None],
) -> Generator[simpy.Event, Any, None]:
    """A promotion is in ``active`` from its first to its last day; prices follow."""
    yield env.timeout(pc.start_day)
    active.append(pc)
    reprice()
    yield env.timeout(pc.end_day - pc.start_day + 1)
    active.remove(pc)
    reprice()


def disruption(
    env: simpy.Environment, first_day: int, last_day: int, switch: Callable[[bool], None]
) -> Generator[simpy.Event, Any, None]:
    """``switch(True)`` at the start of ``first_day`` (day 0 at the earliest), ``switch(False)``
    after ``last_day``."""
    first = max(0, first_day)
    yield env.timeout(first)
    switch(True)
    yield env.timeout(last_day - first + 1)
    switch(False)


def schedule_arrivals(
    env: simpy.Environment,
    open_shipments: dict[int, Shipment],
    landed: list[Shipment],
    sids: list[int],
    arrive_at: float,
) -> None:
    """At ``arrive_at`` (a day's start), move the open shipments ``sids`` (sent together,
    landing together) to ``landed``, in the order sent, for that day's tick to book with the
    day's other receipts. A callback on one timeout, not a process: one event per batch of
    shipments a tick sends that land on the same day (a tick's shipments on 1-day lanes are
    one event, not one each)."""

    def land(_event: simpy.Event) -> None:
        landed.extend(open_shipments.pop(sid) for sid in sids)

    env.timeout(arrive_at - env.now).callbacks.append(land)


def _seed_sequences(seed: int) -> dict[str, np.random.SeedSequence]:
    """The run's random sources (the hidden truth's draws have their own, in DemandModel);
    the per-SKU draws of each are spawned per SKU group from these (``group_streams``)."""
    names = ("demand", "lead_time", "fill", "forecast")
    return dict(zip(names, np.random.SeedSequence(seed).spawn(len(names)), strict=True))


@dataclass(frozen=True)
class DayForecast:
    """The forecast a tick uses: the policy's window (days ``day+1..day+H``) and the forecast
    that was made for ``day`` itself (for the forecast-error record)."""

    window: FloatArray  # [H, L, S]
    terms: ForecastTerms
    today: FloatArray  # [L, S]


class Twin:
    """The network's state, composed with the demand, the policy, governance and the records."""

    def __init__(
        self,
        scenario: Scenario,
        policy: Policy,
        seed: int = 0,
        governance: Governance | None = None,
        days: int | None = None,
        ledger_detail: Detail | None = None,
        history: pd.DataFrame | None = None,
        forecaster: Forecaster | None = None,
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
        seeds = _seed_sequences(seed)
        self.rng = {name: np.random.default_rng(seq) for name, seq in seeds.items()}
        self.model = DemandModel(scenario, net, truth_seed=seed)
        self.demand_streams = self.model.streams(seeds["demand"])
        groups = self.model.groups
        self.replay: ReplayDemand | None = None
        if history is not None:
            self.replay = ReplayDemand(history, scenario, net)
        self.forecast: Forecaster = forecaster or OracleForecaster()
        self.forecast.start(self.model, self.rng["forecast"])
        self.forecast_score = PromotionForecastScore.for_model(self.model, scenario.warmup_days)
        regions = net.locations["region"].astype(str).tolist()
        self.run_forecast_score = RunForecastScore(regions, scenario.warmup_days)
        self.suppliers = draw_supplier_outcomes(
            net.suppliers,
            self.days,
            n_sku,
            self.rng["lead_time"],
            self.rng["fill"],
            list(zip(self.model.group_columns, group_streams(seeds["fill"], groups), strict=True)),
        )

        nd = net.n_dcs
        mean_weekday = float(np.mean(scenario.demand.weekday))
        self.baseline_mean: FloatArray = self.model.base * mean_weekday
        init = scenario.initial_inventory
        cover = np.where(np.arange(n_loc)[:, None] < nd, init.dc_days, init.store_days)
        dc_total = self.baseline_mean[:nd].copy()
        store_mean = self.baseline_mean[nd:]
        if net.has_direct:  # a DC holds no opening stock for the stores it does not replenish
            store_mean = store_mean * net.dc_replenished[nd:, None]
        np.add.at(dc_total, net.serving_dc[nd:], store_mean)
        opening = np.vstack([dc_total, self.baseline_mean[nd:]]) * cover
        self.stock = Stock(
            on_hand=np.rint(opening).astype(np.int64),
            in_transit=np.zeros((n_loc, n_sku), np.int64),
            on_order=np.zeros((n_loc, n_sku), np.int64),
        )
        self.history_mean: FloatArray = self.baseline_mean.copy()
        self.open: dict[int, Shipment] = {}  # in flight, by id (the order they were sent in)
        self.landed: list[Shipment] = []  # arrived since the last tick, booked by the tick
        self._ids = itertools.count()

        self.active: list[PromotionCells] = []
        self.pricing: Pricing = price_cells(self.active, (n_loc, n_sku))
        self.dc_factor: FloatArray = np.ones(nd)
        self.supplier_delay: IntArray = np.zeros(len(net.suppliers), np.int64)
        self.lanes = lane_map(net.lanes)
        self._supplier_terms = SupplierTerms.of(net.suppliers)
        self._limits: Limits | None = None
        self.fulfilment = FulfilmentRules(
            net=net,
            ship_from_store=(
                sfs_stores(net) if scenario.fulfilment.ecommerce == "dc_then_store" else None
            ),
            lost_sale_penalty=scenario.costs.lost_sale_penalty,
        )
        promo_skus = np.zeros(n_sku, bool)
        for pc in self.model.promotions:
            promo_skus |= pc.cells.any(axis=0)
        self.promo_skus = promo_skus
        self.work = WorkBuffers()
        self.daily: list[dict[str, Any]] = []
        self.decisions: list[dict[str, np.ndarray]] = []
        self.exceptions = 0
        self._static = self._static_view()
        # a date's forecast row does not change while the date is in the window (unless the
        # forecaster senses), so its terms (variance, echelon sums) are computed once, when it
        # enters (see forecast_for)
        self.forecast_terms = self._rolling_terms()
        self._throughput = net.locations["throughput"].to_numpy(np.float64)  # [L] units a day

        self.env = simpy.Environment()
        self.ledger.cells(0, Kind.INITIAL, self.on_hand, net.unit_cost, 0.0)

    def _rolling_terms(self) -> RollingTerms:
        return RollingTerms(
            self._static["serving_dc"],
            self.net.n_dcs,
            self._static["forecast_dispersion"],
            self._static["dc_replenished"],
        )

    @property
    def on_hand(self) -> IntArray:
        return self.stock.on_hand

    @property
    def in_transit(self) -> IntArray:
        return self.stock.in_transit

    @property
    def on_order(self) -> IntArray:
        return self.stock.on_order

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
            self._schedule(shipment, arrive)

    def run(self, progress: Callable[[int, int], None] | None = None) -> None:
        env, scenario, net = self.env, self.scenario, self.net
        start_run(self.policy, RunContext(self.seed, self.days, scenario.start_date))
        for pc in self.model.promotions:
            env.process(promotion(env, pc, self.active, self._reprice))
        for drop in scenario.disruptions.dc_capacity_drops:
            switch = functools.partial(self._dc, net.location_index[drop.dc], drop.factor)
            env.process(
                disruption(env, scenario.day_of(drop.start), scenario.day_of(drop.end), switch)
            )
        for delay in scenario.disruptions.supplier_delays:
            v = net.supplier_index[delay.supplier]
            switch = functools.partial(self._delay, v, delay.extra_days)
            env.process(
                disruption(env, scenario.day_of(delay.start), scenario.day_of(delay.end), switch)
            )
        env.process(daily_ticks(env, self.tick, self.days, progress))
        env.run(until=self.days)

    def _dc(self, d: int, factor: float, on: bool) -> None:
        self.dc_factor[d] = factor if on else 1.0
        self._limits = None  # today's throughput changed

    def _delay(self, v: int, extra: int, on: bool) -> None:
        self.supplier_delay[v] = extra if on else 0

    def _reprice(self) -> None:
        self.pricing = price_cells(self.active, self.on_hand.shape)

    # -- one day ---------------------------------------------------------------------------------

    def tick(self, day: int) -> None:
        net = self.net
        receive(day, self.landed, self.stock, net.unit_cost, self.ledger)
        self.landed.clear()
        demand = self.demand(day)
        before = self.on_hand.copy() if self.forecast.senses else None
        sales = fulfil(
            day,
            demand,
            self.on_hand,
            self.history_mean,
            self.pricing,
            self.fulfilment,
            self.ledger,
        )
        if before is not None:  # each cell's own channels sell first: min(demand, stock)
            sold = np.minimum(demand.by_location, before)
            self.forecast.observe(day, sold, sold >= before)  # sold out: demand censored
        forecast = self.forecast_for(day)
        self.forecast_score.add(day, forecast.today, demand.by_location)
        self.run_forecast_score.add(day, forecast.today, demand.by_location)
        snapshot = self.snapshot(day, forecast.window, forecast.terms)
        plan = self.policy.decide(snapshot)
        review = self.governance.review(plan, snapshot)
        self.exceptions += len(review.routed)
        executed, scheduled = execute(day, review.approved, self.limits(), self.stock, self.ledger)
        self._schedule_all([(shipment, day + max(days, 1)) for shipment, days in scheduled])
        self.governance.record_execution(day, review.approved, executed)
        # after the day's dispatch: stock (and its holding cost) is what stays overnight
        self.daily.append(
            day_record(
                day,
                net,
                self.stock,
                self.promo_skus,
                demand.by_location,
                sales,
                forecast.today,
                self.work,
            )
        )
        self.decisions += decision_lines(
            day, review.approved, executed, review.routed, self.ledger.detail, net.n_locations
        )

    def forecast_for(self, day: int) -> DayForecast:
        """The forecast seam: the window the policy plans on (made after today's sales,
        read-only), its per-date terms, and the forecast made for today."""
        window = read_only(self.forecast.window(day, self.policy.horizon_days))
        if self.forecast.senses:  # sensing revises dates already in the window: fresh terms
            self.forecast_terms = self._rolling_terms()
        return DayForecast(
            window=window,
            terms=self.forecast_terms.window(day + 1, window),
            today=self.forecast.today(day),
        )

    def demand(self, day: int) -> DayDemand:
        if self.replay is not None:
            return self.replay.sample(day)
        return self.model.sample(day, self.demand_streams)

    def limits(self) -> Limits:
        """Today's physical limits for execution (disruptions applied): made again only when a
        DC's capacity changes (the supplier delays are read from the live array)."""
        if self._limits is None:
            throughput = self._throughput.copy()
            throughput[: self.net.n_dcs] *= self.dc_factor
            self._limits = Limits(
                net=self.net,
                lanes=self.lanes,
                suppliers=self.suppliers,
                expedite_premium=self._static["expedite_premium"],
                throughput=throughput,
                supplier_delay=self.supplier_delay,
                terms=self._supplier_terms,
            )
        return self._limits

    def _schedule(self, shipment: Shipment, arrive_at: float) -> None:
        self._schedule_all([(shipment, arrive_at)])

    def _schedule_all(self, arrivals: list[tuple[Shipment, float]]) -> None:
        """Schedule shipments sent together: one event per day on which some of them land."""
        by_day: dict[float, list[int]] = {}
        for shipment, arrive_at in arrivals:
            sid = next(self._ids)
            self.open[sid] = shipment  # in the order sent: what snapshots list as inbound
            by_day.setdefault(arrive_at, []).append(sid)
        for arrive_at, sids in by_day.items():
            schedule_arrivals(self.env, self.open, self.landed, sids, arrive_at)

    # -- the policy's view -----------------------------------------------------------------------

    def snapshot(
        self, day: int, window: FloatArray, terms: ForecastTerms | None = None
    ) -> PlanningSnapshot:
        """What the policy sees at the end of ``day`` (read-only arrays; stock copied)."""
        net = self.net
        note, notes = self.forecast.cell_notes() if self.forecast.senses else (None, ())
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
            forecast_terms=terms,
            forecast_note=note,
            forecast_notes=notes,
            **self._static,
        )

    def _static_view(self) -> dict[str, Any]:
        """The snapshot fields that never change during a run, built once, read-only (shared,
        not copied)."""
        net = self.net
        sup = net.suppliers
        static: dict[str, Any] = {
            "location_ids": tuple(net.locations.index),
            "sku_ids": tuple(net.skus.index),
            "n_dcs": net.n_dcs,
            "serving_dc": net.serving_dc,
            "forecast_dispersion": self.forecast.dispersion,
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
            "lost_sale_cost": lost_unit_cost(
                net.price, net.price, net.unit_cost, self.scenario.costs.lost_sale_penalty
            ),
            "expedite_premium": self.scenario.costs.expedite_premium * net.unit_cost,
            # direct-store delivery: None when no store has it (the DC-only snapshot)
            "direct": net.direct if net.has_direct else None,
            "dc_replenished": net.dc_replenished if net.has_direct else None,
        }
        static["promotion_cells"] = {k: read_only(v) for k, v in static["promotion_cells"].items()}
        return {k: read_only(v) if isinstance(v, np.ndarray) else v for k, v in static.items()}
