"""Forecast accuracy over the whole run at SKU x region x week, beside the cell-day figure:
hand-solved sums, the daily records' own totals, and the Poisson mean absolute deviation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promotwin.policies.registry import make_policy
from promotwin.testing.scenarios import single_cell_scenario
from promotwin.twin import simulate
from promotwin.twin.kpis import RunForecastScore


def test_region_week_sums_a_week_per_region_before_the_error() -> None:
    # rows N, N, S; one SKU; warm-up 1 day; days 1..8 = week 0 (days 1-7) and week 1 (day 8)
    score = RunForecastScore(["N", "N", "S"], warmup_days=1)
    score.add(0, np.array([[99.0], [0], [0]]), np.array([[0], [0], [0]]))  # warm-up: left out
    for day in range(1, 8):  # N: 10 + 10 forecast vs 15 + 5 sold; S: 4 forecast vs 6 sold
        score.add(day, np.array([[10.0], [10.0], [4.0]]), np.array([[15], [5], [6]]))
    score.add(8, np.array([[3.0], [0.0], [0.0]]), np.array([[0], [0], [1]]))
    # week 0: N |140 - 140| = 0, S |28 - 42| = 14; week 1: N 3, S 1 -> 18 over 7 x 26 + 1 sold
    assert score.region_week_error() == pytest.approx(18)
    assert score.kpis() == {"forecast_wape_region_week": round(18 / 183, 6)}


def _poisson_mad(lam: int) -> float:
    """E|X - lam| for X ~ Poisson(lam), lam an integer: 2 lam^(lam+1) e^-lam / lam!."""
    return 2 * math.exp((lam + 1) * math.log(lam) - lam - math.lgamma(lam + 1))


def test_whole_run_accuracy_matches_the_records_and_poisson() -> None:
    # one store, one SKU, Poisson demand of mean 4 a day, the oracle forecasts 4: cell-day WAPE
    # is E|X - 4| / 4 = 0.391, SKU x region x week E|Y - 28| / 28 = 0.149 (Y ~ Poisson(28))
    weeks = 60
    result = simulate(single_cell_scenario(7 * weeks), make_policy("base-stock"), seed=3)
    k, daily = result.kpis, result.daily
    measured = daily[daily["day"] >= single_cell_scenario(7).warmup_days]
    week = (measured["day"] - measured["day"].min()) // 7
    totals = measured.groupby(week)[["forecast", "demand"]].sum()  # one SKU: the records suffice
    truth = (totals["forecast"] - totals["demand"]).abs().sum() / totals["demand"].sum()
    assert k["forecast_wape_region_week"] == pytest.approx(truth, abs=1e-6)  # 6 places
    n = len(totals)
    sd_week = math.sqrt(28 - _poisson_mad(28) ** 2) / 28 / math.sqrt(n)  # sd of |Y - 28| / 28
    assert abs(k["forecast_wape_region_week"] - _poisson_mad(28) / 28) < 4 * sd_week
    sd_day = math.sqrt(4 - _poisson_mad(4) ** 2) / 4 / math.sqrt(len(measured))
    assert abs(k["forecast_wape"] - _poisson_mad(4) / 4) < 4 * sd_day
    assert k["forecast_wape_region_week"] < k["forecast_wape"] / 2
