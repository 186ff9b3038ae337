"""The optimizer inside the twin: it beats today's replenishment on the reference promotion."""

from __future__ import annotations

import numpy as np
import pytest

from promotwin.policies.heuristics import OrderPointPolicy, StaticForecastPolicy
from promotwin.policies.optimizer import OptimizerPolicy
from promotwin.testing.scenarios import Checking, ledger_stock
from promotwin.twin import simulate
from promotwin.twin.model import Twin

DAYS = 50  # the promotion runs on days 28-48
SEEDS = (0, 1)  # benchmarks/compare_policies.py runs 10 seeds over the whole horizon

# six 50-day optimizer-and-baseline runs (~160 s) and a 32-day optimizer run (~40 s): CI runs them
# (`make test-slow`); `make test` leaves them out to stay under 5 minutes
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(appliance_module):  # type: ignore[no-untyped-def]
    out = {}
    for seed in SEEDS:
        for policy in (OptimizerPolicy(), OrderPointPolicy(), StaticForecastPolicy()):
            out[policy.name, seed] = simulate(appliance_module, policy, seed, days=DAYS).kpis
    return out


@pytest.fixture(scope="module")
def appliance_module():  # type: ignore[no-untyped-def]
    from promotwin.scenarios import load_scenario

    return load_scenario("appliance_promo")


@pytest.mark.parametrize("baseline", ["order-point", "static-forecast"])
def test_fewer_promotion_lost_sales_at_no_higher_cost(runs, baseline: str) -> None:  # type: ignore[no-untyped-def]
    for seed in SEEDS:
        opt, base = runs["optimizer", seed], runs[baseline, seed]
        assert opt["promo_lost_sales_units"] < base["promo_lost_sales_units"], seed
        assert opt["total_cost"] <= base["total_cost"], seed


def test_units_conserved_with_transfers_and_expedites(appliance_module) -> None:  # type: ignore[no-untyped-def]
    checker = Checking(OptimizerPolicy())
    twin = Twin(appliance_module, checker, seed=4, days=32)
    twin.run()
    assert min(checker.minima) >= 0
    stock = ledger_stock(twin.ledger.frame(), twin.net.n_locations, twin.net.n_skus)
    np.testing.assert_array_equal(stock, twin.on_hand)
