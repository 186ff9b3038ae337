"""Fitting the promotion model: recovery and interval coverage on the twin's own demand, the
fitted file, calibrating the twin, forecasts with intervals, margin risk, bad histories."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promotwin.demand.fit import FitOptions, FittedModel, calibrate_scenario, fit_history
from promotwin.demand.forecasting import calendar, forecast, snapshot_forecast, store_info
from promotwin.demand.history import validate_history
from promotwin.demand.margin import promotion_margin
from promotwin.demand.replay import HistoryError
from promotwin.demand.synthetic import recovery_scenario, simulate_history
from promotwin.scenarios.network import compile_network

REPS = 6


def _fit(seed: int, days: int = 364) -> tuple[object, FittedModel, pd.DataFrame]:
    sc = recovery_scenario(days=days, seed=seed)
    hist = simulate_history(sc, seed=1000 + seed)
    return sc, fit_history(hist, {k.id: k.category for k in sc.skus}), hist


@pytest.fixture(scope="module")
def fits() -> list[tuple[object, FittedModel, pd.DataFrame]]:
    return [_fit(seed) for seed in range(REPS)]


def test_90pct_intervals_cover_the_truth_at_about_the_nominal_rate(fits: list) -> None:
    """Over repeated fits, every parameter's 90% interval vs the value that generated the data."""
    hits = []
    for sc, m, _ in fits:
        p = sc.demand
        hits += [m.elasticity[k.id].covers(k.elasticity) for k in sc.skus]
        hits += [
            m.display_lift.covers(p.display_lift),
            m.feature_lift.covers(p.feature_lift),
            m.cannibalisation.covers(p.cannibalisation),
            m.post_promo_dip.covers(p.post_promo_dip),
        ]
    rate = float(np.mean(hits))
    assert 0.80 <= rate <= 0.97, f"coverage {rate:.2f} over {len(hits)} intervals"
    # cannibalisation's interval carries the estimated pressure's uncertainty (sandwich): it
    # measured 6/6 here, 4/6 with the plain GLM covariance (z treated as data)
    canni = [m.cannibalisation.covers(sc.demand.cannibalisation) for sc, m, _ in fits]
    assert sum(canni) >= 5, f"cannibalisation covered {sum(canni)}/{len(canni)}"


def test_estimates_are_close_to_the_truth_on_average(fits: list) -> None:
    err_e = [m.elasticity[k.id].value - k.elasticity for sc, m, _ in fits for k in sc.skus]
    assert abs(np.mean(err_e)) < 0.1
    assert np.mean([m.cannibalisation.value for _, m, _ in fits]) == pytest.approx(0.3, abs=0.05)
    assert np.mean([m.post_promo_dip.value for _, m, _ in fits]) == pytest.approx(0.3, abs=0.06)
    assert np.mean([m.dispersion for _, m, _ in fits]) == pytest.approx(5.0, rel=0.15)


def test_pooling_shrinks_a_sparse_sku_toward_its_category() -> None:
    sc = recovery_scenario(seed=3)
    hist = simulate_history(sc, seed=7)
    sparse = sc.skus[0].id
    # keep the SKU's promotion rows at one store only: few promoted observations, wide raw interval
    drop = (hist["sku"] == sparse) & (hist["depth"] > 0) & (hist["location"] != "S01")
    m = fit_history(hist[~drop], {k.id: k.category for k in sc.skus})
    raw, pooled = m.elasticity_raw[sparse], m.elasticity[sparse]
    mean = m.category_elasticity[sc.skus[0].category]["mean"]
    assert pooled.se < raw.se
    assert abs(pooled.value - mean) < abs(raw.value - mean)


def test_model_file_round_trips_and_forecasts_identically(fits: list, tmp_path: Path) -> None:
    sc, m, _ = fits[0]
    path = tmp_path / "model.json"
    m.save(path)
    back = FittedModel.load(path)
    start = dt.date.fromisoformat(m.history_end) + dt.timedelta(days=1)
    rows = calendar(m, start, 14, sc.promotions[:2], store_info(sc))
    a, b = forecast(m, rows), forecast(back, rows)
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="not a fitted demand model"):
        FittedModel.from_dict({"format": "something else"})


def test_forecast_intervals_cover_held_out_days_and_promotions_raise_the_mean() -> None:
    sc = recovery_scenario(days=364 + 42, seed=11)
    hist = simulate_history(sc, seed=5)
    split = sc.start_date + dt.timedelta(days=364)
    m = fit_history(hist[hist["date"] < pd.Timestamp(split)], {k.id: k.category for k in sc.skus})
    future = [p for p in sc.promotions if p.end >= split]
    rows = calendar(m, split, 42, future, store_info(sc))
    fc = forecast(m, rows)
    test = hist[hist["date"] >= pd.Timestamp(split)]
    joined = fc.merge(test, on=["date", "location", "sku", "channel"])
    assert len(joined) == len(test)
    inside = (joined["units"] >= joined["q05"]) & (joined["units"] <= joined["q95"])
    assert 0.85 <= inside.mean() <= 0.99
    plain = forecast(m, calendar(m, split, 42, [], store_info(sc)))
    promo = fc["promo"].to_numpy() > 0
    assert promo.any()
    assert (fc["mean"].to_numpy()[promo] > plain["mean"].to_numpy()[promo]).all()
    net = compile_network(sc)
    mean, k = snapshot_forecast(fc, list(net.locations.index), list(net.skus.index), split, 42)
    assert mean.shape == (42, net.n_locations, net.n_skus)
    assert mean.sum() == pytest.approx(fc["mean"].sum())
    assert 0 < k < 1e6


