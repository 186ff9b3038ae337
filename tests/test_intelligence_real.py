"""Backtest on real retail data: Dominick's orange juice, canned tuna and IRI cheese (small
slices; the full runs are ``benchmarks/bench_backtest.py``). Fetched by ``make data``; skipped,
saying why, without it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from promotwin.demand.backtest import GBM, GLM, NAIVE, PLAIN, backtest
from promotwin.demand.dominicks import (
    BRANDS,
    TUNA_BRANDS,
    DataUnavailable,
    find_orange_juice,
    load_cheese,
    load_orange_juice,
    load_tuna,
)
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


# -- the same settings on other real data: Dominick's canned tuna and IRI cheese ------------------


def _bayesm(loader):  # type: ignore[no-untyped-def]
    try:
        return loader()
    except DataUnavailable as exc:
        pytest.skip(f"real-data test skipped: {exc}")


def _split_at_share(h: pd.DataFrame, test_share: float) -> dt.date:
    dates = sorted(h["date"].unique())
    return pd.Timestamp(dates[int(len(dates) * (1 - test_share))]).date()


def test_tuna_and_cheese_load_as_weekly_histories_with_price_cuts_marked() -> None:
    tuna, cheese = _bayesm(load_tuna), _bayesm(load_cheese)
    assert tuna.groupby("sku").size().to_dict() == dict.fromkeys(TUNA_BRANDS, 338)
    assert cheese["location"].nunique() == 88
    for h in (tuna, cheese):
        assert (h["units"] > 0).all() and (h["price"] > 0).all()
        # each series' rows are whole weeks apart, and a promoted week without a display is a
        # price at least 5% under the series' centred 13-week high (recomputed here by hand)
        gaps = h.groupby(["location", "sku"])["date"].diff().dropna().dt.days
        assert (gaps % 7 == 0).all() and (gaps > 0).all()
        for _, s in h.groupby(["location", "sku"]):
            p = s["price"].to_numpy()
            high = np.array([p[max(i - 6, 0) : i + 7].max() for i in range(len(p))])
            cut = p <= 0.95 * high
            assert (s["promo"].to_numpy() == ((s["display"].to_numpy() > 0) | cut)).all()
        assert 0.3 < h["promo"].mean() < 0.6


def test_tuna_backtest_under_the_oj_settings() -> None:
    """The whole tuna data (7 brands at the chain level, 1989-1997), the OJ settings: fit on
    the first 75% of the weeks. Measured: promoted WAPE naive 0.645, plain LightGBM 0.609, glm
    0.618, gbm 0.633; bias naive -58%, glm +20%, gbm +20% (both over-forecast 1994-1997)."""
    tuna = _bayesm(load_tuna)
    r = backtest(
        tuna,
        _split_at_share(tuna, 0.25),
        glm_options=FitOptions(fill_zeros=False, cross_price=True),
    )
    promoted = r.scores[r.scores["subset"] == "promoted"].set_index("method")
    for model in (GLM, GBM):
        assert promoted.loc[model, "wape"] < promoted.loc[NAIVE, "wape"]
        assert abs(promoted.loc[model, "bias"]) < 0.5 * abs(promoted.loc[NAIVE, "bias"])
        assert 0.75 <= promoted.loc[model, "coverage_90"] <= 0.99
    glm = r.models[GLM]
    assert isinstance(glm, FittedModel)
    # canned tuna is price elastic (Chevalier, Kashyap and Rossi 2003 find own-price
    # elasticities of about -2 to -5 on this Dominick's category)
    assert np.mean([v.value for v in glm.elasticity.values()]) < -1.0


def test_cheese_backtest_under_the_oj_settings() -> None:
    """A quarter of the 88 retailers (every fourth by name), fit on the first 75% of the
    weeks. Measured: promoted WAPE naive 0.532, plain LightGBM 0.328, glm 0.399, gbm 0.301."""
    cheese = _bayesm(load_cheese)
    cheese = cheese[cheese["location"].isin(sorted(cheese["location"].unique())[::4])]
    r = backtest(
        cheese,
        _split_at_share(cheese, 0.25),
        glm_options=FitOptions(fill_zeros=False, cross_price=True),
    )
    promoted = r.scores[r.scores["subset"] == "promoted"].set_index("method")
    assert promoted.loc[GBM, "wape"] < promoted.loc[PLAIN, "wape"]
    for model in (GLM, GBM):
        assert promoted.loc[model, "wape"] < 0.8 * promoted.loc[NAIVE, "wape"]
        assert abs(promoted.loc[model, "bias"]) < 0.5 * abs(promoted.loc[NAIVE, "bias"])
