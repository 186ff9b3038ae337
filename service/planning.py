"""A promotion's plan from the events received: readiness, projected stockouts and the
recommended actions under governance, from one twin run of the scenario with the promotions
as published.

The run is ``twin run``'s twin of the scenario (the same policy, forecaster, seed and the whole
horizon's random draws, so every decision is the same) simulated through the promotion's last
day, which is all the plan and the projected stockouts need; two things come from the events:

- the POS lines replace the twin's own sales on the days and cells they cover when the
  forecaster's in-season sensing learns the promotions' uplift (a cell reported with no stock
  left that day counts as censored demand), so the forecasts from then on carry the sensed
  uplift;
- the latest reported stock positions replace the twin's on hand in the snapshot of the
  planning day (launch minus ``days_before``, or the last day events were reported for).

On the planning day the policy decides on that snapshot; its plan, evaluated by the governance
rules (the promotion's readiness feeding their risk gate), is the recommended actions. Without
events they are exactly the plan ``twin run`` records for that day.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import promotwin
from promotwin.demand.forecaster import Forecaster, make_forecaster
from promotwin.demand.model import DemandModel
from promotwin.demand.replay import read_history
from promotwin.policies.contract import (
    ActionKind,
    BoolArray,
    FloatArray,
    IntArray,
    Plan,
    PlanningSnapshot,
    Policy,
    RunContext,
    start_run,
)
from promotwin.policies.readiness import SHIFT_DAYS, ReadinessReport
from promotwin.policies.registry import make_policy
from promotwin.scenarios import load_scenario
from promotwin.scenarios.config_files import Problem
from promotwin.scenarios.network import Network, compile_network
from promotwin.scenarios.schema import Promotion, Scenario
from promotwin.twin.model import Twin
from promotwin.twin.outlook import _lost_units, _stockout_days, launch_readiness
from promotwin.twin.run import daily_frame
from promotwin.workflow.config import KINDS, load_config
from promotwin.workflow.rules import DECISIONS, PRIORITIES, evaluate

SalesRow = tuple[str, str, str, str, int]  # date, location, sku, channel, units
StockRow = tuple[str, str, str, int]  # date, location, sku, on hand (units)


@dataclass(frozen=True)
class Settings:
    """How the service plans: the same knobs as ``twin run`` and ``twin readiness``."""

    scenario: str  # built-in name or YAML file
    policy: str = "base-stock"
    seed: int = 0
    forecast: str = "plan"
    model: str | None = None
    governance: str = "default"
    quantile: float = 0.8
    days_before: int = 7


@dataclass(frozen=True)
class Job:
    """One re-plan: the promotions as published (id -> event body without ``version``), the
    one to plan, and the events received (picklable: it crosses into the planning process)."""

    settings: Settings
    promotion_id: str
    version: int
    promotions: Mapping[str, Mapping[str, Any]]
    sales: Sequence[SalesRow] = ()
    stock: Sequence[StockRow] = ()


@functools.cache
def base_scenario(ref: str) -> Scenario:
    return load_scenario(ref)


def with_promotions(scenario: Scenario, published: Mapping[str, Mapping[str, Any]]) -> Scenario:
    """``scenario`` with each published promotion replacing the one of its id (or added)."""
    given = {pid: Promotion.model_validate(body) for pid, body in published.items()}
    kept = tuple(given.pop(p.id, p) for p in scenario.promotions)
    return scenario.model_copy(update={"promotions": (*kept, *given.values())})


def unknown_ids(scenario: Scenario, p: Promotion) -> list[Problem]:
    """Ids and dates of a promotion event that the scenario's network and calendar lack."""
    stores = scenario.stores
    known = {
        "skus": {s.id for s in scenario.skus},
        "categories": {s.category for s in scenario.skus},
        "locations.stores": {s.id for s in stores},
        "locations.regions": {s.region for s in stores},
        "locations.clusters": {s.cluster for s in stores},
    }
    values = {
        "skus": p.skus,
        "categories": p.categories,
        "locations.stores": p.locations.stores,
        "locations.regions": p.locations.regions,
        "locations.clusters": p.locations.clusters,
    }
    out = [
        Problem(f"{where}.{i}", f"unknown id {x!r} in scenario {scenario.name}")
        for where, xs in values.items()
        for i, x in enumerate(xs)
        if x not in known[where]
    ]
    for name in ("start", "end"):
        date: dt.date = getattr(p, name)
        if not scenario.start_date <= date <= scenario.end_date:
            out.append(
                Problem(
                    name,
                    f"{date} is outside scenario {scenario.name}'s calendar "
                    f"{scenario.start_date}..{scenario.end_date}",
                )
            )
    return out


