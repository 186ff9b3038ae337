"""Supplier reliability from the history of purchase orders and receipts, by promotion window.

Input: one row per order line with ``supplier, order_date, due_date, receipt_date, ordered,
received``. Per supplier (and inside / outside the given promotion windows): on-time rate with a
Jeffreys interval, fill rate (received / ordered) with a ratio-estimator interval clustered by
order line, and the lead-time distribution (mean, sd, 90th percentile, days) that
:func:`calibrate_suppliers` writes into a scenario's ``LeadTime`` and ``fill_rate``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from promotwin.scenarios.schema import LeadTime, Scenario

COLUMNS = ("supplier", "order_date", "due_date", "receipt_date", "ordered", "received")


def supplier_reliability(
    orders: pd.DataFrame,
    windows: Sequence[tuple[dt.date, dt.date]] = (),
    level: float = 0.9,
) -> pd.DataFrame:
    """One row per supplier x window (``promotion`` / ``regular``) with rates and intervals."""
    missing = [c for c in COLUMNS if c not in orders.columns]
    if missing:
        raise ValueError(f"orders table is missing column(s) {missing}; need {list(COLUMNS)}")
    f = orders.copy()
    for c in ("order_date", "due_date", "receipt_date"):
        f[c] = pd.to_datetime(f[c])
    bad = (f["ordered"] <= 0) | (f["received"] < 0) | (f["received"] > f["ordered"])
    if bad.any():
        rows = list(f.index[bad][:5])
        raise ValueError(f"orders rows {rows}: need 0 <= received <= ordered and ordered > 0")
    in_promo = np.zeros(len(f), dtype=bool)
    for start, end in windows:
        in_promo |= (
            (f["due_date"] >= pd.Timestamp(start)) & (f["due_date"] <= pd.Timestamp(end))
        ).to_numpy()
    f["window"] = np.where(in_promo, "promotion", "regular")
    f["on_time"] = f["receipt_date"] <= f["due_date"]
    f["lead_days"] = (f["receipt_date"] - f["order_date"]).dt.days
    z = float(stats.norm.ppf(0.5 + level / 2))
    tail = (1 - level) / 2
    out = []
    for (sup, win), g in f.groupby(["supplier", "window"], sort=True):
        n = len(g)
        x = int(g["on_time"].sum())
        ordered = g["ordered"].to_numpy(np.float64)
        received = g["received"].to_numpy(np.float64)
        fill = received.sum() / ordered.sum()
        resid = received - fill * ordered
        se = float(np.sqrt((resid**2).sum() * n / max(n - 1, 1)) / ordered.sum())
        lead = g["lead_days"].to_numpy(np.float64)
        out.append(
            {
                "supplier": sup,
                "window": win,
                "orders": n,
                "on_time": x / n,
                "on_time_low": float(stats.beta.ppf(tail, x + 0.5, n - x + 0.5)),
                "on_time_high": float(stats.beta.ppf(1 - tail, x + 0.5, n - x + 0.5)),
                "fill_rate": float(fill),
                "fill_low": float(max(fill - z * se, 0.0)),
                "fill_high": float(min(fill + z * se, 1.0)),
                "lead_mean": float(lead.mean()),
                "lead_sd": float(lead.std(ddof=1)) if n > 1 else 0.0,
                "lead_p90": float(np.quantile(lead, 0.9)),
            }
        )
    return pd.DataFrame(out)


def calibrate_suppliers(
    scenario: Scenario, table: pd.DataFrame, window: str = "promotion"
) -> Scenario:
    """Suppliers' lead time (lognormal mean/sd) and fill rate from ``table``'s ``window`` rows
    (falling back to ``regular`` where a supplier has none); others unchanged."""
    new = []
    for v in scenario.suppliers:
        rows = table[table["supplier"] == v.id]
        pick = rows[rows["window"] == window]
        row = (pick if not pick.empty else rows).head(1)
        if row.empty:
            new.append(v)
            continue
        r = row.iloc[0]
        lead = LeadTime(
            distribution="lognormal",
            mean=max(float(r["lead_mean"]), 1.0),
            sd=float(r["lead_sd"]),
            min=max(1, min(v.lead_time.min, int(r["lead_mean"]))),
        )
        new.append(v.model_copy(update={"lead_time": lead, "fill_rate": float(r["fill_rate"])}))
    return scenario.model_copy(update={"suppliers": tuple(new)})
