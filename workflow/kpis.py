"""Governance KPIs, computed from the audit trail (the ledger of decisions), never kept by hand.

Days before ``warmup_days`` are left out, as for the twin's KPIs. Money is currency.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KPI_NAMES = (
    "exceptions_raised",
    "auto_approved_share",
    "planner_touches_per_day",
    "value_waiting_for_approval",
    "decisions_expired",
    "hard_limit_rejections",
)


def governance_kpis(audit: pd.DataFrame, days: int, warmup_days: int = 0) -> dict[str, float]:
    """Counts and shares of a run's decisions; ``value_waiting_for_approval`` is the average
    end-of-day value (currency) of exceptions no planner has decided yet."""
    n_days = max(days - warmup_days, 1)
    if audit.empty:
        audit = pd.DataFrame(
            {c: pd.Series(dtype=object) for c in ("event", "sim_day", "exception_id", "actor")}
            | {"value": pd.Series(dtype=float), "rules": pd.Series(dtype=object)}
        )
    day = audit["sim_day"].fillna(-1).astype(np.int64)
    after = day >= warmup_days
    event = audit["event"]
    by_planner = audit["exception_id"].notna() & (audit["actor"] != "governance")
    decided = event.isin(["approved", "rejected"]) & by_planner

    def count(mask: pd.Series) -> float:
        return float((mask & after).sum())

    proposed = count(event == "proposed")
    # value waiting: + when routed, - when a planner decides or it expires; end-of-day stock
    delta = np.zeros(days)
    for mask, sign in ((event == "routed", 1.0), (decided | (event == "expired"), -1.0)):
        d = day[mask].to_numpy()
        ok = (d >= 0) & (d < days)
        np.add.at(delta, d[ok], sign * audit.loc[mask, "value"].to_numpy(np.float64)[ok])
    waiting = np.cumsum(delta)[warmup_days:]
    kpis = {
        "exceptions_raised": count(event == "routed"),
        "auto_approved_share": count(event == "auto_approved") / proposed
        if proposed
        else float("nan"),
        "planner_touches_per_day": count(decided) / n_days,
        "value_waiting_for_approval": float(waiting.mean()) if len(waiting) else 0.0,
        "decisions_expired": count(event == "expired"),
        "hard_limit_rejections": count(
            (event == "rejected") & audit["rules"].fillna("").str.contains("hard.", regex=False)
        ),
    }
    return {k: float(np.round(v, 6)) for k, v in kpis.items()}
