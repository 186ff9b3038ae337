"""A global gradient-boosted promotion forecaster (LightGBM, Poisson objective).

One model over every location x SKU x channel-group series. The boosting starts from a
log-linear score: the series' baseline (its mean units over its non-promoted training periods,
shrunk toward its SKU's) times ``exp(elasticity log(1 - depth) + display + feature lifts)`` from
a penalised Poisson GLM (so a deeper cut than any in the history sells more by the elasticity,
where trees alone would cap it at the deepest one's uplift). The trees learn multiplicative
corrections on top of it from:

- promotion: depth, display, feature, the promotion flag; the previous and next period's flag,
  depth, display and feature (pantry loading before, the dip after); periods since the last
  promotion (post-promotion dip, promotion fatigue);
- price: the SKU's regular price, its price index (price paid over the category's mean price
  paid at the same location and date) and its gap to the cheapest SKU there (cross-price
  pressure: a shopper compares with the cheapest alternative on the shelf);
- the category's promotion pressure: how many other SKUs are promoted, on display, in the
  feature ad, and their mean depth;
- calendar: day of year, weekday (daily data); location, SKU, channel group and category ids.

Sales lags enter only through the baseline, computed on the training window: a lag beyond any
horizon, known at forecast time however far ahead (no recursive forecasting, so no compounding
errors over a 6-week promotion).

Intervals: a negative binomial around the mean with one ``k`` for promoted and one for other
rows, fitted by maximum likelihood on a validation window (the last ``validation_share`` of the
training periods, held out of the first fit, which also picks the number of trees by early
stopping), then scaled so that the window's 90% intervals cover 90%. The final model is refitted
on the whole training window with that number of trees.

Censored sales (``stockout``): the first fit leaves stocked-out rows out; the NB ``k`` then
comes from the censored likelihood on the held-out rows (the rows that did not sell out are the
low-demand ones: their spread alone says ``k`` is far too large). ``GbmOptions.censoring``:
``impute`` (default) replaces each stocked-out row's sales by ``E[Y | Y >= sales]`` under the
current fit and refits on every row, a few times (EM); ``likelihood`` does that imputation
inside every boosting round of one fit; ``drop`` leaves the rows out (biased low).

Reproducible bit for bit: one thread, ``deterministic``, ``force_col_wise``, a seed. The file
is JSON with LightGBM's own text format inside, with the kind, version and features.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize, sparse, stats

from promotwin.demand.glm_design import FloatArray, prepare, series_key
from promotwin.demand.glm_estimation import censored_mean, censored_rows
from promotwin.demand.history import validate_history
from promotwin.demand.replay import HistoryError
from promotwin.scenarios.schema import Seasonality

GBM_FORMAT = "gbm-model/1"
FEATURES = (
    "location",
    "sku",
    "group",
    "category",
    "depth",
    "display",
    "feature",
    "promo",
    "promo_prev",
    "promo_next",
    "depth_prev",
    "depth_next",
    "display_prev",
    "display_next",
    "feature_prev",
    "since_promo",
    "regular_price",
    "price_index",
    "price_over_cheapest",
    "other_promoted",
    "other_display",
    "other_feature",
    "other_depth",
    "day_of_year",
    "weekday",
)
CATEGORICAL = ("location", "sku", "group", "category")
SINCE_CAP = 60  # periods since the last promotion, capped (and for "never")
EM_STEPS = 4  # imputation rounds for stocked-out rows (each a full refit)
POISSON_HESSIAN_STEP = math.exp(0.7)  # LightGBM's Poisson max_delta_step safeguard
CENSORING = ("likelihood", "impute", "drop")
PROMO_PRIOR_SD = 2.0  # a category's elasticity / lift (log scale): weak
SKU_PRIOR_SD = 0.5  # a SKU's elasticity around its category's
PROMO_TERMS = ("log_price", "display", "feature")
BASELINE_PRIOR = 4.0  # periods of the SKU's level a series' baseline is shrunk with
# GbmOptions.monotone: a deeper cut, a display, a feature ad never sell less; a higher price
# than the shelf's never sells more (so trees cannot bend the start's price response back)
MONOTONE = {
    "depth": 1,
    "display": 1,
    "feature": 1,
    "promo": 1,
    "price_index": -1,
    "price_over_cheapest": -1,
}


@dataclass(frozen=True)
class GbmOptions:
    """How to fit. LightGBM's defaults with a smaller learning rate, early stopping, and more
    regularisation (leaves of at least 100 rows, L2 10, 80% of the features per tree): chosen
    on a validation window inside the OJ training period (fit before 1991-06, score the second
    half of 1991: promoted WAPE 0.498 -> 0.487), never on the test year."""

    fill_zeros: bool = True  # a missing date/location/sku row means zero sales, no promotion
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 100
    lambda_l2: float = 10.0
    feature_fraction: float = 0.8
    max_rounds: int = 2000
    early_stopping_rounds: int = 50
    validation_share: float = 0.15  # the last share of the training periods
    ci_level: float = 0.90
    seed: int = 0
    num_threads: int = 1
    # stocked-out rows: "likelihood" (censored likelihood inside the boosting), "impute" (EM
    # over whole refits) or "drop" (left out); measured in tests/test_intelligence_models.py
    censoring: str = "impute"
    # the boosting's start: the series baselines times the log-linear promotion terms (True)
    # or the baselines alone (False: the trees must learn the whole promotion response)
    promo_start: bool = True
    monotone: bool = False  # MONOTONE's constraints on the trees
    # the planner's seasonal profile, (category, amplitude, peak day of year) each: a multiplier
    # ``1 + amplitude cos(2 pi (day of year - peak) / 365)`` in the start (baselines are fitted
    # on the de-seasonalised sales), so a history shorter than a year still forecasts a peak it
    # never saw; day-of-year trees cannot
    seasonality: tuple[tuple[str, float, int], ...] = ()


@dataclass
class GbmModel:
    """A fitted LightGBM forecaster; ``save``/``load_model`` as a versioned JSON file."""

    period_days: int
    history_start: str
    history_end: str
    series: list[tuple[str, str, str]]
    sku_category: dict[str, str]
    pickup_share: dict[str, float]
    levels: dict[str, list[str]]  # categorical feature -> its categories (codes are positions)
    baseline: dict[str, float]  # "location|sku|group" -> mean units per period, not promoted
    regular_price: dict[str, float]  # per SKU (NaN-free: SKUs without prices are absent)
    last_promo: dict[str, str]  # "location|sku|group" -> last promoted date in the history
    k_promoted: float
    k_regular: float
    rounds: int
    booster: str  # LightGBM's model text
    features: list[str] = field(default_factory=lambda: list(FEATURES))
    # per "location|sku": stores differ in price level (price zones); else the SKU's price
    series_price: dict[str, float] = field(default_factory=dict)
    # the log-linear promotion start: "<term>|<category>" -> coefficient (see _promo_effects)
    promo_effect: dict[str, float] = field(default_factory=dict)
    # GbmOptions.seasonality: category -> [amplitude, peak day of year]
    seasonality: dict[str, list[float]] = field(default_factory=dict)
    lightgbm_version: str = ""
    source: str = ""
    kind: ClassVar[str] = "gbm"

    def _booster(self) -> Any:
        import lightgbm as lgb

        cached = self.__dict__.get("_cached_booster")
        if cached is None:
            cached = lgb.Booster(model_str=self.booster)
            self.__dict__["_cached_booster"] = cached
        return cached

    def predict(self, rows: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
        """Mean units and NB ``k`` per calendar row."""
        x = feature_frame(rows, self, self.last_promo)
        log_base = start_score(rows, self)
        if np.isnan(log_base).any():
            unknown = sorted(set(series_key(rows)[np.isnan(log_base)]))[:5]
            raise ValueError(
                f"series {unknown} were not in the history the gbm model was fitted on"
            )
        raw = self._booster().predict(x, raw_score=True, num_threads=1)
        mean = np.exp(np.asarray(raw, dtype=np.float64) + log_base)
        k = np.where(rows["promo"].to_numpy() > 0, self.k_promoted, self.k_regular)
        return mean, k.astype(np.float64)

    def to_dict(self) -> dict[str, Any]:
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        return {"format": GBM_FORMAT, "kind": self.kind, "version": 1, **d}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "model file") -> GbmModel:
        if raw.get("format") != GBM_FORMAT or raw.get("version") != 1:
            raise ValueError(
                f"{source}: not a gbm model this version reads (format {raw.get('format')!r}, "
                f"version {raw.get('version')!r}; need {GBM_FORMAT} version 1): refit it"
            )
        d = {k: v for k, v in raw.items() if k not in ("format", "kind", "version")}
        d["series"] = [tuple(s) for s in d["series"]]
        try:
            return cls(**d)
        except TypeError as exc:
            raise ValueError(f"{source}: damaged gbm model file ({exc})") from None


# -- features ---------------------------------------------------------------------------------


def lookup(keys: pd.Series, mapping: Mapping[str, float]) -> FloatArray:
    """``keys.map(mapping)`` as floats, NaN where absent, looked up once per distinct key (a
    forecast calendar has ~400k rows and a few thousand keys: a map per row cost seconds)."""
    code, uniques = pd.factorize(keys)
    values = np.array([mapping.get(k, np.nan) for k in uniques] + [np.nan], dtype=np.float64)
    return values[code]  # a missing key (code -1) takes the NaN at the end


def category_codes(values: pd.Series, levels: list[str]) -> FloatArray:
    """Each value's position in ``levels`` (-1 if not there), as ``pd.Categorical`` codes."""
    code, uniques = pd.factorize(values)
    position = pd.Index(levels).get_indexer(uniques)
    return np.append(position, -1)[code].astype(np.float64)


