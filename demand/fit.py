"""Fit the promotion demand model to a sales history: negative-binomial GLMs with a log link.

One GLM per category (statsmodels ``GLM`` with ``NegativeBinomial``), on store demand
(walk-in + pickup, the twin's store cell) and ecommerce series::

    log E[units] = location + sku (+ ecommerce x sku) + weekday + season (2 annual harmonics)
                   + elasticity_sku * log(1 - depth) + log(1 + display_lift) * display
                   + log(1 + feature_lift) * feature
                   + log(1 - dip * ramp)                  (post-promotion dip, linear recovery)
                   + log(max(1 - cannibalisation * z, 0.3))   (same-category promotions)

which is the twin's generator (``demand/model.py``) written as a likelihood. ``z`` is the twin's
cannibalisation pressure: the promoted same-category SKUs' extra units over the non-promoted
SKUs' base units at the same location and date. The two terms that are not log-linear are
linearised around the current estimate and the GLM refitted until the estimate stops moving
(a Gauss-Newton fixed point, so the GLM's standard errors are the right ones at convergence).
The negative-binomial ``alpha`` (= 1/k) comes from the Pearson moment equation between refits.

Partial pooling: per-SKU elasticities are shrunk toward their category mean by empirical Bayes
(DerSimonian-Laird between-SKU variance; each SKU keeps ``tau^2 / (tau^2 + se^2)`` of its own
deviation). Sparse or never-promoted SKUs borrow the category's estimate with its spread as
their uncertainty. Stores enter as multiplicative fixed effects (the twin's ``size``) and share
the promotion effects. Display/feature lift, dip, cannibalisation and dispersion are estimated
per category and pooled across categories by inverse-variance weighting for the twin, which has
one value of each. The fitted model is a JSON file (parameters, standard errors, intervals and
each category's covariance), so it can be versioned and reviewed.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import statsmodels.api as sm
from scipy import linalg, stats

from promotwin import strict_json
from promotwin.demand._blas import single_thread_blas
from promotwin.demand.history import attach_categories, validate_history
from promotwin.demand.replay import HistoryError
from promotwin.scenarios.schema import Scenario, Seasonality

FloatArray = npt.NDArray[np.float64]
FORMAT = "demand-model/1"
STORE, ECOM = "store", "ecommerce"
CANNIBALISATION_FLOOR = 0.3  # the twin's floor: a SKU keeps at least 30% of its demand
MIN_SEASON_SPAN_DAYS = 300
THETA_MAX = 0.95


@dataclass(frozen=True)
class FitOptions:
    """How to fit. ``post_promo_periods`` defaults to 7 days (daily) or 1 week (weekly data)."""

    post_promo_periods: int | None = None
    fill_zeros: bool = True  # a missing date/location/sku row means zero sales, no promotion
    seasonality: bool | None = None  # None: fit it when the history spans >= 300 days
    ci_level: float = 0.90
    max_refits: int = 12
    tol: float = 1e-5
    # forecast refinements (the twin-facing parameters stay precision-weighted summaries):
    series_effects: bool = True  # shrunk location x SKU x channel-group baselines
    sku_lifts: bool = True  # display/feature lift per SKU, shrunk to the category mean
    cross_price: bool = False  # per-SKU slope on the other SKUs' mean log(1 - depth)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and ``ci_level`` interval."""

    value: float
    se: float
    low: float
    high: float

    @classmethod
    def wald(cls, value: float, se: float, level: float) -> Estimate:
        z = float(stats.norm.ppf(0.5 + level / 2))
        return cls(float(value), float(se), float(value - z * se), float(value + z * se))

    def map(self, f: Any) -> Estimate:
        """Transform value and bounds by a monotone increasing ``f`` (se by the delta method)."""
        v = float(f(self.value))
        eps = 1e-6
        slope = (float(f(self.value + eps)) - float(f(self.value - eps))) / (2 * eps)
        return Estimate(v, abs(slope) * self.se, float(f(self.low)), float(f(self.high)))

    def covers(self, truth: float) -> bool:
        return self.low <= truth <= self.high


@dataclass
class CategoryFit:
    """One category's GLM: parameter names, estimates, covariance and the NB alpha."""

    category: str
    columns: list[str]
    coef: list[float]
    cov: list[list[float]]
    alpha: float
    n_obs: int
    refits: int
    converged: bool
    skus: list[str]
    locations: list[str]
    seasonal: bool
    sku_lifts: bool = False
    cross_price: bool = False
    # "location|sku|group" -> [log effect, its posterior variance] (shrunk random effect)
    series_effect: dict[str, list[float]] = field(default_factory=dict)

    def design(self, weekday: bool) -> Design:
        return Design(
            self.locations, self.skus, weekday, self.seasonal, self.sku_lifts, self.cross_price
        )

    def series_terms(self, rows: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
        """Each row's series effect and its variance (0 for series without one)."""
        if not self.series_effect:
            return np.zeros(len(rows)), np.zeros(len(rows))
        key = series_key(rows)
        u = key.map({k: v[0] for k, v in self.series_effect.items()}).fillna(0.0)
        v = key.map({k: v[1] for k, v in self.series_effect.items()}).fillna(0.0)
        return np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)

    def param(self, name: str) -> tuple[float, float] | None:
        if name not in self.columns:
            return None
        i = self.columns.index(name)
        return self.coef[i], math.sqrt(max(self.cov[i][i], 0.0))


