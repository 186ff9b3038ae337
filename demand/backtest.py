"""Backtest: fit on the history before a split date, forecast the rest with its planned prices
and promotions, and score each method on promoted (and all) item-periods.

- ``naive``: seasonal naive without uplift: the same period one season earlier (52 weeks / 7
  days, whole seasons back until inside the training data) when that period was not promoted,
  else the series' mean over its non-promoted training periods of the last season; knows
  nothing of planned promotions.
- ``plain lightgbm``: the bar a data scientist sets in an afternoon: LightGBM on location and
  SKU ids, price (or ``1 - depth`` without prices), display and feature flags, Poisson
  objective, early stopping on the last 13 weeks (28 days) of training, LightGBM's defaults.
- ``glm``: the promotion GLM (``demand/fit.py``), ``gbm``: the promotion gradient boosting
  (``demand/gbm.py``), both through :func:`demand.models.fit_model`; optionally gbm variants
  (other ``GbmOptions``) scored beside them as ``gbm <label>``.

WAPE = sum |actual - forecast| / sum actual; bias = sum (forecast - actual) / sum actual;
coverage = share of actuals inside the central 90% predictive interval (models with one).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from promotwin.demand.fit import FitOptions
from promotwin.demand.forecasting import predict
from promotwin.demand.gbm import GbmOptions
from promotwin.demand.glm_design import FloatArray, prepare
from promotwin.demand.history import validate_history
from promotwin.demand.models import ForecastModel, fit_model

NAIVE, PLAIN, GLM, GBM = "naive", "plain lightgbm", "glm", "gbm"
LEVEL = 0.90


@dataclass
class BacktestResult:
    # method, subset (promoted / all), wape, bias, coverage_90, n, seconds, cpu_seconds
    scores: pd.DataFrame
    predictions: pd.DataFrame  # test rows with one column per method (+ "<method> q05/q95")
    models: dict[str, ForecastModel]
    dropped_rows: int  # test rows of series never seen in training
    seconds: dict[str, float] = field(default_factory=dict)  # fit + forecast wall per method
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # the same in CPU seconds

    def score(self, method: str, subset: str = "promoted", metric: str = "wape") -> float:
        s = self.scores
        return float(s[(s["method"] == method) & (s["subset"] == subset)][metric].iloc[0])

    def improvement(self, method: str, over: str = NAIVE, subset: str = "promoted") -> float:
        """Relative WAPE reduction of ``method`` against ``over``."""
        return 1.0 - self.score(method, subset) / self.score(over, subset)


def seasonal_naive(train: pd.DataFrame, test: pd.DataFrame, season: int) -> FloatArray:
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
    return np.asarray(np.where(use, hit["units"].fillna(0).to_numpy(), fallback), np.float64)


def plain_lightgbm(train: pd.DataFrame, test: pd.DataFrame, period: int) -> FloatArray:
    """The plain LightGBM baseline (see the module docstring): no feature engineering, no
    tuning."""
    import lightgbm as lgb

    locs = sorted(train["location"].unique())
    skus = sorted(train["sku"].unique())

    def features(f: pd.DataFrame) -> pd.DataFrame:
        price = f["price"] if "price" in f.columns else 1.0 - f["depth"]
        return pd.DataFrame(
            {
                "location": pd.Categorical(f["location"], categories=locs).codes,
                "sku": pd.Categorical(f["sku"], categories=skus).codes,
                "price": price.to_numpy(np.float64),
                "display": f["display"].to_numpy(np.float64),
                "feature": f["feature"].to_numpy(np.float64),
            }
        )

    cut = train["date"].max() - pd.Timedelta(days=(13 if period == 7 else 4) * 7)
    fit_part, stop_part = train[train["date"] <= cut], train[train["date"] > cut]
    params = {
        "objective": "poisson",
        "num_threads": 1,
        "deterministic": True,
        "force_col_wise": True,
        "seed": 0,
        "verbose": -1,
    }
    cats = ["location", "sku"]
    d_fit = lgb.Dataset(features(fit_part), fit_part["units"], categorical_feature=cats)
    d_stop = lgb.Dataset(
        features(stop_part), stop_part["units"], categorical_feature=cats, reference=d_fit
    )
    booster = lgb.train(
        params, d_fit, 1000, valid_sets=[d_stop], callbacks=[lgb.early_stopping(50, verbose=False)]
    )
    return np.asarray(booster.predict(features(test), num_threads=1), dtype=np.float64)


def _scores(frame: pd.DataFrame, subset: str, methods: list[str]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    actual = frame["units"].to_numpy(np.float64)
    total = actual.sum()
    for m in methods:
        f = frame[m].to_numpy(np.float64)
        coverage = float("nan")
        if f"{m} q05" in frame.columns:
            inside = (actual >= frame[f"{m} q05"]) & (actual <= frame[f"{m} q95"])
            coverage = float(inside.mean())
        out.append(
            {
                "method": m,
                "subset": subset,
                "wape": float(np.abs(actual - f).sum() / total),
                "bias": float((f - actual).sum() / total),
                "coverage_90": coverage,
                "n": len(frame),
                "actual_units": float(total),
            }
        )
    return out


def backtest(
    history: pd.DataFrame,
    split: dt.date,
    categories: Mapping[str, str] | None = None,
    glm_options: FitOptions | None = None,
    gbm_options: GbmOptions | None = None,
    season_days: int | None = None,
    gbm_variants: Mapping[str, GbmOptions] | None = None,
) -> BacktestResult:
    """Fit before ``split``, forecast from ``split`` on; scores on promoted and all test rows
    (``gbm_variants``: label -> options, each fitted and scored as method ``gbm <label>``)."""
    glm_opts = glm_options or FitOptions()
    gbm_opts = gbm_options or GbmOptions(fill_zeros=glm_opts.fill_zeros)
    fits: list[tuple[str, str, FitOptions | GbmOptions]] = [
        (GLM, GLM, glm_opts),
        (GBM, GBM, gbm_opts),
    ]
    fits += [(f"{GBM} {label}", GBM, o) for label, o in (gbm_variants or {}).items()]
    clean = validate_history(history, source="backtest history")  # depth from the whole price plan
    cut = pd.Timestamp(split)
    train_raw = clean[clean["date"] < cut]
    test_raw = clean[clean["date"] >= cut]
    if train_raw.empty or test_raw.empty:
        raise ValueError(f"split {split} leaves no training or no test rows")
    train, _, period = prepare(train_raw, categories, glm_opts.fill_zeros)
    test, _, _ = prepare(test_raw, categories, glm_opts.fill_zeros, period_days=period)
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    models: dict[str, ForecastModel] = {}
    for method, kind, opts in fits:
        t0, c0 = time.perf_counter(), time.process_time()
        models[method] = fit_model(train_raw, kind, opts, categories, source="backtest training")
        seconds[method], cpu[method] = time.perf_counter() - t0, time.process_time() - c0
    known = set.intersection(*(set(m.series) for m in models.values()))
    seen = np.array([tuple(r) in known for r in test[["location", "sku", "group"]].to_numpy()])
    dropped = int((~seen).sum())
    test = test[seen].reset_index(drop=True)
    pred = test.assign(
        **{NAIVE: seasonal_naive(train, test, season_days or (364 if period == 7 else 7))}
    )
    t0, c0 = time.perf_counter(), time.process_time()
    pred[PLAIN] = plain_lightgbm(train, test, period)
    seconds[PLAIN], cpu[PLAIN] = time.perf_counter() - t0, time.process_time() - c0
    for kind, model in models.items():
        t0, c0 = time.perf_counter(), time.process_time()
        mean, k = predict(model, test)
        seconds[kind] += time.perf_counter() - t0
        cpu[kind] += time.process_time() - c0
        p = k / (k + mean)
        pred[kind] = mean
        pred[f"{kind} q05"] = stats.nbinom.ppf((1 - LEVEL) / 2, k, p)
        pred[f"{kind} q95"] = stats.nbinom.ppf((1 + LEVEL) / 2, k, p)
    methods = [NAIVE, PLAIN, *models]
    promoted = pred[pred["promo"] > 0]
    scores = pd.DataFrame(_scores(promoted, "promoted", methods) + _scores(pred, "all", methods))
    scores["seconds"] = scores["method"].map(seconds)
    scores["cpu_seconds"] = scores["method"].map(cpu)
    return BacktestResult(scores, pred, models, dropped, seconds, cpu)
