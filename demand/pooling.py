"""Pooling estimates: inverse-variance pooling across categories and empirical-Bayes shrinkage
of per-SKU estimates toward their category mean."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from promotwin.demand.glm_result import Estimate


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