@dataclass
class FittedModel:
    """Everything the forecast and the twin need; ``save``/``load`` as JSON."""

    period_days: int
    post_promo_periods: int
    ci_level: float
    history_start: str
    history_end: str
    categories: dict[str, CategoryFit]
    sku_category: dict[str, str]
    elasticity: dict[str, Estimate]  # pooled (shrunk) per SKU
    elasticity_raw: dict[str, Estimate]  # per-SKU GLM estimate, where identified
    category_elasticity: dict[str, dict[str, float]]  # mean, se, tau
    display_lift: Estimate
    feature_lift: Estimate
    cannibalisation: Estimate
    post_promo_dip: Estimate
    dispersion: float  # NB k = 1 / alpha, pooled
    weekday: list[float]  # 7 multipliers, mean 1 (all 1 for weekly data)
    pickup_share: dict[str, float]  # by location: pickup / (walk-in + pickup)
    last_promo: dict[str, str]  # "location|sku" -> last promoted date in the history
    series: list[tuple[str, str, str]] = field(default_factory=list)  # location, sku, group
    # per-SKU display/feature log-lift, shrunk: "display[sku]" / "feature[sku]" -> Estimate
    sku_lift: dict[str, Estimate] = field(default_factory=dict)
    source: str = ""
    notes: list[str] = field(default_factory=list)

    # -- persistence --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(strict_json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FittedModel:
        if raw.get("format") != FORMAT:
            raise ValueError(
                f"not a fitted demand model (format {raw.get('format')!r}, need {FORMAT})"
            )
        d = {k: v for k, v in raw.items() if k != "format"}
        est = ("display_lift", "feature_lift", "cannibalisation", "post_promo_dip")
        for k in est:
            d[k] = Estimate(**d[k])
        for k in ("elasticity", "elasticity_raw", "sku_lift"):
            d[k] = {s: Estimate(**e) for s, e in d.get(k, {}).items()}
        d["categories"] = {c: CategoryFit(**v) for c, v in d["categories"].items()}
        d["series"] = [tuple(x) for x in d.get("series", [])]
        return cls(**d)

    @classmethod
    def load(cls, path: str | Path) -> FittedModel:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read the fitted model ({exc})") from None
        return cls.from_dict(raw)

    def summary(self) -> pd.DataFrame:
        """One row per parameter: value, se, interval."""
        rows = [
            ("display_lift", "", self.display_lift),
            ("feature_lift", "", self.feature_lift),
            ("cannibalisation", "", self.cannibalisation),
            ("post_promo_dip", "", self.post_promo_dip),
        ]
        rows += [("elasticity", s, e) for s, e in self.elasticity.items()]
        return pd.DataFrame(
            [(n, s, e.value, e.se, e.low, e.high) for n, s, e in rows],
            columns=["parameter", "sku", "value", "se", "low", "high"],
        )


# -- preparing the rows -----------------------------------------------------------------------


def detect_period(dates: pd.Series) -> int:
    """1 for daily data, 7 for weekly (the most common gap between distinct dates)."""
    uniq = np.sort(pd.to_datetime(dates.unique()))
    if len(uniq) < 2:
        return 1
    gaps = np.diff(uniq).astype("timedelta64[D]").astype(np.int64)
    return 7 if np.median(gaps) >= 7 else 1


def prepare(
    history: pd.DataFrame,
    categories: Mapping[str, str] | None = None,
    fill_zeros: bool = True,
    period_days: int | None = None,
) -> tuple[pd.DataFrame, dict[str, float], int]:
    """Series rows ``date, location, sku, group, category, units, depth, display, feature, promo``.

    Walk-in and pickup are summed into the store group; ecommerce is its own group. Returns the
    rows, the pickup share by location and the period in days.
    """
    f = attach_categories(history, categories)
    period = period_days or detect_period(f["date"])
    f = f.assign(group=np.where(f["channel"] == "ecommerce", ECOM, STORE))
    pick = f[f["group"] == STORE].pivot_table(
        index="location", columns="channel", values="units", aggfunc="sum", fill_value=0
    )
    pickup_share: dict[str, float] = {}
    for loc, row in pick.iterrows():
        total = float(row.sum())
        pickup_share[str(loc)] = float(row.get("pickup", 0.0)) / total if total > 0 else 0.0
    keys = ["date", "location", "sku", "group"]
    rows = f.groupby(keys, as_index=False, sort=False).agg(
        units=("units", "sum"),
        depth=("depth", "max"),
        display=("display", "max"),
        feature=("feature", "max"),
        promo=("promo", "max"),
        category=("category", "first"),
    )
    if fill_zeros:
        series = rows[["location", "sku", "group", "category"]].drop_duplicates()
        start, end = rows["date"].min(), rows["date"].max()
        dates = pd.date_range(start, end, freq=f"{period}D")
        grid = series.merge(pd.DataFrame({"date": dates}), how="cross")
        rows = grid.merge(rows.drop(columns="category"), on=keys, how="left")
        rows = rows.fillna({"units": 0, "depth": 0.0, "display": 0, "feature": 0, "promo": 0})
        for c in ("units", "display", "feature", "promo"):
            rows[c] = rows[c].astype(np.int64)
    rows = rows.sort_values(["category", "group", "location", "sku", "date"], ignore_index=True)
    return rows, pickup_share, period


