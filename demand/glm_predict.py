"""GLM forecasts for calendar rows: the linear predictor and its variance from parameter
uncertainty (``g' C g``, ``g`` the gradient of ``eta``, ``C`` the GLM covariance with the pooled
elasticity variances in place of the raw ones). The predictive distribution is a negative
binomial mixed over a log-normal mean, summarised as a negative binomial with the same mean and
variance: mean ``m = exp(eta + s^2/2)``, ``k' = 1 / (exp(s^2) (1 + 1/k) - 1)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from promotwin.demand.glm_design import (
    CANNIBALISATION_FLOOR,
    FloatArray,
    cannibalisation_pressure,
    post_promo_ramp,
)
from promotwin.demand.glm_result import CategoryFit, FittedModel


def _category_terms(
    model: FittedModel, cf: CategoryFit, rows: pd.DataFrame
) -> tuple[FloatArray, FloatArray, FloatArray, list[str]]:
    """``eta``, the gradient ``G`` [n, p] over the category's parameters, and extra variance."""
    design = cf.design(weekday=model.period_days == 1)
    unknown = sorted(set(rows["location"]) - set(cf.locations))
    if unknown:
        raise ValueError(
            f"location(s) {unknown[:5]} have no history for category {cf.category}: "
            "they cannot be forecast from this model"
        )
    x, cols = design.matrix(rows)
    coef = dict(zip(cf.columns, cf.coef, strict=True))
    idx = {c: i for i, c in enumerate(cf.columns)}
    promo_cols = set(design.promo_columns())
    n = len(rows)
    g = np.zeros((n, len(cf.columns)))
    u, u_var = cf.series_terms(rows)
    eta, extra_var = u.copy(), u_var.copy()
    log_base = u.copy()
    log_uplift = np.zeros(n)
    logp = np.log1p(-rows["depth"].to_numpy(np.float64))
    sku = rows["sku"].to_numpy()
    for j, c in enumerate(cols):
        shrunk = None
        if c.startswith("elasticity["):
            shrunk = model.elasticity.get(c[len("elasticity[") : -1])
            if shrunk is None:
                continue
            on = sku == c[len("elasticity[") : -1]
            term = np.where(on, logp * shrunk.value, 0.0)
            eta += term
            log_uplift += term
            extra_var += np.where(on, logp**2 * shrunk.se**2, 0.0)
            continue
        if c in model.sku_lift:  # per-SKU display / feature lift, shrunk
            est = model.sku_lift[c]
            eta += x[:, j] * est.value
            log_uplift += x[:, j] * est.value
            extra_var += x[:, j] ** 2 * est.se**2
            continue
        if c in idx:
            eta += x[:, j] * coef[c]
            g[:, idx[c]] = x[:, j]
            if c.startswith(("loc[", "sku[", "ecom[")):
                log_base += x[:, j] * coef[c]
            elif c in promo_cols:
                log_uplift += x[:, j] * coef[c]
    base = np.exp(log_base)
    uplift = np.exp(log_uplift)
    if "dip" in coef:
        ramp = post_promo_ramp(rows, model.period_days, model.post_promo_periods, model.last_promo)
        dip = float(np.clip(coef["dip"], 0.0, 0.95))
        eta += np.log1p(-dip * ramp)
        g[:, idx["dip"]] = -ramp / (1 - dip * ramp)
    if "cannibalisation" in coef:
        z = cannibalisation_pressure(rows, base, uplift)
        c_val = float(np.clip(coef["cannibalisation"], 0.0, 0.95))
        inner = 1 - c_val * z
        eta += np.log(np.maximum(inner, CANNIBALISATION_FLOOR))
        g[:, idx["cannibalisation"]] = np.where(
            inner > CANNIBALISATION_FLOOR, -z / np.maximum(inner, 1e-9), 0.0
        )
    return eta, g, extra_var, cf.columns


def predict_glm(model: FittedModel, rows: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
    """Predictive mean and NB ``k'`` of each calendar row (channel groups, not split)."""
    mean = np.zeros(len(rows))
    k_eff = np.zeros(len(rows))
    pos = np.arange(len(rows))
    for cat, idx in rows.groupby("category", sort=False).indices.items():
        cf = model.categories.get(str(cat))
        if cf is None:
            raise ValueError(f"category {cat!r} is not in the fitted model")
        part = rows.iloc[idx].reset_index(drop=True)
        eta, g, extra_var, _ = _category_terms(model, cf, part)
        cov = np.asarray(cf.cov)
        var = np.maximum(np.einsum("ij,jk,ik->i", g, cov, g) + extra_var, 0.0)
        k = 1.0 / cf.alpha
        mean[pos[idx]] = np.exp(eta + var / 2)
        k_eff[pos[idx]] = 1.0 / (np.exp(var) * (1 + 1 / k) - 1)
    return mean, k_eff


def parameter_draws(
    model: FittedModel, rows: pd.DataFrame, n_draws: int, rng: np.random.Generator
) -> FloatArray:
    """Expected units ``[n_draws, len(rows)]`` (store group; channels not split) under draws of
    the parameters from their sampling distribution (normal approximation on ``eta``'s terms).
    """
    out = np.zeros((n_draws, len(rows)))
    for cat, part in rows.groupby("category", sort=False):
        cf = model.categories[str(cat)]
        pos = part.index.to_numpy()
        eta, g, extra_var, _ = _category_terms(model, cf, part.reset_index(drop=True))
        cov = np.asarray(cf.cov)
        chol = np.linalg.cholesky(cov + 1e-12 * np.eye(len(cov)))
        delta = rng.standard_normal((n_draws, len(cov))) @ chol.T
        eta_d = eta[None, :] + delta @ g.T
        sku_codes = pd.factorize(part["sku"])[0]
        z = rng.standard_normal((n_draws, int(sku_codes.max()) + 1))[:, sku_codes]
        eta_d += z * np.sqrt(extra_var)[None, :]
        out[:, pos] = np.exp(eta_d)
    return out
