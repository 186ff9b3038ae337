"""A day's records besides the ledger: the per-location daily record and the decision lines.
Plain dicts of arrays appended during the run; ``twin.run`` makes one frame of each at the end.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from promotwin.arrays import BoolArray, FloatArray, IntArray, WorkBuffers
from promotwin.policies.contract import Plan
from promotwin.scenarios.network import Network
from promotwin.twin.execution import Stock, group_lines
from promotwin.twin.fulfilment import DaySales
from promotwin.twin.ledger import Detail

DecisionLines = dict[str, npt.NDArray[Any]]


def day_record(
    day: int,
    net: Network,
    stock: Stock,
    promo_skus: BoolArray,
    served: IntArray,
    sales: DaySales,
    forecast: FloatArray,
    work: WorkBuffers,
) -> dict[str, Any]:
    """Per location: end-of-day stock and its value (holding cost is charged on it), pipelines,
    demand, sales, lost sales and the error of the forecast made for the day (``forecast``
    ``[L, S]``; ``served`` the demand by location), also over the promoted SKUs alone (the
    post-event report's forecast error by day of promotion)."""
    error = np.subtract(forecast, served, out=work.get("forecast error", served.shape))
    on_hand = stock.on_hand
    promo_error = error[:, promo_skus]  # a copy: the whole array's error is made absolute below
    return {
        "day": day,
        "on_hand": on_hand.sum(axis=1),
        "on_hand_value": on_hand @ net.unit_cost,
        "holding_cost": on_hand @ net.holding_cost_per_day,
        "in_transit": stock.in_transit.sum(axis=1),
        "on_order": stock.on_order.sum(axis=1),
        "promo_on_hand": on_hand[:, promo_skus].sum(axis=1),
        "demand": served.sum(axis=1),
        "sold": sales.sold,
        "lost": sales.lost,
        "stockout_cells": sales.stockout_cells,
        "forecast": forecast.sum(axis=1),
        "abs_error": np.abs(error, out=error).sum(axis=1),
        "promo_demand": served[:, promo_skus].sum(axis=1),
        "promo_forecast": forecast[:, promo_skus].sum(axis=1),
        "promo_abs_error": np.abs(promo_error, out=promo_error).sum(axis=1),
    }


def decision_lines(
    day: int, approved: Plan, executed: IntArray, routed: Plan, detail: Detail, n_locations: int
) -> list[DecisionLines]:
    """The day's decision lines: approved (with the units executed) and routed to a planner;
    per-route sums when the ledger is in summary detail."""
    out = []
    for plan, status, done in ((approved, "approved", executed), (routed, "routed", None)):
        if not len(plan):
            continue
        cols: DecisionLines = {
            "kind": plan.kind,
            "origin": plan.origin,
            "destination": plan.destination,
            "sku": plan.sku,
            "proposed": plan.qty,
            "executed": np.zeros(len(plan), np.int64) if done is None else done,
            "value": plan.qty * plan.unit_cost,
            "confidence": plan.confidence,
            "reason": plan.reason,
            "lines": np.ones(len(plan), np.int64),
        }
        if detail == "summary":
            cols = _route_sums(cols, plan, n_locations)
        reasons = np.asarray(plan.reasons, dtype=object)[cols.pop("reason")]
        out.append(
            {
                **cols,
                "day": np.full(len(reasons), day),
                "reason": reasons,
                "status": np.full(len(reasons), status),
            }
        )
    return out


def _route_sums(cols: DecisionLines, plan: Plan, n_loc: int) -> DecisionLines:
    """Decision lines summed per kind x origin x destination (confidence averaged)."""
    groups = group_lines((plan.kind * n_loc + plan.origin) * n_loc + plan.destination)
    head = groups.starts[:-1]
    sums = {
        c: np.add.reduceat(groups.lines(cols[c]), head)
        for c in ("proposed", "executed", "value", "confidence")
    }
    n_lines = np.diff(groups.starts)
    first = groups.first_lines()
    summed = {c: cols[c][first] for c in ("kind", "origin", "destination", "reason")}
    summed.update(
        proposed=sums["proposed"],
        executed=sums["executed"],
        value=sums["value"],
        confidence=sums["confidence"] / n_lines,
        lines=n_lines,
        sku=np.full(len(first), -1),
    )
    return summed
