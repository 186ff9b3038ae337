"""Who replenishes each store, from a snapshot: its DC, suppliers directly (direct-store
delivery), or both. A snapshot without the flags (``direct`` None) has every store replenished
by its DC, and these functions then give exactly the DC-only network.
"""

from __future__ import annotations

import numpy as np

from promotwin.policies.contract import BoolArray, FloatArray, IntArray, PlanningSnapshot
from promotwin.policies.forecast_terms import serving_matrix


def direct(s: PlanningSnapshot) -> BoolArray:
    """``[L]`` stores a supplier delivers to directly (False for DCs)."""
    if s.direct is None:
        return np.zeros(s.n_locations, bool)
    return np.asarray(s.direct, bool)


def dc_replenished(s: PlanningSnapshot) -> BoolArray:
    """``[L]`` stores their DC replenishes (False for DCs)."""
    if s.dc_replenished is None:
        out = np.ones(s.n_locations, bool)
        out[: s.n_dcs] = False
        return out
    return np.asarray(s.dc_replenished, bool)


def supplier_only(s: PlanningSnapshot) -> BoolArray:
    """``[L]`` stores only suppliers replenish (no DC ships to them)."""
    return direct(s) & ~dc_replenished(s)


def replenishing_matrix(s: PlanningSnapshot) -> FloatArray:
    """``[D, stores]`` 0/1: which DC replenishes each store (a supplier-only store: none)."""
    assign = serving_matrix(s.serving_dc[s.n_dcs :], s.n_dcs)
    if s.direct is not None:
        assign[:, supplier_only(s)[s.n_dcs :]] = 0.0
    return assign


def direct_lead_days(s: PlanningSnapshot) -> IntArray:
    """``[S]`` days a direct delivery of each SKU takes: its supplier's mean lead time, rounded
    (a supplier delivers to a store in the lead time it delivers to a DC)."""
    lead = np.rint(np.asarray(s.lead_time_mean, np.float64)[s.sku_supplier])
    return np.maximum(lead, 1).astype(np.int64)