def post_promo_ramp(
    rows: pd.DataFrame,
    period: int,
    periods_after: int,
    last_promo: Mapping[str, str] | None = None,
) -> FloatArray:
    """``1 - (k - 1) / P`` for the k-th period (1..P) after a series' last promoted period."""
    if periods_after <= 0:
        return np.zeros(len(rows))
    promo_date = rows["date"].where(rows["promo"] > 0)
    key = rows["location"].astype(str) + "|" + rows["sku"].astype(str) + "|" + rows["group"]
    order = np.lexsort((rows["date"].to_numpy(), key.to_numpy()))
    pd_sorted = promo_date.iloc[order]
    key_sorted = key.iloc[order]
    last = pd_sorted.groupby(key_sorted.to_numpy()).shift(1)
    last = last.groupby(key_sorted.to_numpy()).ffill()
    last_arr = pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns]")
    last_arr.iloc[order] = last.to_numpy()
    if last_promo:
        prior = (rows["location"].astype(str) + "|" + rows["sku"].astype(str)).map(
            {k: pd.Timestamp(v) for k, v in last_promo.items()}
        )
        last_arr = last_arr.fillna(prior)
    k = (rows["date"] - last_arr).dt.days.to_numpy(np.float64) / period
    ramp = np.where(
        (rows["promo"].to_numpy() == 0) & (k >= 1) & (k <= periods_after),
        1.0 - (k - 1.0) / periods_after,
        0.0,
    )
    return np.nan_to_num(ramp)


# -- the design matrix ------------------------------------------------------------------------


def series_key(rows: pd.DataFrame) -> pd.Series:
    """``location|sku|group`` of each row (the key of the series effects)."""
    return rows["location"].astype(str) + "|" + rows["sku"].astype(str) + "|" + rows["group"]


def cross_price(rows: pd.DataFrame) -> FloatArray:
    """Mean ``log(1 - depth)`` of the *other* SKUs at the row's category, group, location, date
    (their planned price cuts; 0 when the row's SKU is alone)."""
    logp = np.log1p(-rows["depth"].to_numpy(np.float64))
    keys = [rows["category"], rows["group"], rows["location"], rows["date"]]
    g = pd.Series(logp).groupby(keys, sort=False)
    total = g.transform("sum").to_numpy()
    count = g.transform("count").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 1, (total - logp) / np.maximum(count - 1, 1), 0.0)


@dataclass
class Design:
    """Columns of one category's GLM, built the same way for fitting and forecasting."""

    locations: list[str]
    skus: list[str]
    weekday: bool
    seasonal: bool
    sku_lifts: bool = False
    cross_price: bool = False

    def base_columns(self) -> list[str]:
        cols = [f"loc[{x}]" for x in self.locations]
        cols += [f"sku[{x}]" for x in self.skus[1:]]
        cols += [f"ecom[{x}]" for x in self.skus]
        if self.weekday:
            cols += [f"weekday[{d}]" for d in range(1, 7)]
        if self.seasonal:
            cols += ["season_cos1", "season_sin1", "season_cos2", "season_sin2"]
        return cols

    def promo_columns(self) -> list[str]:
        """The own-promotion columns (their sum is the row's log uplift)."""
        cols = [f"elasticity[{x}]" for x in self.skus]
        if self.sku_lifts:
            cols += [f"display[{x}]" for x in self.skus]
            return cols + [f"feature[{x}]" for x in self.skus]
        return cols + ["display", "feature"]

    def cross_columns(self) -> list[str]:
        return [f"cross[{x}]" for x in self.skus] if self.cross_price else []

    def matrix(self, rows: pd.DataFrame) -> tuple[FloatArray, list[str]]:
        """Base, promotion and cross-price columns (not the linearised dip / cannibalisation)."""
        n = len(rows)
        loc_i = pd.Categorical(rows["location"], categories=self.locations).codes.astype(np.int64)
        sku_i = pd.Categorical(rows["sku"], categories=self.skus).codes.astype(np.int64)
        if (loc_i < 0).any() or (sku_i < 0).any():
            raise ValueError("rows with a location or SKU the model was not fitted on")
        is_ecom = (rows["group"] == ECOM).to_numpy()
        cols = self.base_columns() + self.promo_columns() + self.cross_columns()
        x = np.zeros((n, len(cols)))
        r = np.arange(n)
        nl, ns = len(self.locations), len(self.skus)
        x[r, loc_i] = 1.0
        has_sku = sku_i > 0
        x[r[has_sku], nl + sku_i[has_sku] - 1] = 1.0
        x[r[is_ecom], nl + ns - 1 + sku_i[is_ecom]] = 1.0
        j = nl + 2 * ns - 1
        dates = pd.DatetimeIndex(rows["date"])
        if self.weekday:
            wd = dates.day_of_week.to_numpy()
            ok = wd > 0
            x[r[ok], j + wd[ok] - 1] = 1.0
            j += 6
        if self.seasonal:
            u = 2 * np.pi * dates.day_of_year.to_numpy() / 365.25
            x[:, j : j + 4] = np.column_stack([np.cos(u), np.sin(u), np.cos(2 * u), np.sin(2 * u)])
            j += 4
        logp = np.log1p(-rows["depth"].to_numpy(np.float64))
        x[r, j + sku_i] = logp
        j += ns
        display = rows["display"].to_numpy(np.float64)
        feature = rows["feature"].to_numpy(np.float64)
        if self.sku_lifts:
            x[r, j + sku_i] = display
            x[r, j + ns + sku_i] = feature
            j += 2 * ns
        else:
            x[:, j] = display
            x[:, j + 1] = feature
            j += 2
        if self.cross_price:
            x[r, j + sku_i] = cross_price(rows)
        return x, cols


