"""Fit the promotion demand model to a sales history: negative-binomial GLMs with a log link.

One penalised negative-binomial GLM per category (``demand/glm_irls.py``: a weak normal prior
per coefficient, so an unidentified effect shrinks instead of exploding), on store demand
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

Censored sales (a ``stockout`` column: on-hand zero at day end) are lower bounds of demand: the
refits are also EM steps, each stocked-out row's units replaced by ``E[Y | Y >= sales]`` under
the current fit, its information in the covariance reduced to what the censored value carries.

Modules: ``glm_result`` (types, the JSON file), ``glm_design`` (rows, design matrix),
``glm_estimation`` (one category's refits), ``pooling``, ``calibration`` (the twin),
``glm_predict`` (forecasts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from promotwin.demand._blas import single_thread_blas
from promotwin.demand.calibration import calibrate_scenario
from promotwin.demand.glm_design import (
    CANNIBALISATION_FLOOR,
    ECOM,
    STORE,
    cannibalisation_pressure,
    post_promo_ramp,
    prepare,
)
from promotwin.demand.glm_estimation import _fit_category
from promotwin.demand.glm_result import CategoryFit, Estimate, FitOptions, FittedModel
from promotwin.demand.history import validate_history
from promotwin.demand.pooling import _pool, shrink
from promotwin.demand.replay import HistoryError

# the public names of the GLM, importable from here as before the split
__all__ = [
    "CANNIBALISATION_FLOOR",
    "ECOM",
    "STORE",
    "CategoryFit",
    "Estimate",
    "FitOptions",
    "FittedModel",
    "calibrate_scenario",
    "cannibalisation_pressure",
    "fit_history",
    "post_promo_ramp",
    "prepare",
]

MIN_SEASON_SPAN_DAYS = 300


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
            _check_finite(fits[str(cat)], source)
    return _assemble(fits, rows, pickup_share, period, after, opts, source)


def _check_finite(cf: CategoryFit, source: str) -> None:
    """A non-finite estimate is an error naming its parameters (and so their SKUs), never a
    model file that forecasts ``inf``."""
    cov = np.asarray(cf.cov, dtype=np.float64)
    bad = [
        name
        for i, name in enumerate(cf.columns)
        if not (math.isfinite(cf.coef[i]) and np.isfinite(cov[i]).all())
    ]
    if bad or not math.isfinite(cf.alpha):
        raise HistoryError(
            f"{source}: category {cf.category}: the fit is not finite for {bad[:10] or ['alpha']}; "
            "drop those SKUs or give a history where they sell and their price varies"
        )


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
