"""What the shadow page shows: shadow runs over time from a shadow run store (``twin shadow``),
their agreement with what the ERP and its planners did, the differences worth a look, run health
and counterfactual KPI differences where the store has them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from promotwin.shadow.store import RunStore

SAME_DAY = "same-day"


@dataclass(frozen=True)
class ShadowStatus:
    store: RunStore | None
    message: str  # why there is no store, in plain words ("" when there is one)


def open_store(path: str | Path | None) -> ShadowStatus:
    """The shadow run store at ``path``; never creates one (a missing file is explained)."""
    if path is None or not str(path).strip():
        return ShadowStatus(
            None,
            "No shadow run store given. Run `twin shadow --erp … --store FILE` to record "
            "shadow runs, then start the dashboard with `twin dashboard --shadow-store FILE` "
            "or type the file's path above.",
        )
    p = Path(path)
    if not p.is_file():
        return ShadowStatus(
            None,
            f"No shadow run store at {p}. Check the path, or record runs first with "
            f"`twin shadow --erp … --store {p}`.",
        )
    try:
        store = RunStore(p)
        store.runs()
    except Exception as exc:  # noqa: BLE001 - a wrong file is a message, not a crash
        return ShadowStatus(None, f"{p} is not a shadow run store ({type(exc).__name__}: {exc}).")
    return ShadowStatus(store, "")


def runs_over_time(store: RunStore) -> pd.DataFrame:
    """Every run with its same-day agreement with the ERP (share of SKU x location keys)."""
    runs = store.runs()
    agreement, order_agreement, policy_only, erp_only = [], [], [], []
    for run_id in runs["run_id"]:
        found = store.comparison(run_id, SAME_DAY)
        s: dict[str, Any] = found[0] if found else {}
        agreement.append(s.get("agreement_rate", np.nan))
        order_agreement.append(s.get("order_agreement_rate", np.nan))
        policy_only.append(s.get("policy_only", np.nan))
        erp_only.append(s.get("erp_only", np.nan))
    out = runs.assign(
        agreement_rate=pd.to_numeric(pd.Series(agreement, dtype=object), errors="coerce").values,
        order_agreement_rate=pd.to_numeric(
            pd.Series(order_agreement, dtype=object), errors="coerce"
        ).values,
        policy_only=pd.to_numeric(pd.Series(policy_only, dtype=object), errors="coerce").values,
        erp_only=pd.to_numeric(pd.Series(erp_only, dtype=object), errors="coerce").values,
    )
    return out


def health(runs: pd.DataFrame) -> dict[str, int]:
    counts = runs["status"].value_counts() if len(runs) else pd.Series(dtype=int)
    return {k: int(counts.get(k, 0)) for k in ("ok", "partial", "failed")}


def problem_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Failed and partial runs, newest first, with their reasons."""
    bad = runs[runs["status"] != "ok"]
    cols = ["started", "run_id", "status", "as_of", "attempts", "reason"]
    return bad.sort_values("started", ascending=False)[cols].reset_index(drop=True)


def differences(store: RunStore, run_id: str, against: str = SAME_DAY) -> pd.DataFrame:
    """Where the policy and the ERP differ in one run, largest value (|units| x unit cost) first."""
    found = store.comparison(run_id, against)
    if found is None or not len(found[1]):
        return pd.DataFrame(
            columns=["sku", "location", "status", "policy_qty", "erp_qty", "qty_diff", "value"]
        )
    lines = found[1]
    recs = store.recommendations(run_id)
    cost = recs.groupby("sku")["unit_cost"].first() if len(recs) else pd.Series(dtype=float)
    unit = lines["sku"].astype(str).map(cost).fillna(1.0).astype(float)
    out = lines.assign(value=(lines["qty_diff"].abs() * unit).to_numpy())
    out = out[~out["agreed"].astype(bool)]
    return out.sort_values("value", ascending=False).reset_index(drop=True)


def comparisons_of(store: RunStore, run_id: str) -> list[str]:
    """The comparisons recorded for a run (same-day, and against the previous run's period)."""
    with store._connect() as con:  # the store has no listing call yet
        rows = con.execute(
            "SELECT against FROM comparisons WHERE run_id = ? ORDER BY against", (run_id,)
        ).fetchall()
    return [str(r[0]) for r in rows]


def counterfactual_table(store: RunStore) -> pd.DataFrame | None:
    """Counterfactual KPI differences (ERP actual vs policy) if the store records them; ``None``
    otherwise (``twin shadow counterfactual`` prints them)."""
    reader = getattr(store, "counterfactuals", None)
    if reader is None:
        return None
    frame = reader()
    return frame if isinstance(frame, pd.DataFrame) and len(frame) else None