def cannibalisation_pressure(
    rows: pd.DataFrame, base: FloatArray, uplift: FloatArray
) -> FloatArray:
    """The twin's ``z``: promoted same-category extra units / non-promoted base units, per row.

    ``base`` and ``uplift`` are each row's base level and promotion multiplier; z is 0 on
    promoted rows (they are not cannibalised) and where nothing else is promoted.
    """
    promo = rows["promo"].to_numpy() > 0
    extra = np.where(promo, base * np.maximum(uplift - 1.0, 0.0), 0.0)
    other = np.where(promo, 0.0, base)
    keys = [rows["category"], rows["group"], rows["location"], rows["date"]]
    g = pd.DataFrame({"e": extra, "o": other}).groupby(keys, sort=False)
    e_sum = g["e"].transform("sum").to_numpy()
    o_sum = g["o"].transform("sum").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(o_sum > 0, e_sum / o_sum, 0.0)
    return np.where(promo, 0.0, z)


def _linearised(theta: float, x: FloatArray, floor: float) -> tuple[FloatArray, FloatArray]:
    """Offset and regressor so that ``offset + theta' * w ~ log(max(1 - theta' x, floor))``."""
    inner = 1.0 - theta * x
    clipped = inner < floor
    safe = np.maximum(inner, floor)
    w = np.where(clipped, 0.0, -x / safe)
    return np.log(safe) - theta * w, w


def _independent_columns(x: FloatArray) -> npt.NDArray[np.bool_]:
    """Columns to keep: drop all-zero ones and those linearly dependent on earlier ones."""
    keep = np.abs(x).sum(axis=0) > 0
    xs = x[:, keep]
    scale = np.sqrt((xs**2).sum(axis=0))
    gram = (xs.T @ xs) / np.outer(scale, scale)
    _, r, piv = linalg.qr(gram, pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > diag[0] * 1e-10).sum())
    ok = np.zeros(xs.shape[1], dtype=bool)
    ok[piv[:rank]] = True
    out = np.zeros(x.shape[1], dtype=bool)
    out[np.nonzero(keep)[0][ok]] = True
    return out


# -- fitting ----------------------------------------------------------------------------------


@dataclass
class _State:
    coef: dict[str, float]
    dip: float
    cannib: float
    alpha: float


def _row_terms(
    design: Design, x: FloatArray, cols: list[str], coef: Mapping[str, float]
) -> tuple[FloatArray, FloatArray]:
    """Each row's log base level ``location + sku + ecommerce`` and log promotion multiplier."""
    base_names = [c for c in cols if c.startswith(("loc[", "sku[", "ecom["))]
    promo_names = design.promo_columns()
    idx = {c: i for i, c in enumerate(cols)}
    b = x[:, [idx[c] for c in base_names]] @ np.array([coef.get(c, 0.0) for c in base_names])
    p = x[:, [idx[c] for c in promo_names]] @ np.array([coef.get(c, 0.0) for c in promo_names])
    return b, p


def _series_effects(
    codes: npt.NDArray[np.intp], y: FloatArray, mu: FloatArray, u: FloatArray, alpha: float
) -> tuple[FloatArray, FloatArray]:
    """Empirical-Bayes location x SKU x group effects (log scale) given the fitted means.

    Per series the raw effect ``log(sum y / sum m)`` (``m`` the mean without the effect) with
    variance ``1 / sum(mu / (1 + alpha mu))``; a normal prior with mean 0 and a method-of-moments
    variance; posterior means and variances per series.
    """
    n = int(codes.max()) + 1
    m = mu * np.exp(-u[codes])
    ys = np.bincount(codes, y, n)
    ms = np.bincount(codes, m, n)
    info = np.bincount(codes, mu / (1 + alpha * mu), n)
    raw = np.log((ys + 0.5) / (ms + 0.5))
    v = 1.0 / np.maximum(info, 1e-9)
    tau2 = max(0.0, float(np.mean(raw**2 - v)))
    b = tau2 / (tau2 + v)
    return b * raw, b * v


def _center(u: FloatArray, loc: npt.NDArray[np.intp], sku: npt.NDArray[np.intp]) -> FloatArray:
    """Remove the location and SKU means (the GLM's main effects carry those)."""
    for g in (loc, sku, loc, sku):
        cnt = np.bincount(g)
        u = u - (np.bincount(g, u) / np.maximum(cnt, 1))[g]
    return u


