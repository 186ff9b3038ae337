"""The forecaster's reason on plan lines: when sensing moved the forecast a line was planned on,
the line's reason says so ("...; sensed uplift +38% in urban cluster, North since launch").

A line's cell is its destination x SKU. A store's shipment or transfer takes its own cell's
note; a DC's line (a purchase, an expedite, a transfer between DCs) plans for the DC's whole
echelon, so it takes the largest change among the DC's own row and the stores it serves (the
snapshot's notes come largest change first: the smallest index wins).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from promotwin.policies.contract import IntArray, Plan, PlanningSnapshot


def echelon_notes(s: PlanningSnapshot, note: IntArray) -> IntArray:
    """Each DC x SKU's note ``[D, S]``: the smallest index of its own and its stores' cells."""
    none = len(s.forecast_notes)
    ranked = np.where(note >= 0, note, none)
    out = ranked[: s.n_dcs].copy()
    stores = np.arange(s.n_dcs, s.n_locations)
    np.minimum.at(out, s.serving_dc[stores], ranked[stores])
    return np.where(out < none, out, -1)


def with_forecast_notes(plan: Plan, s: PlanningSnapshot) -> Plan:
    """``plan`` with each line's reason followed by the snapshot's note for its cell, if any."""
    note = s.forecast_note
    if note is None or not s.forecast_notes or not len(plan):
        return plan
    by_dc = echelon_notes(s, note)
    at_dc = plan.destination < s.n_dcs
    line_note = np.where(
        at_dc,
        by_dc[np.minimum(plan.destination, s.n_dcs - 1), plan.sku],
        note[plan.destination, plan.sku],
    )
    if (line_note < 0).all():
        return plan
    pairs, code = np.unique(np.stack([plan.reason, line_note]), axis=1, return_inverse=True)
    reasons = tuple(
        plan.reasons[r] if n < 0 else f"{plan.reasons[r]}; {s.forecast_notes[n]}"
        for r, n in pairs.T.tolist()
    )
    return dataclasses.replace(plan, reason=code.ravel().astype(np.int64), reasons=reasons)
