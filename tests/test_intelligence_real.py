"""Backtest on real retail data: Dominick's orange juice (a small slice; the full run is
``benchmarks/bench_backtest.py``). Fetched by ``make data``; skipped, saying why, without it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from promotwin.demand.backtest import GBM, GLM, NAIVE, PLAIN, backtest
from promotwin.demand.dominicks import BRANDS, DataUnavailable, find_orange_juice, load_orange_juice
from promotwin.demand.fit import FitOptions, FittedModel

STORES = (2, 5, 8, 9, 12)
SPLIT = dt.date(1992, 1, 1)


@pytest.fixture(scope="module")
def oj():  # type: ignore[no-untyped-def]
    try:
        find_orange_juice()
    except DataUnavailable as exc:
        pytest.skip(f"real-data test skipped: {exc}")
    return load_orange_juice(stores=STORES)


def test_the_data_is_what_the_recipe_describes(oj) -> None:  # type: ignore[no-untyped-def]
    assert set(oj["sku"]) == set(BRANDS)
    assert oj["date"].min() == np.datetime64("1990-06-14")
    assert (oj["units"] > 0).all()
    assert 0.3 < oj["promo"].mean() < 0.8


def test_backtest_beats_the_no_uplift_baseline_on_promoted_weeks(oj) -> None:  # type: ignore[no-untyped-def]
    r = backtest(oj, SPLIT, glm_options=FitOptions(fill_zeros=False, cross_price=True))
    promoted = r.scores[r.scores["subset"] == "promoted"].set_index("method")
    assert promoted.loc[GLM, "n"] > 500
    # measured on this slice: glm 0.491, gbm 0.476, plain LightGBM 0.507, no-uplift seasonal
    # naive 0.732; all four under-forecast 1992 (bias -17% to -20%, gbm -16.6%: a level shift
    # after the split no model here sees)
    for model in (GLM, GBM):
        assert r.improvement(model) >= 0.25
        assert promoted.loc[model, "wape"] < 0.55
        assert abs(promoted.loc[model, "bias"]) < abs(promoted.loc[NAIVE, "bias"])
        assert 0.8 <= promoted.loc[model, "coverage_90"] <= 0.97
    assert promoted.loc[GLM, "wape"] < promoted.loc[PLAIN, "wape"]
    assert promoted.loc[GBM, "wape"] < promoted.loc[PLAIN, "wape"]
    # real OJ is price elastic and feature ads lift sales (the recipe found about -3.3 and +108%)
    glm = r.models[GLM]
    assert isinstance(glm, FittedModel)
    e = np.mean([v.value for v in glm.elasticity.values()])
    assert -4.5 < e < -1.0
    assert glm.feature_lift.low > 0.3
    # the richer model's twin-facing summaries: per-brand lifts and store x brand baselines
    assert {f"feature[{b}]" for b in BRANDS} <= set(glm.sku_lift)
    effects = glm.categories["orange_juice"].series_effect
    assert len(effects) == len(STORES) * len(BRANDS)
    assert np.std([u for u, _ in effects.values()]) > 0.05  # stores differ in brand mix