def _pressure_jacobian(
    rows: pd.DataFrame,
    xk: FloatArray,
    names: list[str],
    design: Design,
    log_base: FloatArray,
    log_uplift: FloatArray,
    z: FloatArray,
) -> FloatArray:
    """``dz / d theta`` [n, p] of the cannibalisation pressure w.r.t. the GLM's coefficients.

    ``z`` depends on the estimated base levels and promotion multipliers; the GLM treats it as
    data, so its covariance misses that first-stage uncertainty. This derivative is what the
    sandwich covariance in :func:`_fit_category` propagates it with.
    """
    promo = rows["promo"].to_numpy() > 0
    promo_set = set(design.promo_columns())
    jb = [j for j, c in enumerate(names) if c.startswith(("sku[", "ecom["))]
    jp = [j for j, c in enumerate(names) if c in promo_set]
    out = np.zeros_like(xk)
    if not jb and not jp:
        return out
    keys = [rows["category"], rows["group"], rows["location"], rows["date"]]
    grp = pd.Series(np.zeros(len(rows))).groupby(keys, sort=False).ngroup().to_numpy()
    ng = int(grp.max()) + 1
    base = np.exp(log_base)
    up = np.exp(log_uplift)
    lifted = promo & (up > 1.0)
    o_sum = np.bincount(grp, np.where(promo, 0.0, base), ng)
    ok = (~promo) & (o_sum[grp] > 0)
    for cols, is_base in ((jb, True), (jp, False)):
        if not cols:
            continue
        xc = xk[:, cols]
        if is_base:
            de = np.where(lifted, base * (up - 1.0), 0.0)[:, None] * xc
            do = np.where(promo, 0.0, base)[:, None] * xc
        else:
            de = np.where(lifted, base * up, 0.0)[:, None] * xc
            do = np.zeros_like(xc)
        d_e = np.zeros((ng, len(cols)))
        d_o = np.zeros((ng, len(cols)))
        np.add.at(d_e, grp, de)
        np.add.at(d_o, grp, do)
        dz = (d_e[grp] - z[:, None] * d_o[grp]) / np.where(ok, o_sum[grp], 1.0)[:, None]
        out[:, cols] = np.where(ok[:, None], dz, 0.0)
    return out


