"""The perfect-information bound: hand-solved on one cell, and below every policy on random
small instances (same seed: the same demand)."""

from __future__ import annotations

import numpy as np
import pytest

from promotwin.policies.hindsight import hindsight_bound
from promotwin.policies.registry import make_policy
from promotwin.scenarios.network import compile_network
from promotwin.testing.scenarios import single_cell_scenario, small_scenario
from promotwin.twin import simulate
from promotwin.twin.history import hindsight_inputs


def test_one_cell_by_hand() -> None:
    """A store fed by a DC with endless stock: every unit is sold (a lost unit costs 9, moving
    one 0.5), each unit beyond the store's opening stock is moved once, and the network holds
    the opening stock less what has sold: holding h * sum_t (I0 - sold through t)."""
    scenario = single_cell_scenario(days=20)
    inp = hindsight_inputs(scenario, seed=3)
    demand = inp.demand[:, 1, 0]  # the store's row
    store_opening = inp.opening[1, 0]
    assert demand[0] <= store_opening < demand.sum()  # no forced loss on day 0, some to move
    h = compile_network(scenario).holding_cost_per_day[0]
    total_opening = inp.opening[:, 0].sum()
    holding = h * (total_opening - np.cumsum(demand)).sum()
    transport = 0.5 * (demand.sum() - store_opening)
    bound = hindsight_bound(inp)
    assert bound.lost_sales_units == pytest.approx(0.0, abs=1e-6)
    assert bound.transport_cost == pytest.approx(transport, rel=1e-6)
    assert bound.holding_cost == pytest.approx(holding, rel=1e-6)


@pytest.mark.parametrize("instance", range(4))
def test_no_policy_beats_the_bound(instance: int) -> None:
    rng = np.random.default_rng(instance)
    scenario = small_scenario(
        horizon_days=int(rng.integers(20, 40)),
        warmup_days=int(rng.integers(0, 8)),
        synthetic={
            "stores": int(rng.integers(2, 5)),
            "dcs": int(rng.integers(1, 3)),
            "skus": int(rng.integers(2, 6)),
            "suppliers": 2,
            "categories": 2,
            "promotions": 1,
            "seed": int(rng.integers(0, 1000)),
        },
    )
    seed = int(rng.integers(0, 100))
    bound = hindsight_bound(hindsight_inputs(scenario, seed))
    policies = ["order-point", "base-stock", "static-forecast"]
    if instance == 0:
        policies.append("optimizer")
    for name in policies:
        cost = simulate(scenario, make_policy(name), seed).kpis["total_cost"]
        assert bound.total_cost <= cost + 1e-6, (name, bound.total_cost, cost)
    assert bound.total_cost > 0