# -- the events, as arrays of the twin -----------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """POS sales per day on the twin's rows (a store's walk-in and pickup on the store, its
    ecommerce on its DC) and the latest stock positions reported, per day."""

    sold: dict[int, tuple[list[int], list[int], list[float]]]  # day -> rows, skus, units
    empty: dict[int, set[tuple[int, int]]]  # day -> cells reported with nothing on hand
    on_hand: dict[int, dict[tuple[int, int], int]]  # day -> cell -> units

    @property
    def last_day(self) -> int | None:
        days = [*self.sold, *self.on_hand]
        return max(days) if days else None

    def positions(self, as_of: int) -> dict[tuple[int, int], int]:
        """Each cell's latest position reported on or before ``as_of``."""
        out: dict[tuple[int, int], int] = {}
        for day in sorted(d for d in self.on_hand if d <= as_of):
            out.update(self.on_hand[day])
        return out


def observed(
    scenario: Scenario, net: Network, sales: Iterable[SalesRow], stock: Iterable[StockRow]
) -> Observed:
    loc, sku = net.location_index, net.sku_index
    serving = net.serving_dc
    sold: dict[tuple[int, int, int], float] = {}
    for date, location, item, channel, units in sales:
        row = loc[location]
        if channel == "ecommerce":
            row = int(serving[row])
        key = (scenario.day_of(dt.date.fromisoformat(date)), row, sku[item])
        sold[key] = sold.get(key, 0.0) + units
    by_day: dict[int, tuple[list[int], list[int], list[float]]] = {}
    for (day, row, k), total in sorted(sold.items()):
        rows, skus, values = by_day.setdefault(day, ([], [], []))
        rows.append(row)
        skus.append(k)
        values.append(total)
    empty: dict[int, set[tuple[int, int]]] = {}
    on_hand: dict[int, dict[tuple[int, int], int]] = {}
    for date, location, item, units in stock:
        day = scenario.day_of(dt.date.fromisoformat(date))
        cell = (loc[location], sku[item])
        on_hand.setdefault(day, {})[cell] = units
        if units == 0:
            empty.setdefault(day, set()).add(cell)
    return Observed(by_day, empty, on_hand)


class ObservedSales:
    """``inner`` (a sensing forecaster) told the POS sales instead of the twin's own on the days
    and cells they cover; cells reported empty that day count as sold out (censored)."""

    senses = True

    def __init__(self, inner: Forecaster, seen: Observed):
        self.inner = inner
        self.seen = seen
        self.name = inner.name
        self.model_file = inner.model_file

    def start(self, world: DemandModel, rng: np.random.Generator) -> None:
        self.inner.start(world, rng)

    def window(self, day: int, horizon: int) -> FloatArray:
        return self.inner.window(day, horizon)

    def today(self, day: int) -> FloatArray:
        return self.inner.today(day)

    @property
    def dispersion(self) -> float:
        return self.inner.dispersion

    def uplift_log_sd(self) -> float:
        return self.inner.uplift_log_sd()

    def observe(self, day: int, sales: FloatArray, stocked_out: BoolArray) -> None:
        reported = self.seen.sold.get(day)
        if reported is not None:
            rows, skus, units = reported
            sales = sales.astype(np.float64, copy=True)
            sales[rows, skus] = units
            stocked_out = stocked_out.copy()
            stocked_out[rows, skus] = False  # sold out only where reported empty (below)
            for row, k in self.seen.empty.get(day, ()):
                stocked_out[row, k] = True
        self.inner.observe(day, sales, stocked_out)

    def notes(self) -> tuple[str, ...]:
        return self.inner.notes()

    def cell_notes(self) -> tuple[IntArray | None, tuple[str, ...]]:
        return self.inner.cell_notes()


