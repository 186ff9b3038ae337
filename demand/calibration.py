"""Calibrating the twin: a scenario's demand parameters replaced by a fitted model's."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from promotwin.demand.glm_result import CategoryFit, FittedModel
from promotwin.scenarios.schema import Scenario, Seasonality


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