@dataclass(frozen=True)
class _Grid:
    """Each row's series (an integer id) and period number, to find its neighbours by array
    lookups (string keys and pandas index alignment made the forecast calendar slow)."""

    series: npt.NDArray[np.int64]
    period: npt.NDArray[np.int64]
    order: npt.NDArray[np.int64]  # rows sorted by (series, period)
    sorted_key: npt.NDArray[np.int64]
    stride: int

    @classmethod
    def of(cls, rows: pd.DataFrame, period_days: int) -> _Grid:
        codes = [pd.factorize(rows[c])[0] for c in ("location", "sku", "group")]
        dims = tuple(max(int(c.max()) + 1, 1) for c in codes)
        series = np.ravel_multi_index(codes, dims).astype(np.int64)
        days = (rows["date"] - rows["date"].min()).dt.days.to_numpy(np.int64)
        period = days // period_days
        stride = int(period.max()) + 3  # room for one period either side
        key = series * stride + period + 1
        order = np.argsort(key, kind="stable")
        return cls(series, period, order, key[order], stride)

    def neighbour(self, values: FloatArray, shift: int) -> FloatArray:
        """``values`` of the same series ``shift`` periods away (0 where not in the rows)."""
        target = self.series * self.stride + self.period + 1 + shift
        pos = np.minimum(np.searchsorted(self.sorted_key, target), len(self.sorted_key) - 1)
        found = self.sorted_key[pos] == target
        return np.where(found, values[self.order[pos]], 0.0)


