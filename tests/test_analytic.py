"""The twin against closed-form inventory results: service (below) and cost (further down).

One store, one SKU, Poisson demand (negative binomial with a huge k), a 1-day lane from a DC
that never runs out, and a base-stock policy reviewing daily. Each morning the store holds
exactly S units (yesterday's order-up-to arrives), so with lost sales:
    fill rate           = E[min(S, D)] / lambda
    end-of-day on hand  = E[(S - D)+]
with D ~ Poisson(lambda) and S = ceil(lambda + z * sqrt(lambda)) (the policy's own rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy.stats import nbinom, norm, poisson

from promotwin.policies.contract import ActionKind, Plan, PlanBuilder, PlanningSnapshot
from promotwin.policies.heuristics import BaseStockPolicy
from promotwin.testing.scenarios import single_cell_scenario, supplier_dc_store_scenario
from promotwin.twin import simulate
from promotwin.twin.ledger import Kind

LAMBDA = 4.0
DAYS = 3000
WARMUP = 5


@pytest.mark.parametrize("service_level", [0.8, 0.95])
def test_base_stock_matches_closed_form(service_level: float) -> None:
    scenario = single_cell_scenario(DAYS).model_copy(update={"warmup_days": WARMUP})
    result = simulate(scenario, BaseStockPolicy(service_level=service_level), seed=11)

    level = int(np.ceil(LAMBDA + norm.ppf(service_level) * np.sqrt(LAMBDA)))
    d = np.arange(0, 200)
    pmf = poisson.pmf(d, LAMBDA)
    fill_exact = float((np.minimum(level, d) * pmf).sum() / LAMBDA)
    on_hand_exact = float((np.maximum(level - d, 0) * pmf).sum())

    daily = result.daily[(result.daily["location"] == "S1") & (result.daily["day"] >= WARMUP)]
    sold, demand = daily["sold"].to_numpy(), daily["demand"].to_numpy()
    fill = sold.sum() / demand.sum()
    # standard error of a ratio estimator over independent days
    se_fill = np.std(sold - fill * demand, ddof=1) / np.sqrt(len(daily)) / demand.mean()
    on_hand = daily["on_hand"].to_numpy()
    se_on_hand = on_hand.std(ddof=1) / np.sqrt(len(daily))

    assert abs(fill - fill_exact) < 4 * se_fill, (fill, fill_exact, se_fill)
    assert abs(on_hand.mean() - on_hand_exact) < 4 * se_on_hand, (on_hand.mean(), on_hand_exact)
    # and the KPI the twin reports is the same number, from the ledger
    assert np.isclose(result.kpis["fill_rate"], fill, atol=1e-6)


# -- cost: one supplier -> one DC -> one store, order-up-to S, lost sales ----------------------
#
# An order placed at the end of day t is on the shelf at the start of day t+2 (1 day to the DC,
# which ships it on the day it lands, 1 day to the store). With a = the store's stock at the
# start of a day, the day ends with (a - D)+ on the shelf and the order-up-to rule makes the
# next morning's stock a' = S - min(a, D): a Markov chain on 0..S, solved exactly below. Holding
# is charged on end-of-day stock ((a - D)+ at the store, nothing at the DC, which ships all it
# receives the same day), lost sales on (D - a)+.

MEAN, VARIANCE = 50.0, 100.0
HOLDING, LOST_SALE = 1.0, 10.0
COST_DAYS, COST_WARMUP, BATCH_DAYS = 3600, 10, 50


@dataclass
class EchelonOrderUpTo:
    """Orders S minus the echelon inventory position from the supplier each day; the DC ships
    everything it holds to the store."""

    level: int
    name: str = "echelon-order-up-to"
    horizon_days: int = 1

    def decide(self, s: PlanningSnapshot) -> Plan:
        plan = PlanBuilder(self.name)
        position = int(s.on_hand.sum() + s.in_transit.sum() + s.on_order.sum())
        plan.add(ActionKind.PURCHASE, 0, 0, 0, self.level - position, s.unit_cost[0], 1.0, "S")
        plan.add(ActionKind.SHIPMENT, 0, 1, 0, int(s.on_hand[0, 0]), 0.0, 1.0, "all")
        return plan.build()


def exact_daily_costs(level: int) -> tuple[float, float]:
    """Long-run holding and lost-sale cost per day of the chain a' = S - min(a, D)."""
    p = MEAN / VARIANCE
    d = np.arange(0, int(MEAN + 40 * np.sqrt(VARIANCE)))
    pmf = nbinom.pmf(d, MEAN * p / (1 - p), p)
    a = np.arange(level + 1)[:, None]
    move = np.zeros((level + 1, level + 1))
    for start in range(level + 1):
        np.add.at(move[start], level - np.minimum(start, d), pmf)
    stationary = np.linalg.lstsq(
        np.vstack([move.T - np.eye(level + 1), np.ones(level + 1)]),
        np.r_[np.zeros(level + 1), 1.0],
        rcond=None,
    )[0]
    holding = HOLDING * (np.maximum(a - d, 0) * pmf).sum(axis=1)
    lost = LOST_SALE * (np.maximum(d - a, 0) * pmf).sum(axis=1)
    return float(stationary @ holding), float(stationary @ lost)