@dataclass
class PlanningDay:
    """A policy that runs ``inner`` unchanged except on day ``as_of``: there it hands it the
    snapshot with the reported stock positions, and keeps that snapshot (``horizon_days``
    long, for readiness) and the plan it made."""

    inner: Policy
    as_of: int
    horizon_days: int
    positions: dict[tuple[int, int], int]
    name: str = field(init=False)
    snapshot: PlanningSnapshot | None = None
    plan: Plan | None = None

    def __post_init__(self) -> None:
        self.name = self.inner.name  # the run id names the policy that decides

    def start(self, context: RunContext) -> None:
        self.snapshot, self.plan = None, None
        start_run(self.inner, context)

    def decide(self, s: PlanningSnapshot) -> Plan:
        if s.day == self.as_of:
            s = self._reported(s)
            self.snapshot = dataclasses.replace(s, forecast_mean=s.forecast_mean.copy())
        h = self.inner.horizon_days
        if s.horizon > h:
            s = dataclasses.replace(s, forecast_mean=s.forecast_mean[:h])
        plan = self.inner.decide(s)
        if s.day == self.as_of:
            self.plan = plan
        return plan

    def _reported(self, s: PlanningSnapshot) -> PlanningSnapshot:
        if not self.positions:
            return s
        on_hand = s.on_hand.copy()
        rows, skus = zip(*self.positions, strict=True)
        on_hand[list(rows), list(skus)] = list(self.positions.values())
        return dataclasses.replace(s, on_hand=on_hand)

    def recorded(self) -> tuple[PlanningSnapshot, Plan]:
        if self.snapshot is None or self.plan is None:
            raise RuntimeError(f"the run ended before day {self.as_of}: nothing recorded")
        return self.snapshot, self.plan


# -- the plan -----------------------------------------------------------------------------------


def plan_promotion(job: Job) -> dict[str, Any]:
    """Readiness, projected stockouts and governed recommended actions (JSON-ready)."""
    t0 = time.perf_counter()
    st = job.settings
    scenario = with_promotions(base_scenario(st.scenario), job.promotions)
    net = compile_network(scenario)
    promo = next(p for p in scenario.promotions if p.id == job.promotion_id)
    start, end = scenario.day_of(promo.start), scenario.day_of(promo.end)
    seen = observed(scenario, net, job.sales, job.stock)
    policy = make_policy(st.policy)
    as_of = max(0, start - max(st.days_before, 1))
    if seen.last_day is not None:
        as_of = max(as_of, seen.last_day)
    as_of = min(as_of, scenario.horizon_days - 1)
    horizon = max(policy.horizon_days, end - as_of + 1 + max(SHIFT_DAYS))
    day = PlanningDay(policy, as_of, horizon, seen.positions(as_of))
    forecaster = ObservedSales(make_forecaster(st.forecast, st.model, sensing=True), seen)
    twin = run_through(scenario, day, st.seed, forecaster, max(as_of, end))
    snap, plan = day.recorded()
    report = launch_readiness(scenario, promo.id, snap, st.quantile, net)
    ledger = twin.ledger.frame()
    daily = daily_frame(twin.daily, list(twin.net.locations.index))
    return {
        "promotion": promo.id,
        "version": job.version,
        "run_id": plan_id(scenario, st, twin),
        "scenario": scenario.name,
        "policy": st.policy,
        "forecaster": twin.forecast.name,
        "seed": st.seed,
        "as_of": snap.date.isoformat(),
        "as_of_day": snap.day,
        "readiness": _readiness(report),
        "projected_stockouts": {
            "lost_units": _records(_lost_units(ledger, net, start, end)),
            "stockout_days": _records(_stockout_days(daily, net, start, end)),
        },
        "actions": actions(plan, snap, {promo.id: report.score / 100}, st.governance),
        "sensing": list(twin.forecast.notes()),
        "seconds": round(time.perf_counter() - t0, 3),
    }