def _since_promo(
    rows: pd.DataFrame, grid: _Grid, period: int, last_promo: Mapping[str, str]
) -> FloatArray:
    """Periods since the series' previous promoted period (before this row), capped."""
    promo = rows["promo"].to_numpy()[grid.order] > 0
    per = grid.period[grid.order].astype(np.float64)
    ser = grid.series[grid.order]
    stamp = np.where(promo, per, np.nan)
    # the latest promoted period so far within each series, then shifted one row
    running = pd.Series(stamp).groupby(ser).ffill().to_numpy()
    first_of_series = np.r_[True, ser[1:] != ser[:-1]]
    prev = np.where(first_of_series, np.nan, np.r_[np.nan, running[:-1]])
    since_sorted = per - prev
    since = np.empty(len(rows))
    since[grid.order] = since_sorted
    if last_promo:
        missing = np.isnan(since)
        if missing.any():
            before = series_key(rows[missing]).map(
                {k: pd.Timestamp(v) for k, v in last_promo.items()}
            )
            days = (rows["date"][missing] - before).dt.days.to_numpy(np.float64)
            since[missing] = days / period
    return np.minimum(np.nan_to_num(since, nan=SINCE_CAP), SINCE_CAP)


def _regular_price(rows: pd.DataFrame, model: GbmModel) -> FloatArray:
    """Each row's regular price: its location's for the SKU where the history had prices
    there, else the SKU's (NaN for SKUs the history had no price for)."""
    by_sku = lookup(rows["sku"], model.regular_price)
    if not model.series_price:
        return by_sku
    key = rows["location"].astype(str) + "|" + rows["sku"].astype(str)
    by_series = lookup(key, model.series_price)
    return np.where(np.isnan(by_series), by_sku, by_series)


