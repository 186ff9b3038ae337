"""Backtest: fit on the history before a split date, forecast the rest with its planned prices
and promotions, and score promoted item-periods against two simpler forecasts.

- ``promotion model``: :func:`fit_history` + :func:`forecasting.predict`.
- ``seasonal naive (no uplift)``: the same period one season earlier (52 weeks / 7 days,
  whole seasons back until inside the training data) when that period was not promoted, else the
  series' mean over its non-promoted training periods of the last season; knows nothing of
  planned promotions.
- ``plain regression``: OLS of ``log(1 + units)`` on location and SKU effects, one pooled
  ``log(1 - depth)`` slope, display and feature flags (smearing retransformation).

WAPE = sum |actual - forecast| / sum actual; bias = sum (forecast - actual) / sum actual.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm

from promotwin.demand._blas import single_thread_blas
from promotwin.demand.fit import FitOptions, FittedModel, fit_history, prepare
from promotwin.demand.forecasting import predict
from promotwin.demand.history import validate_history

METHODS = ("promotion model", "seasonal naive (no uplift)", "plain regression")


@dataclass
class BacktestResult:
    scores: pd.DataFrame  # method, subset (promoted / all), wape, bias, n, actual_units
    predictions: pd.DataFrame  # test rows with one column per method and q05/q95 of the model
    model: FittedModel
    coverage_90: float  # share of promoted test rows inside the model's 90% interval
    dropped_rows: int  # test rows of series never seen in training

    def score(self, method: str, subset: str = "promoted") -> float:
        s = self.scores
        return float(s[(s["method"] == method) & (s["subset"] == subset)]["wape"].iloc[0])

    def improvement(self, subset: str = "promoted") -> float:
        """Relative WAPE reduction of the model against the no-uplift baseline."""
        return 1.0 - self.score(METHODS[0], subset) / self.score(METHODS[1], subset)


def seasonal_naive(train: pd.DataFrame, test: pd.DataFrame, season: int) -> np.ndarray:
    """No-uplift seasonal-naive forecast of each ``test`` row (see the module docstring)."""
    key = ["location", "sku", "group"]
    last = train["date"].max()
    period = pd.Timedelta(days=season)
    lag = test["date"] - last
    n_back = np.ceil(lag / period).astype(int)
    source = test["date"] - n_back * period
    base = train[train["promo"] == 0]
    recent = base[base["date"] > last - period]
    level = recent.groupby(key)["units"].mean().rename("level")
    level_all = base.groupby(key)["units"].mean().rename("level_all")
    src = test[key].assign(date=source)
    lookup = train.set_index([*key, "date"])[["units", "promo"]]
    hit = src.join(lookup, on=[*key, "date"])
    out = test[key].join(level, on=key).join(level_all, on=key)
    fallback = out["level"].fillna(out["level_all"]).fillna(0.0).to_numpy()
    use = hit["units"].notna().to_numpy() & (hit["promo"].fillna(1).to_numpy() == 0)
    return np.where(use, hit["units"].fillna(0).to_numpy(), fallback)


def plain_regression(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """OLS on log(1 + units): location + SKU + pooled log(1 - depth) + display + feature."""

    def design(f: pd.DataFrame, locs: list[str], skus: list[str]) -> np.ndarray:
        li = pd.Categorical(f["location"], categories=locs).codes
        si = pd.Categorical(f["sku"], categories=skus).codes
        x = np.zeros((len(f), len(locs) + len(skus) - 1 + 3))
        r = np.arange(len(f))
        x[r[li >= 0], li[li >= 0]] = 1.0
        ok = si > 0
        x[r[ok], len(locs) + si[ok] - 1] = 1.0
        j = len(locs) + len(skus) - 1
        x[:, j] = np.log1p(-f["depth"].to_numpy(np.float64))
        x[:, j + 1] = f["display"].to_numpy(np.float64)
        x[:, j + 2] = f["feature"].to_numpy(np.float64)
        return x

    locs = sorted(train["location"].unique())
    skus = sorted(train["sku"].unique())
    y = np.log1p(train["units"].to_numpy(np.float64))
    with single_thread_blas():
        res = sm.OLS(y, design(train, locs, skus)).fit()
    smear = float(np.mean(np.exp(np.asarray(res.resid))))
    pred = np.asarray(res.predict(design(test, locs, skus)))
    return np.maximum(np.exp(pred) * smear - 1.0, 0.0)


def _scores(frame: pd.DataFrame, subset: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    actual = frame["units"].to_numpy(np.float64)
    for m in METHODS:
        f = frame[m].to_numpy(np.float64)
        total = actual.sum()
        out.append(
            {
                "method": m,
                "subset": subset,
                "wape": float(np.abs(actual - f).sum() / total),
                "bias": float((f - actual).sum() / total),
                "n": len(frame),
                "actual_units": float(total),
            }
        )
    return out


def backtest(
    history: pd.DataFrame,
    split: dt.date,
    categories: Mapping[str, str] | None = None,
    options: FitOptions | None = None,
    season_days: int | None = None,
) -> BacktestResult:
    """Fit before ``split``, forecast from ``split`` on; scores on promoted and all test rows."""
    opts = options or FitOptions()
    clean = validate_history(history, source="backtest history")  # depth from the whole price plan
    cut = pd.Timestamp(split)
    train_raw = clean[clean["date"] < cut]
    test_raw = clean[clean["date"] >= cut]
    if train_raw.empty or test_raw.empty:
        raise ValueError(f"split {split} leaves no training or no test rows")
    model = fit_history(train_raw, categories, opts, source="backtest training")
    train, _, period = prepare(train_raw, categories, opts.fill_zeros)
    test, _, _ = prepare(test_raw, categories, opts.fill_zeros, period_days=period)
    known = set(model.series)
    seen = np.array(
        [
            (a, b, c) in known
            for a, b, c in test[["location", "sku", "group"]].itertuples(index=False)
        ]
    )
    dropped = int((~seen).sum())
    test = test[seen].reset_index(drop=True)
    mean, k = predict(model, test)
    from scipy import stats

    pred = test.assign(
        **{
            METHODS[0]: mean,
            METHODS[1]: seasonal_naive(train, test, season_days or (364 if period == 7 else 7)),
            METHODS[2]: plain_regression(train, test),
            "q05": stats.nbinom.ppf(0.05, k, k / (k + mean)),
            "q95": stats.nbinom.ppf(0.95, k, k / (k + mean)),
        }
    )
    promoted = pred[pred["promo"] > 0]
    scores = pd.DataFrame(_scores(promoted, "promoted") + _scores(pred, "all"))
    inside = (promoted["units"] >= promoted["q05"]) & (promoted["units"] <= promoted["q95"])
    return BacktestResult(scores, pred, model, float(inside.mean()), dropped)
