"""Estimating one category's GLM: refits of a negative-binomial GLM around the linearised dip
and cannibalisation terms, shrunk series effects, and the sandwich covariance."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from promotwin.demand.glm_design import (
    CANNIBALISATION_FLOOR,
    Design,
    FloatArray,
    _independent_columns,
    _linearised,
    cannibalisation_pressure,
    post_promo_ramp,
    series_key,
)
from promotwin.demand.glm_irls import GlmResult, penalised_nb_glm
from promotwin.demand.glm_result import CategoryFit, FitOptions

THETA_MAX = 0.95
# Prior standard deviations (log scale) of the penalised GLM: wide enough that any identified
# effect is the data's (an elasticity of -4, a lift of +150% are well inside one sd), narrow
# enough that an unidentified one stays finite and its interval honest.
PROMO_PRIOR_SD = 5.0
BASE_PRIOR_SD = 10.0  # location / SKU levels, weekday, season: log units, weakly held
BASE_PREFIXES = ("loc[", "sku[", "ecom[", "weekday[", "season_")


def prior_sd(names: list[str]) -> FloatArray:
    """Each coefficient's prior sd: weak on levels, wider than any real promotion effect."""
    return np.array(
        [BASE_PRIOR_SD if n.startswith(BASE_PREFIXES) else PROMO_PRIOR_SD for n in names]
    )


def censored_rows(rows: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Rows whose sales were capped by a stock-out (their demand was at least the sales)."""
    if "stockout" not in rows.columns:
        return np.zeros(len(rows), dtype=bool)
    return rows["stockout"].to_numpy().astype(bool)


def censored_mean(sales: FloatArray, mu: FloatArray, alpha: float | FloatArray) -> FloatArray:
    """``E[Y | Y >= sales]`` for ``Y ~ NB(mean mu, alpha)``: the expected demand of a stocked-out
    cell-day (the EM step of the censored likelihood).

    With ``r = 1 / alpha`` and ``p = r / (r + mu)``: ``E[Y 1{Y >= c}] = mu P(Y' >= c - 1)`` for
    ``Y' ~ NB(r + 1, p)`` (the size-biased NB), so the ratio of two survival functions.
    """
    r = 1.0 / np.maximum(alpha, 1e-8)
    p = r / (r + mu)
    num = stats.nbinom.sf(sales - 2, r + 1, p)
    den = stats.nbinom.sf(sales - 1, r, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = mu * num / den
    # far in the tail both vanish: demand is then about the sales themselves
    return np.where(np.isfinite(cond) & (den > 1e-300), np.maximum(cond, sales), sales)


def censored_information(sales: FloatArray, mu: FloatArray, alpha: float) -> FloatArray:
    """Share of a row's information a censored observation keeps: ``1 - Var(Y | Y >= sales) /
    Var(Y)`` (Louis' missing information for the log-link NB score ``(y - mu) / (1 + alpha mu)``).

    ``E[Y (Y - 1) 1{Y >= c}] = mu^2 (r + 1) / r P(Y'' >= c - 2)``, ``Y'' ~ NB(r + 2, p)``.
    """
    r = 1.0 / max(alpha, 1e-8)
    p = r / (r + mu)
    den = stats.nbinom.sf(sales - 1, r, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        m1 = mu * stats.nbinom.sf(sales - 2, r + 1, p) / den
        fact2 = mu**2 * (r + 1) / r * stats.nbinom.sf(sales - 3, r + 2, p) / den
        cond_var = fact2 + m1 - m1**2
        share = 1.0 - cond_var / (mu * (1.0 + alpha * mu))
    return np.where(np.isfinite(share), np.clip(share, 0.02, 1.0), 0.02)


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
    censored = censored_rows(rows)
    y_fit = y  # censored rows: their expected demand given the sales, after the first refit
    mu_prev = np.maximum(y, 0.5)
    info = np.ones(len(rows))
    max_refits = opts.max_refits * (3 if censored.any() else 1)  # EM converges slowly
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
    result: GlmResult | None = None
    converged = False
    refits = 0
    z = np.zeros(len(rows))
    offset = np.zeros(len(rows))
    xk = x0
    names: list[str] = []
    for refits in range(1, max_refits + 1):
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
        info = np.where(censored, censored_information(y, mu_prev, state.alpha), 1.0)
        result = penalised_nb_glm(
            y_fit, xk, offset, state.alpha, prior_sd(names), start, 100, info_share=info
        )
        params = np.asarray(result.params, dtype=np.float64)
        mu = result.fittedvalues
        # dispersion from the uncensored rows: an imputed value has no noise of its own
        yo, mo = y[~censored], mu[~censored]
        alpha = max(float(((yo - mo) ** 2 - mo).sum() / max(float((mo**2).sum()), 1e-12)), 1e-4)
        y_fit = np.where(censored, censored_mean(y, mu, alpha), y)
        mu_prev = mu
        coef = dict(zip(names, params.tolist(), strict=True))
        new_dip = min(max(coef.get("dip", 0.0), 0.0), THETA_MAX)
        new_c = min(max(coef.get("cannibalisation", 0.0), 0.0), THETA_MAX)
        moved_u = 0.0
        if opts.series_effects and refits < max_refits:
            new_u, u_var = _series_effects(s_codes, y_fit, mu, u, alpha)
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
    cov = result.cov
    if "cannibalisation" in names and state.cannib > 0:
        cov = _sandwich_cov(rows, xk, names, design, x0, cols0, state, u[s_codes], z, result, info)
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
    result: GlmResult,
    info: FloatArray,
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
    mu = result.fittedvalues
    w = mu / (1.0 + state.alpha * mu) * info  # censored rows: the information they keep
    a = xk.T @ (w[:, None] * jac)
    b = xk.T @ (w[:, None] * xk)
    try:
        a_inv = np.linalg.inv(a)
    except np.linalg.LinAlgError:
        return result.cov
    cov = a_inv @ b @ a_inv.T
    return np.asarray((cov + cov.T) / 2, dtype=np.float64)