def feature_frame(
    rows: pd.DataFrame, model: GbmModel, last_promo: Mapping[str, str]
) -> pd.DataFrame:
    """The model's feature columns for series rows: training rows (``last_promo`` empty) or a
    forecast calendar (``last_promo``: each series' last promoted date before it)."""
    period = model.period_days
    dates = pd.DatetimeIndex(rows["date"])
    reg = _regular_price(rows, model)
    depth = rows["depth"].to_numpy(np.float64)
    paid = reg * (1.0 - depth)
    promo = (rows["promo"].to_numpy() > 0).astype(np.float64)
    keys = [rows["category"], rows["group"], rows["location"], rows["date"]]
    g = pd.DataFrame({"paid": paid, "promo": promo, "depth": depth}).groupby(keys, sort=False)
    count = g["promo"].transform("count").to_numpy(np.float64)
    mean_paid = g["paid"].transform("mean").to_numpy(np.float64)
    cheapest = g["paid"].transform("min").to_numpy(np.float64)
    display = rows["display"].to_numpy(np.float64)
    feature = rows["feature"].to_numpy(np.float64)
    shelf = pd.DataFrame({"display": display, "feature": feature}).groupby(keys, sort=False)
    grid = _Grid.of(rows, period)
    others = np.maximum(count - 1.0, 1.0)
    out: dict[str, FloatArray] = {
        c: category_codes(rows[c].astype(str), model.levels[c]) for c in CATEGORICAL
    }
    weekday: FloatArray = (
        dates.day_of_week.to_numpy(np.float64) if period == 1 else np.zeros(len(rows))
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        out |= {
            "depth": depth,
            "display": display,
            "feature": feature,
            "promo": promo,
            "promo_prev": grid.neighbour(promo, -1),
            "promo_next": grid.neighbour(promo, 1),
            "depth_prev": grid.neighbour(depth, -1),
            "depth_next": grid.neighbour(depth, 1),
            "display_prev": grid.neighbour(display, -1),
            "display_next": grid.neighbour(display, 1),
            "feature_prev": grid.neighbour(feature, -1),
            "since_promo": _since_promo(rows, grid, period, last_promo),
            "regular_price": reg,
            "price_index": paid / mean_paid,
            "price_over_cheapest": paid / cheapest,
            "other_promoted": g["promo"].transform("sum").to_numpy(np.float64) - promo,
            "other_display": shelf["display"].transform("sum").to_numpy(np.float64) - display,
            "other_feature": shelf["feature"].transform("sum").to_numpy(np.float64) - feature,
            "other_depth": (g["depth"].transform("sum").to_numpy(np.float64) - depth) / others,
            "day_of_year": dates.day_of_year.to_numpy(np.float64),
            "weekday": weekday,
        }
    frame = pd.DataFrame(out)[list(model.features)]
    for c in CATEGORICAL:  # unseen ids (code -1) become LightGBM's missing value
        frame[c] = frame[c].where(frame[c] >= 0, np.nan)
    return frame


# -- fitting ----------------------------------------------------------------------------------


def _baselines(rows: pd.DataFrame, y: FloatArray) -> dict[str, float]:
    """Per series mean units over non-promoted periods, shrunk toward the SKU x group mean by
    ``BASELINE_PRIOR`` periods (series that were always promoted, or are short, borrow it)."""
    frame = pd.DataFrame({"key": series_key(rows), "sg": rows["sku"] + "|" + rows["group"], "y": y})
    regular = frame[rows["promo"].to_numpy() == 0]
    sku_level = regular.groupby("sg")["y"].mean()
    prior = frame.groupby("sg")["y"].mean()  # SKUs never sold unpromoted: their overall mean
    prior.loc[sku_level.index] = sku_level
    sg = frame.groupby("key")["sg"].first()
    total = regular.groupby("key")["y"].sum().reindex(sg.index, fill_value=0.0)
    n = regular.groupby("key")["y"].size().reindex(sg.index, fill_value=0)
    level = (total + BASELINE_PRIOR * prior.reindex(sg.to_numpy()).to_numpy() + 0.5) / (
        n + BASELINE_PRIOR
    )
    return {str(k): float(v) for k, v in level.items()}


def _train(
    x: pd.DataFrame,
    y: FloatArray,
    log_base: FloatArray,
    opts: GbmOptions,
    rounds: int,
    valid: tuple[pd.DataFrame, FloatArray, FloatArray] | None = None,
    objective: Callable[[FloatArray, Any], tuple[FloatArray, FloatArray]] | None = None,
) -> Any:
    import lightgbm as lgb

    params: dict[str, Any] = {
        "objective": objective or "poisson",
        "learning_rate": opts.learning_rate,
        "num_leaves": opts.num_leaves,
        "min_data_in_leaf": opts.min_data_in_leaf,
        "lambda_l2": opts.lambda_l2,
        "feature_fraction": opts.feature_fraction,
        "num_threads": opts.num_threads,
        "deterministic": True,
        "force_col_wise": True,
        "seed": opts.seed,
        "verbose": -1,
        "metric": "poisson",
    }
    if opts.monotone:
        params["monotone_constraints"] = [MONOTONE.get(str(c), 0) for c in x.columns]
        params["monotone_constraints_method"] = "intermediate"
    cats = list(CATEGORICAL)
    train = lgb.Dataset(x, y, init_score=log_base, categorical_feature=cats, free_raw_data=False)
    callbacks: list[Any] = []
    sets: list[Any] = []
    if valid is not None:
        vx, vy, vb = valid
        sets = [lgb.Dataset(vx, vy, init_score=vb, categorical_feature=cats, reference=train)]
        callbacks = [lgb.early_stopping(opts.early_stopping_rounds, verbose=False)]
    return lgb.train(params, train, rounds, valid_sets=sets, callbacks=callbacks)


def _nb_k(y: FloatArray, mean: FloatArray, censored: npt.NDArray[np.bool_] | None = None) -> float:
    """Maximum-likelihood NB ``k`` of ``y`` around the means ``mean``; ``censored`` rows count
    as ``Y >= y`` (left out, the rows that did not sell out are the low-demand ones: their
    spread is too narrow and would make ``k`` too large)."""
    m = np.maximum(mean, 1e-9)
    cens = np.zeros(len(y), bool) if censored is None else censored

    def nll(log_k: float) -> float:
        k = math.exp(log_k)
        p = k / (k + m)
        ll = stats.nbinom.logpmf(y[~cens], k, p[~cens]).sum()
        ll += stats.nbinom.logsf(y[cens] - 1, k, p[cens]).sum()
        return -float(ll)

    res = optimize.minimize_scalar(nll, bounds=(math.log(0.05), math.log(1e4)), method="bounded")
    return float(math.exp(res.x))


def _calibrated_k(y: FloatArray, mean: FloatArray, level: float) -> float:
    """The ML ``k``, then scaled so the share of ``y`` inside the central ``level`` interval is
    ``level`` (a smaller ``k`` widens the interval)."""
    k0 = _nb_k(y, mean)
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2

    def coverage(k: float) -> float:
        p = k / (k + mean)
        lo = stats.nbinom.ppf(lo_q, k, p)
        hi = stats.nbinom.ppf(hi_q, k, p)
        return float(((y >= lo) & (y <= hi)).mean())

    lo_k, hi_k = k0 / 100, k0 * 100
    if not coverage(lo_k) >= level >= coverage(hi_k):
        return k0
    for _ in range(40):  # bisection on log k: coverage falls as k grows
        mid = math.sqrt(lo_k * hi_k)
        if coverage(mid) >= level:
            lo_k = mid
        else:
            hi_k = mid
    return float(lo_k)


def _censored_k(
    y: FloatArray,
    pred: FloatArray,
    promo: npt.NDArray[np.bool_],
    censored: npt.NDArray[np.bool_],
    held: npt.NDArray[np.bool_],
    calibrated: dict[bool, float],
) -> dict[bool, float]:
    """Per promoted / other rows, the censored-ML ``k`` on every held-out row where some of
    them sold out (the calibration saw only the rows that did not: on the test history's
    promoted days ``k`` 80 where the censored likelihood says 4.2, and imputations under 80
    recover 2,405 of 3,018 units where under 4.2 they recover 2,874)."""
    out = dict(calibrated)
    for flag in (True, False):
        sel = held & (promo == flag)
        if sel.sum() >= 20 and censored[sel].any():
            out[flag] = _nb_k(y[sel], pred[sel], censored[sel])
    return out


def _censored_poisson(
    y: FloatArray, censored: npt.NDArray[np.bool_], k: FloatArray
) -> Callable[[FloatArray, Any], tuple[FloatArray, FloatArray]]:
    """LightGBM objective: the Poisson deviance, a stocked-out row's target being its
    expected demand ``E[Y | Y >= sales]`` under the current scores (NB with ``k``), recomputed
    every boosting round. Its fixed point is the censored likelihood's (the score of a
    censored row is the complete-data score at ``E[Y | Y >= sales]``), reached inside one fit
    rather than over refits. The Hessian is LightGBM's own Poisson one (``max_delta_step``
    0.7) so steps on near-zero means stay bounded."""
    alpha = 1.0 / k[censored]
    sales = y[censored]

    def objective(scores: FloatArray, _data: Any) -> tuple[FloatArray, FloatArray]:
        mu = np.exp(scores)
        target = y.copy()
        target[censored] = censored_mean(sales, mu[censored], alpha)
        return mu - target, mu * POISSON_HESSIAN_STEP

    return objective


def _final_fit(
    rows: pd.DataFrame,
    x: pd.DataFrame,
    y: FloatArray,
    censored: npt.NDArray[np.bool_],
    pred: FloatArray,
    k_row: FloatArray,
    model: GbmModel,
    opts: GbmOptions,
    rounds: int,
) -> Any:
    """The model on the whole training window with ``rounds`` trees, the stocked-out rows
    handled as ``opts.censoring`` says (``pred``: the first fit's means, to start from)."""
    if not censored.any():
        return _train(x, y, _set_start(model, rows, y, opts), opts, rounds)
    if opts.censoring == "drop":
        keep = ~censored
        return _train(x[keep], y[keep], _set_start(model, rows[keep], y[keep], opts), opts, rounds)
    # the start from one imputation under the first fit
    imputed = np.where(censored, censored_mean(y, pred, 1.0 / k_row), y)
    log_full = _set_start(model, rows, imputed, opts)
    if opts.censoring == "likelihood":
        objective = _censored_poisson(y, censored, k_row)
        return _train(x, y, log_full, opts, rounds, objective=objective)
    final = None  # "impute": EM over whole refits
    for _ in range(EM_STEPS):
        final = _train(
            x, np.where(censored, censored_mean(y, pred, 1.0 / k_row), y), log_full, opts, rounds
        )
        pred = np.exp(final.predict(x, raw_score=True, num_threads=1) + log_full)
    return final


def _promo_design(
    rows: pd.DataFrame, categories: list[str], skus: list[str]
) -> tuple[sparse.csr_matrix, list[str], FloatArray]:
    """The log-linear promotion terms (the twin's and the GLM's): per category ``log(1 -
    depth)``, display and feature, and per SKU its deviation from the category's elasticity.
    Returns the columns (sparse: each row has at most four non-zeros), their names and their
    prior sds."""
    n = len(rows)
    cat = pd.Categorical(rows["category"].astype(str), categories=categories).codes
    sku = pd.Categorical(rows["sku"].astype(str), categories=skus).codes
    log_price = np.log1p(-rows["depth"].to_numpy(np.float64))
    values = [log_price, rows["display"].to_numpy(np.float64), rows["feature"].to_numpy(np.float64)]
    r = np.arange(n)
    cols = [3 * cat.astype(np.int64) + t for t in range(3)] + [3 * len(categories) + sku]
    data = np.concatenate([*values, log_price])
    x = sparse.csr_matrix(
        (data, (np.tile(r, 4), np.concatenate(cols))), shape=(n, 3 * len(categories) + len(skus))
    )
    names = [f"{t}|{c}" for c in categories for t in PROMO_TERMS]
    names += [f"log_price_sku|{k}" for k in skus]
    sd = np.r_[np.full(3 * len(categories), PROMO_PRIOR_SD), np.full(len(skus), SKU_PRIOR_SD)]
    return x, names, sd


def _promo_effects(rows: pd.DataFrame, y: FloatArray, log_base: FloatArray) -> dict[str, float]:
    """A penalised Poisson GLM of the promotion terms on top of the series baselines.

    Trees cannot extrapolate: a promotion deeper than any in the history would get the
    deepest one's uplift. Starting the boosting from ``baseline x exp(elasticity log(1 -
    depth) + display + feature)`` lets a deeper cut sell more by the fitted elasticity; the
    trees then learn what the log-linear terms miss (interactions, lags, cross-price). An
    effect the history cannot identify shrinks to 0: a category's toward none, a SKU's
    elasticity toward its category's (partial pooling)."""
    from promotwin.demand.glm_irls import penalised_nb_glm

    x, names, sd = _promo_design(
        rows,
        sorted(rows["category"].astype(str).unique()),
        sorted(rows["sku"].astype(str).unique()),
    )
    used = np.asarray(abs(x).sum(axis=0)).ravel() > 0
    if not used.any():
        return {}
    fit = penalised_nb_glm(y, x[:, used], log_base, 0.0, sd[used], maxiter=50)
    kept = [n for n, u in zip(names, used, strict=True) if u]
    return {n: float(v) for n, v in zip(kept, fit.params, strict=True)}


def _set_start(model: GbmModel, rows: pd.DataFrame, y: FloatArray, opts: GbmOptions) -> FloatArray:
    """Fit the boosting's start (series baselines, promotion terms unless
    ``opts.promo_start`` is off) on ``rows``; its score."""
    model.baseline = _baselines(rows, y / np.exp(log_season(rows, model)))
    model.promo_effect = {}
    log_base = start_score(rows, model)
    if opts.promo_start:
        model.promo_effect = _promo_effects(rows, y, log_base)
    return start_score(rows, model)


def seasonal_profile(
    seasonality: Mapping[str, Seasonality],
) -> tuple[tuple[str, float, int], ...]:
    """A scenario's seasonality (``demand.seasonality``) as ``GbmOptions.seasonality``."""
    return tuple((c, float(s.amplitude), int(s.peak_day)) for c, s in sorted(seasonality.items()))


def log_season(rows: pd.DataFrame, model: GbmModel) -> FloatArray:
    """Each row's log seasonal multiplier from the model's profile (0 without one)."""
    if not model.seasonality:
        return np.zeros(len(rows))
    cat = rows["category"].astype(str)
    amp = np.nan_to_num(lookup(cat, {c: v[0] for c, v in model.seasonality.items()}))
    peak = np.nan_to_num(lookup(cat, {c: v[1] for c, v in model.seasonality.items()}))
    doy = pd.DatetimeIndex(rows["date"]).day_of_year.to_numpy(np.float64)
    return np.asarray(np.log1p(amp * np.cos(2 * np.pi * (doy - peak) / 365.0)), np.float64)


def start_score(rows: pd.DataFrame, model: GbmModel) -> FloatArray:
    """Each row's log start: its series' baseline, the seasonal profile and the log-linear
    promotion terms (NaN for series the model has no baseline for)."""
    log_base = np.log(lookup(series_key(rows), model.baseline)) + log_season(rows, model)
    if not model.promo_effect:
        return log_base
    effect = model.promo_effect
    cat = rows["category"].astype(str)
    sku = rows["sku"].astype(str)
    log_price = np.log1p(-rows["depth"].to_numpy(np.float64))

    def per(term: str, keys: pd.Series) -> FloatArray:
        code, uniques = pd.factorize(keys)
        return np.array([effect.get(f"{term}|{k}", 0.0) for k in uniques])[code]

    score = log_price * (per("log_price", cat) + per("log_price_sku", sku))
    score += rows["display"].to_numpy(np.float64) * per("display", cat)
    score += rows["feature"].to_numpy(np.float64) * per("feature", cat)
    return np.asarray(log_base + score, dtype=np.float64)


def fit_gbm(
    history: pd.DataFrame,
    categories: Mapping[str, str] | None = None,
    options: GbmOptions | None = None,
    source: str = "history",
) -> GbmModel:
    """Validate ``history`` and fit the gradient-boosted forecaster (see the module docstring)."""
    import lightgbm as lgb

    opts = options or GbmOptions()
    if opts.censoring not in CENSORING:
        raise ValueError(f"censoring {opts.censoring!r}: use one of {list(CENSORING)}")
    clean = validate_history(history, source=source)
    rows, pickup_share, period = prepare(clean, categories, opts.fill_zeros)
    dates = np.sort(rows["date"].unique())
    n_valid = max(1, int(round(len(dates) * opts.validation_share)))
    if len(dates) - n_valid < 2:
        raise HistoryError(
            f"{source}: {len(dates)} periods are too few for the gbm model (it holds out the "
            f"last {opts.validation_share:.0%} to calibrate): give a longer history"
        )
    cut = pd.Timestamp(dates[-n_valid])
    model = _empty_model(clean, rows, pickup_share, period, source)
    model.seasonality = {c: [float(a), float(d)] for c, a, d in opts.seasonality}
    y = rows["units"].to_numpy(np.float64)
    censored = censored_rows(rows)
    x = feature_frame(rows, model, {})
    is_train = (rows["date"] < cut).to_numpy()
    # first fit: before the validation window, stocked-out rows left out; picks the rounds
    fit_rows = is_train & ~censored
    _set_start(model, rows[fit_rows], y[fit_rows], opts)
    log_b = start_score(rows, model)
    log_b = np.where(np.isnan(log_b), math.log(0.5), log_b)  # series first seen in validation
    valid_rows = ~is_train & ~censored
    first = _train(
        x[fit_rows],
        y[fit_rows],
        log_b[fit_rows],
        opts,
        opts.max_rounds,
        valid=(x[valid_rows], y[valid_rows], log_b[valid_rows]),
    )
    rounds = max(int(first.best_iteration or opts.max_rounds), 1)
    pred = np.exp(first.predict(x, raw_score=True, num_threads=1) + log_b)
    promo = rows["promo"].to_numpy() > 0
    k_by: dict[bool, float] = {}
    for flag in (True, False):
        sel = valid_rows & (promo == flag)
        if sel.sum() < 20:  # too few validation rows of this kind: use all of them
            sel = valid_rows
        k_by[flag] = _calibrated_k(y[sel], pred[sel], opts.ci_level)
    if censored.any():  # the coverage of demand cannot be measured on sold-out rows
        k_by = _censored_k(y, pred, promo, censored, ~is_train, k_by)
    k_row = np.where(promo, k_by[True], k_by[False])
    final = _final_fit(rows, x, y, censored, pred, k_row, model, opts, rounds)
    model.booster = final.model_to_string()
    model.rounds = rounds
    model.k_promoted, model.k_regular = k_by[True], k_by[False]
    model.lightgbm_version = lgb.__version__
    return model


def _empty_model(
    clean: pd.DataFrame,
    rows: pd.DataFrame,
    pickup_share: dict[str, float],
    period: int,
    source: str,
) -> GbmModel:
    """The model's lookup tables from the history (booster, baseline and ``k`` come later)."""
    if "price" in clean.columns:
        per_series = clean.groupby(["location", "sku"])["price"].max()
        reg_price = {str(k): float(v) for k, v in per_series.groupby(level="sku").median().items()}
        names = per_series.index.get_level_values(0).astype(str) + "|"
        names += per_series.index.get_level_values(1).astype(str)
        series_price = dict(zip(names, per_series.to_numpy(np.float64).tolist(), strict=True))
    else:
        reg_price, series_price = {}, {}
    last = rows[rows["promo"] > 0].assign(key=series_key).groupby("key")["date"].max()
    return GbmModel(
        period_days=period,
        history_start=str(rows["date"].min().date()),
        history_end=str(rows["date"].max().date()),
        series=[
            (str(a), str(b), str(c))
            for a, b, c in rows[["location", "sku", "group"]]
            .drop_duplicates()
            .itertuples(index=False)
        ],
        sku_category={str(k): str(v) for k, v in rows.groupby("sku")["category"].first().items()},
        pickup_share=pickup_share,
        levels={c: sorted(rows[c].astype(str).unique()) for c in CATEGORICAL},
        baseline={},
        regular_price=reg_price,
        series_price=series_price,
        last_promo={str(k): str(pd.Timestamp(v).date()) for k, v in last.items()},
        k_promoted=1.0,
        k_regular=1.0,
        rounds=0,
        booster="",
        source=source,
    )
