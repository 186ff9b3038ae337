"""The twin against closed-form inventory results.

One store, one SKU, Poisson demand (negative binomial with a huge k), a 1-day lane from a DC
that never runs out, and a base-stock policy reviewing daily. Each morning the store holds
exactly S units (yesterday's order-up-to arrives), so with lost sales:
    fill rate           = E[min(S, D)] / lambda
    end-of-day on hand  = E[(S - D)+]
with D ~ Poisson(lambda) and S = ceil(lambda + z * sqrt(lambda)) (the policy's own rule).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm, poisson

from promotwin.policies.heuristics import BaseStockPolicy
from promotwin.testing.scenarios import single_cell_scenario
from promotwin.twin import simulate

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
