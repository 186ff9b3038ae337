"""Margin risk of a promotion's discount depth: expected margin and its interval.

Promotion margin over the promoted rows = units x (price x (1 - depth) - unit cost + vendor
funding), plus the margin of the category's other SKUs, minus the same calendar without the
promotion; so the lost (cannibalised) margin of same-category SKUs is included. The interval
is over the fitted parameters' sampling distribution (expected margin; sales noise around it
is not included), with common draws for both calendars.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from promotwin.demand.fit import FittedModel
from promotwin.demand.glm_predict import parameter_draws


@dataclass(frozen=True)
class MarginRisk:
    expected: float  # incremental margin of running the promotion, currency
    low: float
    high: float
    promoted_units: float  # expected units of the promoted rows with the promotion
    cannibalised_units: float  # expected units the other rows lose
    level: float


def promotion_margin(
    model: FittedModel,
    with_promo: pd.DataFrame,
    without: pd.DataFrame,
    price: Mapping[str, float],
    unit_cost: Mapping[str, float],
    vendor_funding: float = 0.0,
    n_draws: int = 400,
    seed: int = 0,
    level: float = 0.9,
) -> MarginRisk:
    """Incremental margin of ``with_promo`` over ``without`` (two calendars, same rows)."""
    if len(with_promo) != len(without):
        raise ValueError("the two calendars must have the same rows (same series and dates)")
    a = parameter_draws(
        model, with_promo.reset_index(drop=True), n_draws, np.random.default_rng(seed)
    )
    b = parameter_draws(model, without.reset_index(drop=True), n_draws, np.random.default_rng(seed))
    p = with_promo["sku"].map(price).to_numpy(np.float64)
    c = with_promo["sku"].map(unit_cost).to_numpy(np.float64)
    depth = with_promo["depth"].to_numpy(np.float64)
    promo = with_promo["promo"].to_numpy() > 0
    unit_promo = p * (1 - depth) - c + np.where(promo, vendor_funding, 0.0)
    unit_base = p - (without["sku"].map(unit_cost).to_numpy(np.float64))
    incr = a @ unit_promo - b @ unit_base
    tail = (1 - level) / 2
    return MarginRisk(
        expected=float(incr.mean()),
        low=float(np.quantile(incr, tail)),
        high=float(np.quantile(incr, 1 - tail)),
        promoted_units=float(a[:, promo].sum(axis=1).mean()),
        cannibalised_units=float((b[:, ~promo] - a[:, ~promo]).sum(axis=1).mean()),
        level=level,
    )
