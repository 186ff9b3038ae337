"""The planner's re-simulation: replaying a traced run's plans up to the day the promotion first
matters gives the run a full simulation gives (bit for bit for a policy without memory; within a
stated tolerance for the optimizer, whose warm start differs), and the cache answers repeats."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from promotwin.dashboards.planner import time_left
from promotwin.scenarios import load_scenario
from promotwin.scenarios.schema import Scenario
from promotwin.twin.outlook import PlannerCache, PlannerResult, PromoSettings, project


@pytest.fixture(scope="module")
def appliance() -> Scenario:
    return load_scenario("appliance_promo")


def _settings(scenario: Scenario, depth: float) -> tuple[str, PromoSettings]:
    promo = scenario.promotions[0]
    return promo.id, dataclasses.replace(PromoSettings.of(promo), depth=depth)


def _same(a: PlannerResult, b: PlannerResult) -> None:
    assert a.kpis == b.kpis
    pd.testing.assert_frame_equal(a.lost, b.lost)
    pd.testing.assert_frame_equal(a.stockout_days, b.stockout_days)
    assert a.readiness.score == b.readiness.score
    assert a.run_id == b.run_id


def test_replayed_prefix_gives_the_full_run_bit_for_bit(appliance: Scenario) -> None:
    promo, current = _settings(appliance, appliance.promotions[0].depth)
    _, deeper = _settings(appliance, 0.45)
    cache = PlannerCache()
    traced = project(appliance, promo, current, "base-stock", 3, cache=cache)
    assert traced.replayed_days == 0 and len(cache.traces) == 1
    replayed = project(appliance, promo, deeper, "base-stock", 3, cache=cache)
    full = project(appliance, promo, deeper, "base-stock", 3)
    # base-stock looks 21 days ahead: the days before start - 21 come from the trace
    start = appliance.day_of(appliance.promotions[0].start)
    assert replayed.replayed_days == start - 21 > 0
    _same(replayed, full)
    assert replayed.kpis != traced.kpis  # the depth does change the run


def test_a_later_start_replays_only_up_to_the_earlier_one(appliance: Scenario) -> None:
    promo, current = _settings(appliance, appliance.promotions[0].depth)
    later = dataclasses.replace(
        current,
        start=current.start + pd.Timedelta(days=3),
        end=current.end,
    )
    cache = PlannerCache()
    project(appliance, promo, current, "base-stock", 0, cache=cache)
    replayed = project(appliance, promo, later, "base-stock", 0, cache=cache)
    _same(replayed, project(appliance, promo, later, "base-stock", 0))
    assert replayed.replayed_days == appliance.day_of(current.start) - 21


def test_repeated_request_comes_from_the_cache(appliance: Scenario) -> None:
    promo, current = _settings(appliance, 0.2)
    cache = PlannerCache()
    first = project(appliance, promo, current, "base-stock", 0, cache=cache)
    assert project(appliance, promo, current, "base-stock", 0, cache=cache) is first
    other_seed = project(appliance, promo, current, "base-stock", 1, cache=cache)
    assert other_seed is not first and other_seed.replayed_days == 0  # a seed is its own trace


def test_policies_with_a_frozen_plan_are_never_replayed(appliance: Scenario) -> None:
    """static-forecast freezes the promotion table on day 0: nothing of its run can be reused."""
    promo, current = _settings(appliance, 0.2)
    cache = PlannerCache()
    project(appliance, promo, current, "static-forecast", 0, cache=cache)
    _, deeper = _settings(appliance, 0.4)
    again = project(appliance, promo, deeper, "static-forecast", 0, cache=cache)
    assert again.replayed_days == 0 and not cache.traces


@pytest.mark.slow
def test_optimizer_replay_within_tolerance_of_the_full_run(appliance: Scenario) -> None:
    """The optimizer's first live tick starts from a crash basis instead of yesterday's: it may
    pick another optimum of the same LP, and the runs drift apart a little afterwards.

    Measured (seed 0, depth 45%, 14 of 59 days replayed): total cost -0.85%, fill rate +0.7%,
    promotion fill rate +0.96%, gross margin +0.19%, promotion lost sales -1.4%; the stated
    tolerance is 2% (5% on promotion lost sales). Expedite cost differs by ~20% (a few k on a
    1.7 M total) and is not compared.
    """
    promo, current = _settings(appliance, appliance.promotions[0].depth)
    _, deeper = _settings(appliance, 0.45)
    cache = PlannerCache()
    project(appliance, promo, current, "optimizer", 0, cache=cache)
    replayed = project(appliance, promo, deeper, "optimizer", 0, cache=cache)
    full = project(appliance, promo, deeper, "optimizer", 0)
    assert replayed.replayed_days == appliance.day_of(current.start) - 14
    for key in ("total_cost", "fill_rate", "promo_fill_rate", "gross_margin"):
        assert replayed.kpis[key] == pytest.approx(full.kpis[key], rel=0.02), key
    assert replayed.kpis["promo_lost_sales_units"] == pytest.approx(
        full.kpis["promo_lost_sales_units"], rel=0.05
    )


def test_time_left_in_words() -> None:
    assert time_left(0, 10, 0.0) == "estimating time left"
    assert time_left(5, 10, 10.0) == "about 10 s left"
    assert time_left(1, 10, 20.0) == "about 3 min left"
    assert time_left(10, 10, 4.0) == "under a second left"