def test_calibrated_twin_uses_the_fitted_parameters(fits: list) -> None:
    sc, m, _ = fits[0]
    blank = sc.model_copy(
        update={
            "skus": tuple(
                k.model_copy(update={"elasticity": None, "baseline": 1.0}) for k in sc.skus
            ),
            "demand": sc.demand.model_copy(update={"cannibalisation": 0.0, "display_lift": 0.0}),
        }
    )
    cal = calibrate_scenario(blank, m)
    for k_true, k_cal in zip(sc.skus, cal.skus, strict=True):
        assert k_cal.elasticity == pytest.approx(m.elasticity[k_true.id].value)
        assert k_cal.baseline == pytest.approx(k_true.baseline, rel=0.15)
    assert cal.demand.cannibalisation == pytest.approx(m.cannibalisation.value)
    assert cal.demand.display_lift == pytest.approx(m.display_lift.value)
    assert cal.demand.post_promo_days == 7
    assert sum(cal.demand.weekday) == pytest.approx(7.0)


def test_margin_risk_counts_the_discount_and_the_cannibalised_margin(fits: list) -> None:
    sc, m, _ = fits[0]
    promo = sc.promotions[0].model_copy(update={"locations": type(sc.promotions[0].locations)()})
    start = dt.date.fromisoformat(m.history_end) + dt.timedelta(days=1)
    promo = promo.model_copy(update={"start": start, "end": start + dt.timedelta(days=6)})
    info = store_info(sc)
    with_p = calendar(m, start, 7, [promo], info)
    without = calendar(m, start, 7, [], info)
    price = {k.id: k.price for k in sc.skus}
    cost = {k.id: k.unit_cost for k in sc.skus}
    r = promotion_margin(m, with_p, without, price, cost, n_draws=200)
    assert r.low < r.expected < r.high
    assert r.cannibalised_units > 0
    funded = promotion_margin(m, with_p, without, price, cost, vendor_funding=2.0, n_draws=200)
    assert funded.expected == pytest.approx(r.expected + 2.0 * funded.promoted_units, rel=1e-6)


GOOD = {"date": "2026-01-05", "location": "S1", "sku": "K1", "channel": "walk_in", "units": 3}


@pytest.mark.parametrize(
    ("rows", "columns", "skus", "needle"),
    [
        ([GOOD], ["date", "location", "sku", "units"], None, r"missing column\(s\) \['channel'\]"),
        (
            [GOOD, {**GOOD, "date": "2026-01-06", "units": -2}],
            None,
            None,
            "negative units in row 1",
        ),
        ([GOOD, {**GOOD}], None, None, "duplicate date/location/sku/channel in rows 0, 1"),
        (
            [GOOD, {**GOOD, "date": "2026-01-06", "sku": "ZZ"}],
            None,
            {"K1"},
            r"unknown SKU\(s\) \['ZZ'\] in row 1",
        ),
        (
            [GOOD, {**GOOD, "date": "2026-01-06", "channel": "fax"}],
            None,
            None,
            "unknown channel in row 1",
        ),
        ([{**GOOD, "date": "yesterday"}], None, None, "unreadable date in row 0"),
        ([{**GOOD, "depth": 1.5}], None, None, r"depth outside \[0, 1\) in row 0"),
    ],
)
def test_bad_histories_name_the_problem_and_the_rows(
    rows: list[dict], columns: list[str] | None, skus: set[str] | None, needle: str
) -> None:
    frame = pd.DataFrame(rows)
    if columns is not None:
        frame = frame[columns]
    with pytest.raises(HistoryError, match=needle):
        validate_history(frame, skus=skus)


def test_every_problem_is_reported_together() -> None:
    frame = pd.DataFrame([{**GOOD, "units": -1}, {**GOOD, "units": -1}])
    with pytest.raises(HistoryError, match="2 problem") as exc:
        validate_history(frame)
    assert "negative units" in str(exc.value) and "duplicate" in str(exc.value)


def test_history_without_promotions_is_refused() -> None:
    frame = pd.DataFrame(
        [{**GOOD, "date": f"2026-01-{d:02d}", "units": d % 4} for d in range(1, 20)]
    )
    with pytest.raises(HistoryError, match="no promoted rows"):
        fit_history(frame, options=FitOptions())