def _fit_category(
    rows: pd.DataFrame, period: int, periods_after: int, seasonal: bool, opts: FitOptions
) -> CategoryFit:
    locations = sorted(rows["location"].unique())
    skus = sorted(rows["sku"].unique())
    design = Design(locations, skus, period == 1, seasonal, opts.sku_lifts, opts.cross_price)
    x0, cols0 = design.matrix(rows)
    ramp = post_promo_ramp(rows, period, periods_after)
    y = rows["units"].to_numpy(np.float64)
    has_cannib = bool(((rows["promo"] > 0).groupby(rows["location"]).nunique() > 1).any()) and (
        len(skus) > 1
    )
    s_codes = pd.factorize(series_key(rows))[0]
    loc_codes = pd.factorize(rows["group"] + "|" + rows["location"].astype(str))[0]
    sku_codes = pd.factorize(rows["group"] + "|" + rows["sku"].astype(str))[0]
    u = np.zeros(int(s_codes.max()) + 1)
    u_var = np.zeros_like(u)
    state = _State(coef={}, dip=0.0, cannib=0.0, alpha=0.0)
    start: FloatArray | None = None
    keep: npt.NDArray[np.bool_] | None = None
    result: Any = None
    converged = False
    refits = 0
    z = np.zeros(len(rows))
    offset = np.zeros(len(rows))
    xk = x0
    names: list[str] = []
    for refits in range(1, opts.max_refits + 1):
        off_d, w_d = _linearised(state.dip, ramp, 1e-3)
        extra_x = [w_d] if periods_after > 0 else []
        extra_cols = ["dip"] if periods_after > 0 else []
        offset = off_d + u[s_codes]
        if has_cannib and refits > 1:
            log_base, log_up = _row_terms(design, x0, cols0, state.coef)
            z = cannibalisation_pressure(rows, np.exp(log_base + u[s_codes]), np.exp(log_up))
            off_c, w_c = _linearised(state.cannib, z, CANNIBALISATION_FLOOR)
            offset = offset + off_c
            extra_x.append(w_c)
            extra_cols.append("cannibalisation")
        x = np.column_stack([x0, *extra_x]) if extra_x else x0
        cols = cols0 + extra_cols
        if keep is None or len(keep) != x.shape[1]:
            keep = _independent_columns(x)
            start = None
        xk = x[:, keep]
        names = [c for c, k in zip(cols, keep, strict=True) if k]
        family = (
            sm.families.Poisson()
            if state.alpha <= 0
            else sm.families.NegativeBinomial(alpha=state.alpha)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = sm.GLM(y, xk, family=family, offset=offset, hasconst=False).fit(
                start_params=start, maxiter=100, tol=1e-10
            )
        params = np.asarray(result.params, dtype=np.float64)
        mu = np.asarray(result.fittedvalues, dtype=np.float64)
        alpha = max(float(((y - mu) ** 2 - mu).sum() / (mu**2).sum()), 1e-4)
        coef = dict(zip(names, params.tolist(), strict=True))
        new_dip = min(max(coef.get("dip", 0.0), 0.0), THETA_MAX)
        new_c = min(max(coef.get("cannibalisation", 0.0), 0.0), THETA_MAX)
        moved_u = 0.0
        if opts.series_effects and refits < opts.max_refits:
            new_u, u_var = _series_effects(s_codes, y, mu, u, alpha)
            new_u = _center(new_u[s_codes], loc_codes, sku_codes)
            new_u = np.bincount(s_codes, new_u) / np.bincount(s_codes)
            moved_u = float(np.max(np.abs(new_u - u)))
            u = new_u
        moved = max(
            abs(new_dip - state.dip),
            abs(new_c - state.cannib),
            abs(alpha - state.alpha) / max(alpha, 1e-3),
            max((abs(v - state.coef.get(k, 0.0)) for k, v in coef.items()), default=0.0),
            moved_u,
        )
        state = _State(coef=coef, dip=new_dip, cannib=new_c, alpha=alpha)
        start = params
        if moved < opts.tol and refits > 2:
            converged = True
            break
    assert result is not None
    cov = np.asarray(result.cov_params(), dtype=np.float64)
    if "cannibalisation" in names and state.cannib > 0:
        cov = _sandwich_cov(rows, xk, names, design, x0, cols0, state, u[s_codes], z, result)
    keys = pd.Series(series_key(rows).to_numpy()).groupby(s_codes).first()
    effects = (
        {str(keys[i]): [float(u[i]), float(u_var[i])] for i in range(len(u))}
        if opts.series_effects
        else {}
    )
    return CategoryFit(
        category=str(rows["category"].iloc[0]),
        columns=list(state.coef),
        coef=list(state.coef.values()),
        cov=cov.tolist(),
        alpha=state.alpha,
        n_obs=len(rows),
        refits=refits,
        converged=converged,
        skus=skus,
        locations=locations,
        seasonal=seasonal,
        sku_lifts=opts.sku_lifts,
        cross_price=opts.cross_price,
        series_effect=effects,
    )


def _sandwich_cov(
    rows: pd.DataFrame,
    xk: FloatArray,
    names: list[str],
    design: Design,
    x0: FloatArray,
    cols0: list[str],
    state: _State,
    u_rows: FloatArray,
    z: FloatArray,
    result: Any,
) -> FloatArray:
    """Covariance of the refit fixed point with the pressure's own uncertainty propagated.

    At convergence the estimate solves ``X' D (y - mu) = 0`` with ``X`` the linearised design
    (``z`` plugged in), while the mean moves with ``theta`` through ``z`` too: ``J = X + dC/dz
    dz/dtheta``. M-estimation sandwich ``A^-1 B A^-T`` with ``A = X' W J``, ``B = X' W X``,
    ``W = mu / (1 + alpha mu)`` (the GLM's own covariance is ``B^-1``).
    """
    log_base, log_up = _row_terms(design, x0, cols0, state.coef)
    dz = _pressure_jacobian(rows, xk, names, design, log_base + u_rows, log_up, z)
    inner = 1.0 - state.cannib * z
    slope = np.where(inner > CANNIBALISATION_FLOOR, -state.cannib / np.maximum(inner, 1e-9), 0.0)
    jac = xk + slope[:, None] * dz
    mu = np.asarray(result.fittedvalues, dtype=np.float64)
    w = mu / (1.0 + state.alpha * mu)
    a = xk.T @ (w[:, None] * jac)
    b = xk.T @ (w[:, None] * xk)
    try:
        a_inv = np.linalg.inv(a)
    except np.linalg.LinAlgError:
        return np.asarray(result.cov_params(), dtype=np.float64)
    cov = a_inv @ b @ a_inv.T
    return np.asarray((cov + cov.T) / 2, dtype=np.float64)


def _pool(values: list[tuple[float, float]], level: float) -> Estimate:
    """Inverse-variance (fixed-effect) pooled estimate of independent estimates."""
    vals = [(v, s) for v, s in values if s > 0 and np.isfinite(s)]
    if not vals:
        return Estimate(float("nan"), float("nan"), float("nan"), float("nan"))
    w = np.array([1 / s**2 for _, s in vals])
    v = np.array([x for x, _ in vals])
    return Estimate.wald(float((w * v).sum() / w.sum()), float(1 / math.sqrt(w.sum())), level)


def shrink(
    raw: Mapping[str, tuple[float, float]], level: float
) -> tuple[dict[str, Estimate], dict[str, float]]:
    """Empirical-Bayes shrinkage of per-SKU estimates toward their precision-weighted mean.

    DerSimonian-Laird ``tau^2``; shrunk ``m + B (b - m)`` with ``B = tau^2 / (tau^2 + se^2)``,
    variance ``B se^2 + (1 - B)^2 var(m)``.
    """
    vals = {k: (b, s) for k, (b, s) in raw.items() if s > 0 and np.isfinite(s)}
    if not vals:
        return {}, {"mean": float("nan"), "se": float("nan"), "tau": float("nan")}
    b = np.array([v[0] for v in vals.values()])
    s2 = np.array([v[1] ** 2 for v in vals.values()])
    w = 1 / s2
    m_fe = (w * b).sum() / w.sum()
    q = (w * (b - m_fe) ** 2).sum()
    denom = w.sum() - (w**2).sum() / w.sum()
    tau2 = max(0.0, (q - (len(b) - 1)) / denom) if len(b) > 1 and denom > 0 else 0.0
    wr = 1 / (s2 + tau2)
    m = float((wr * b).sum() / wr.sum())
    var_m = float(1 / wr.sum())
    out = {}
    for k, (bk, sk) in vals.items():
        shrink_b = tau2 / (tau2 + sk**2)
        value = m + shrink_b * (bk - m)
        var = shrink_b * sk**2 + (1 - shrink_b) ** 2 * var_m
        out[k] = Estimate.wald(value, math.sqrt(var), level)
    return out, {"mean": m, "se": math.sqrt(var_m), "tau": math.sqrt(tau2)}


def fit_history(
    history: pd.DataFrame,
    categories: Mapping[str, str] | None = None,
    options: FitOptions | None = None,
    source: str = "history",
) -> FittedModel:
    """Validate ``history`` and fit the promotion demand model (see the module docstring)."""
    opts = options or FitOptions()
    clean = validate_history(history, source=source)
    rows, pickup_share, period = prepare(clean, categories, opts.fill_zeros)
    after = opts.post_promo_periods
    if after is None:
        after = 7 if period == 1 else 1
    span = (rows["date"].max() - rows["date"].min()).days
    seasonal = opts.seasonality if opts.seasonality is not None else span >= MIN_SEASON_SPAN_DAYS
    if not (rows["promo"] > 0).any():
        raise HistoryError(
            f"{source}: no promoted rows (depth, display, feature or promo): the history "
            "cannot tell what a promotion does; include periods with promotions"
        )
    fits: dict[str, CategoryFit] = {}
    with single_thread_blas():
        for cat, part in rows.groupby("category", sort=True):
            part = part.reset_index(drop=True)
            fits[str(cat)] = _fit_category(part, period, after, seasonal, opts)
    return _assemble(fits, rows, pickup_share, period, after, opts, source)


def _assemble(
    fits: dict[str, CategoryFit],
    rows: pd.DataFrame,
    pickup_share: dict[str, float],
    period: int,
    after: int,
    opts: FitOptions,
    source: str,
) -> FittedModel:
    level = opts.ci_level
    elasticity: dict[str, Estimate] = {}
    raw_all: dict[str, Estimate] = {}
    cat_e: dict[str, dict[str, float]] = {}
    sku_category: dict[str, str] = {}
    for cat, cf in fits.items():
        raw: dict[str, tuple[float, float]] = {}
        for s in cf.skus:
            sku_category[s] = cat
            p = cf.param(f"elasticity[{s}]")
            if p is not None:
                raw[s] = p
                raw_all[s] = Estimate.wald(p[0], p[1], level)
        shrunk, prior = shrink(raw, level)
        cat_e[cat] = prior
        for s in cf.skus:
            if s in shrunk:
                elasticity[s] = shrunk[s]
            elif np.isfinite(prior["mean"]):  # never promoted: the category's distribution
                sd = math.sqrt(prior["se"] ** 2 + prior["tau"] ** 2)
                elasticity[s] = Estimate.wald(prior["mean"], sd, level)

    def pooled(name: str) -> Estimate:
        return _pool([p for cf in fits.values() if (p := cf.param(name)) is not None], level)

    sku_lift: dict[str, Estimate] = {}
    lift_by_cat: dict[str, list[tuple[float, float]]] = {"display": [], "feature": []}
    for cf in fits.values():
        for mech, per_cat in lift_by_cat.items():
            if not cf.sku_lifts:
                if (p := cf.param(mech)) is not None:
                    per_cat.append(p)
                continue
            raw_l = {s: p for s in cf.skus if (p := cf.param(f"{mech}[{s}]")) is not None}
            shrunk_l, prior_l = shrink(raw_l, level)
            if not np.isfinite(prior_l["mean"]):
                continue
            per_cat.append((prior_l["mean"], prior_l["se"]))
            spread = math.sqrt(prior_l["se"] ** 2 + prior_l["tau"] ** 2)
            for s in cf.skus:  # SKUs without the mechanic in the history: the category's spread
                sku_lift[f"{mech}[{s}]"] = shrunk_l.get(
                    s, Estimate.wald(prior_l["mean"], spread, level)
                )

    def lift(mech: str) -> Estimate:
        return _pool(lift_by_cat[mech], level).map(math.exp).map(lambda v: v - 1.0)

    display = lift("display")
    feature = lift("feature")
    weekday = [1.0] * 7
    if period == 1:
        logs = [
            [0.0] + [(cf.param(f"weekday[{d}]") or (0.0, 0.0))[0] for d in range(1, 7)]
            for cf in fits.values()
        ]
        weights = [cf.n_obs for cf in fits.values()]
        mean_log = np.average(np.array(logs), axis=0, weights=weights)
        factors = np.exp(mean_log)
        weekday = (factors / factors.mean()).tolist()
    n = np.array([cf.n_obs for cf in fits.values()], dtype=np.float64)
    alphas = np.array([cf.alpha for cf in fits.values()])
    last = rows[rows["promo"] > 0].groupby(["location", "sku"])["date"].max()
    notes = [
        "halo on complement categories is not estimated (the twin keeps the scenario's halo)",
        "ecommerce campaign waves are not in the history format; they average into ecommerce",
    ]
    notes += [
        f"category {c}: refits did not converge" for c, cf in fits.items() if not cf.converged
    ]
    return FittedModel(
        period_days=period,
        post_promo_periods=after,
        ci_level=level,
        history_start=str(rows["date"].min().date()),
        history_end=str(rows["date"].max().date()),
        categories=fits,
        sku_category=sku_category,
        elasticity=elasticity,
        elasticity_raw=raw_all,
        category_elasticity=cat_e,
        display_lift=display,
        feature_lift=feature,
        cannibalisation=pooled("cannibalisation"),
        post_promo_dip=pooled("dip"),
        dispersion=float(1.0 / np.average(alphas, weights=n)),
        weekday=[float(v) for v in weekday],
        pickup_share=pickup_share,
        last_promo={
            f"{key[0]}|{key[1]}": str(pd.Timestamp(d).date())  # type: ignore[index]
            for key, d in last.items()
        },
        series=[
            (str(a), str(b), str(c))
            for a, b, c in rows[["location", "sku", "group"]]
            .drop_duplicates()
            .itertuples(index=False)
        ],
        sku_lift=sku_lift,
        source=source,
        notes=notes,
    )


# -- driving the twin -------------------------------------------------------------------------


def _clip01(v: float, default: float) -> float:
    return default if not np.isfinite(v) else float(min(max(v, 0.0), 1.0))


def calibrate_scenario(scenario: Scenario, model: FittedModel) -> Scenario:
    """The scenario with its demand parameters replaced by the fitted ones ("calibrate the twin").

    Per SKU: elasticity (pooled estimate) and baseline (daily units at an average store, no
    promotion, from the location x SKU effects and the scenario's store sizes); ecommerce share
    where the history had ecommerce at the scenario's DCs. Globally: display/feature lift,
    cannibalisation, post-promotion dip and its length, dispersion, weekday factors (daily data)
    and each category's seasonality (from the first annual harmonic). SKUs and stores the
    history does not cover keep their scenario values; halo is kept.
    """
    stores = {s.id: s for s in scenario.stores}
    dc_serves = {d.id: d.serves for d in scenario.dcs}
    new_skus = []
    for sku in scenario.skus:
        cat = model.sku_category.get(sku.id)
        update: dict[str, Any] = {}
        if sku.id in model.elasticity:
            update["elasticity"] = min(model.elasticity[sku.id].value, 0.0)
        if cat is not None:
            cf = model.categories[cat]
            coef = dict(zip(cf.columns, cf.coef, strict=True))
            sku_eff = coef.get(f"sku[{sku.id}]", 0.0)
            wd = _weekday_mean(cf)
            level = [
                (math.exp(coef[f"loc[{loc}]"] + sku_eff) * wd, stores[loc].size)
                for loc in cf.locations
                if loc in stores and f"loc[{loc}]" in coef
            ]
            if level:
                per_period = sum(v for v, _ in level) / sum(sz for _, sz in level)
                update["baseline"] = per_period / model.period_days
                ecom = coef.get(f"ecom[{sku.id}]")
                dcs = [d for d in cf.locations if d in dc_serves and f"loc[{d}]" in coef]
                if ecom is not None and dcs:
                    served = sum(stores[s].size for d in dcs for s in dc_serves[d] if s in stores)
                    ecom_units = sum(math.exp(coef[f"loc[{d}]"] + sku_eff + ecom) * wd for d in dcs)
                    if served > 0 and per_period > 0:
                        share = ecom_units / (served * per_period)
                        update["ecommerce_share"] = _clip01(share, sku.ecommerce_share)
        new_skus.append(sku.model_copy(update=update) if update else sku)
    p = scenario.demand
    seasonality = dict(p.seasonality)
    for cat, cf in model.categories.items():
        if cf.seasonal:
            a = (cf.param("season_cos1") or (0.0, 0.0))[0]
            b = (cf.param("season_sin1") or (0.0, 0.0))[0]
            amp = _clip01(math.hypot(a, b), 0.0)
            peak = int(round((math.degrees(math.atan2(b, a)) % 360) / 360 * 365.25)) % 366
            seasonality[cat] = Seasonality(amplitude=amp, peak_day=max(peak, 1))
    pooled_e = [v["mean"] for v in model.category_elasticity.values() if np.isfinite(v["mean"])]
    demand = p.model_copy(
        update={
            "elasticity": min(float(np.mean(pooled_e)), 0.0) if pooled_e else p.elasticity,
            "display_lift": max(model.display_lift.value, 0.0)
            if np.isfinite(model.display_lift.value)
            else p.display_lift,
            "feature_lift": max(model.feature_lift.value, 0.0)
            if np.isfinite(model.feature_lift.value)
            else p.feature_lift,
            "cannibalisation": _clip01(model.cannibalisation.value, p.cannibalisation),
            "post_promo_dip": _clip01(model.post_promo_dip.value, p.post_promo_dip),
            "post_promo_days": model.post_promo_periods * model.period_days,
            "dispersion": model.dispersion,
            "weekday": tuple(model.weekday) if model.period_days == 1 else p.weekday,
            "seasonality": seasonality,
            "history": None,
        }
    )
    return scenario.model_copy(update={"skus": tuple(new_skus), "demand": demand})


def _weekday_mean(cf: CategoryFit) -> float:
    """Mean weekday multiplier relative to the reference weekday (1 for weekly data)."""
    vals = [1.0] + [math.exp(p[0]) for d in range(1, 7) if (p := cf.param(f"weekday[{d}]"))]
    return float(np.mean(vals)) if len(vals) == 7 else 1.0
