"""Compare a policy's purchase recommendations with what the ERP and its planners did.

Both sides are reduced to supplier orders per (SKU, location): summed units and the earliest due
date. A key is *agreed* when both ordered and the quantities are within ``tolerance`` (share of
the ERP's quantity, at least ``min_units``). Reported: agreement rates, quantity and timing
differences per key, and the orders only one side placed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

LINE_COLUMNS = [
    "sku",
    "location",
    "policy_qty",
    "erp_qty",
    "qty_diff",
    "policy_due",
    "erp_due",
    "timing_diff_days",
    "status",
    "agreed",
]


@dataclass(frozen=True)
class Comparison:
    summary: dict[str, Any]
    lines: pd.DataFrame


def _reduce(frame: pd.DataFrame) -> pd.DataFrame:
    if not len(frame):
        return pd.DataFrame({"sku": [], "location": [], "qty": [], "due": []})
    return frame.groupby(["sku", "location"], as_index=False).agg(
        qty=("qty", "sum"), due=("due", "min")
    )


def compare(
    policy: pd.DataFrame, erp: pd.DataFrame, tolerance: float = 0.2, min_units: float = 1.0
) -> Comparison:
    """``policy`` and ``erp``: columns sku, location, qty, due (date). Twin ids on both sides."""
    p, e = _reduce(policy), _reduce(erp)
    m = p.merge(e, on=["sku", "location"], how="outer", suffixes=("_p", "_e"))
    m = m.sort_values(["sku", "location"]).reset_index(drop=True)
    pq = m["qty_p"].fillna(0).to_numpy(np.float64)
    eq = m["qty_e"].fillna(0).to_numpy(np.float64)
    both = (pq > 0) & (eq > 0)
    status = np.where(both, "both", np.where(pq > 0, "policy_only", "erp_only"))
    agreed = both & (np.abs(pq - eq) <= np.maximum(tolerance * eq, min_units))
    timing = [
        (a - b).days if isinstance(a, dt.date) and isinstance(b, dt.date) else np.nan
        for a, b in zip(m["due_p"], m["due_e"], strict=True)
    ]
    lines = pd.DataFrame(
        {
            "sku": m["sku"].astype(str),
            "location": m["location"].astype(str),
            "policy_qty": pq,
            "erp_qty": eq,
            "qty_diff": pq - eq,
            "policy_due": m["due_p"],
            "erp_due": m["due_e"],
            "timing_diff_days": np.asarray(timing, np.float64),
            "status": status,
            "agreed": agreed,
        },
        columns=LINE_COLUMNS,
    )
    n = len(lines)
    timing_both = lines.loc[both, "timing_diff_days"].dropna()
    summary = {
        "keys": n,
        "both": int(both.sum()),
        "policy_only": int((status == "policy_only").sum()),
        "erp_only": int((status == "erp_only").sum()),
        "agreement_rate": float(agreed.sum() / n) if n else float("nan"),
        "order_agreement_rate": float(both.sum() / n) if n else float("nan"),
        "policy_units": float(pq.sum()),
        "erp_units": float(eq.sum()),
        "mean_abs_qty_diff": float(np.abs(pq - eq)[both].mean()) if both.any() else float("nan"),
        "mean_timing_diff_days": float(timing_both.mean()) if len(timing_both) else float("nan"),
    }
    return Comparison(summary, lines)