def test_exact_chain_reproduces_the_published_optimum() -> None:
    """The chain itself against the numbers in issue 19 (S = 117 at 25.16 a day)."""
    curve = {s: sum(exact_daily_costs(s)) for s in range(112, 123)}
    assert min(curve, key=curve.__getitem__) == 117
    assert [round(curve[s], 2) for s in (115, 117, 120)] == [25.27, 25.16, 25.66]


def _batch_se(series: np.ndarray) -> float:
    """Standard error of a mean of autocorrelated days, from means of 50-day batches."""
    n = len(series) // BATCH_DAYS
    batches = series[: n * BATCH_DAYS].reshape(n, BATCH_DAYS).mean(axis=1)
    return float(batches.std(ddof=1) / np.sqrt(n))


@pytest.mark.parametrize("level", [108, 117, 126])
def test_total_cost_matches_the_exact_chain(level: int) -> None:
    scenario = supplier_dc_store_scenario(COST_DAYS, MEAN, VARIANCE, HOLDING, LOST_SALE)
    scenario = scenario.model_copy(update={"warmup_days": COST_WARMUP})
    result = simulate(scenario, EchelonOrderUpTo(level), seed=3)
    kpis = result.kpis
    days = kpis["days"]
    exact_holding, exact_lost = exact_daily_costs(level)

    daily = result.daily[result.daily["day"] >= COST_WARMUP]
    holding = daily.groupby("day")["holding_cost"].sum().to_numpy()
    lost_rows = result.ledger[(result.ledger["kind"] == int(Kind.LOST))]
    lost = (
        lost_rows.groupby("day")["cost"].sum().reindex(np.unique(daily["day"]), fill_value=0.0)
    ).to_numpy()
    # the per-day series are the KPIs' own parts, and the parts make the total
    assert np.isclose(holding.sum(), kpis["holding_cost"]) and np.isclose(
        lost.sum(), kpis["lost_sale_cost"]
    )
    assert kpis["ordering_cost"] == kpis["transport_cost"] == kpis["expedite_cost"] == 0.0
    assert np.isclose(kpis["holding_cost"] + kpis["lost_sale_cost"], kpis["total_cost"])

    for got, exact, series in (
        (kpis["holding_cost"] / days, exact_holding, holding),
        (kpis["lost_sale_cost"] / days, exact_lost, lost),
        (kpis["total_cost"] / days, exact_holding + exact_lost, holding + lost),
    ):
        se = _batch_se(series)
        assert abs(got - exact) < 4 * se, (level, got, exact, se)