class _Simulated(Exception):
    """Raised after the last day a plan needs: the rest of the horizon is not simulated."""


def run_through(
    scenario: Scenario, policy: Policy, seed: int, forecaster: Forecaster, last_day: int
) -> Twin:
    """The twin of ``twin run`` (the whole horizon's random draws, so every decision is the
    same) simulated through ``last_day`` only: the plan and the promotion's stockouts need
    nothing later (on appliance_promo 49 of 84 days, ~40% of the plan's CPU saved)."""
    history = read_history(scenario.demand.history) if scenario.demand.history else None
    twin = Twin(scenario, policy, seed, history=history, forecaster=forecaster)

    def stop(done: int, days: int) -> None:
        if done > last_day:
            raise _Simulated

    with contextlib.suppress(_Simulated):
        twin.run(stop)
    return twin


def plan_id(scenario: Scenario, st: Settings, twin: Twin) -> str:
    """What the plan was computed from (scenario, policy, seed, forecaster, code version)."""
    key = f"{scenario.content_hash()}|{st.policy}|{st.seed}|{twin.days}|{promotwin.__version__}"
    model = hashlib.sha256(Path(st.model).read_bytes()).hexdigest()[:12] if st.model else "-"
    key += f"|{twin.forecast.name}|{model}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _records(frame: Any) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in r.items()} for r in frame.to_dict("records")]


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _readiness(r: ReadinessReport) -> dict[str, Any]:
    out = dataclasses.asdict(r)
    out["mitigations"] = [dataclasses.asdict(m) for m in r.mitigations]
    out["reasons"] = [dataclasses.asdict(x) for x in r.reasons]
    return out


def actions(
    plan: Plan,
    snap: PlanningSnapshot,
    readiness: Mapping[str, float],
    governance: str,
) -> list[dict[str, Any]]:
    """The plan's lines with ids, each with the governance rules' decision and why."""
    config = load_config(governance)
    risk = config.risk.model_copy(update={"readiness": {**config.risk.readiness, **readiness}})
    ev = evaluate(plan, snap, config.model_copy(update={"risk": risk}))
    supply = (plan.kind == ActionKind.PURCHASE) | (plan.kind == ActionKind.EXPEDITE)
    out = []
    for i in range(len(plan)):
        o = int(plan.origin[i])
        out.append(
            {
                "line": i,
                "kind": KINDS[int(plan.kind[i])],
                "origin": snap.supplier_ids[o] if supply[i] else snap.location_ids[o],
                "destination": snap.location_ids[int(plan.destination[i])],
                "sku": snap.sku_ids[int(plan.sku[i])],
                "qty": int(plan.qty[i]),
                "unit_cost": float(plan.unit_cost[i]),
                "confidence": float(plan.confidence[i]),
                "day": snap.day,
                "date": snap.date.isoformat(),
                "reason": plan.reasons[int(plan.reason[i])] if plan.reasons else "",
                "decision": DECISIONS[int(ev.decision[i])],
                "rules": str(ev.rules[i]),
                "governance_reason": str(ev.reason[i]),
                "owner": str(ev.owner[i]),
                "priority": PRIORITIES[int(ev.priority[i])],
                "value": float(ev.value[i]),
                "value_at_risk": float(ev.value_at_risk[i]),
                "expires_day": snap.day + config.routing.expiry_days,  # if routed
            }
        )
    return out
