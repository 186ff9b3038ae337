"""What the planner page adds to :mod:`promotwin.twin.outlook`: the headline comparison of two
settings, the depth sweep, the scenario variant as YAML and the results as CSV. No Streamlit here.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from promotwin.scenarios.schema import Scenario
from promotwin.twin.ledger import CHANNELS
from promotwin.twin.outlook import PlannerResult, PromoSettings, project

SWEEP_DEPTHS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
CHANNEL_WORDS = {"walk_in": "walk-in", "pickup": "pickup in store", "ecommerce": "ecommerce"}
# the widgets that show a promotion's own settings: forgotten when the promotion changes
PROMOTION_WIDGETS = ("depth", "start", "end", "channels", "display", "feature", "ecommerce_cap")


# the headline metrics' labels where the table's are too long for a fifth of a 1400 px window;
# the full meaning goes in the tooltip
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "readiness": ("readiness score (0-100)", "how ready supply is for the promotion at launch"),
    "promo_fill_rate": ("promotion fill rate", "share of the promoted SKUs' demand served"),
    "promo_lost_sales_units": ("promotion lost sales", "promoted SKUs' demand not served"),
    "stockout_days": (
        "out-of-stock days",
        "location × SKU days with unmet demand: one SKU out at one store for 3 days counts 3",
    ),
    "expected_margin": (
        "extra margin",
        "incremental margin expected from the promotion (with vendor funding), against no "
        "promotion",
    ),
}


def sweep_seconds(run_seconds: float, n_depths: int) -> str:
    """An honest estimate of a sweep: as many runs as depths, each as long as the one just
    measured (for this scenario and policy)."""
    total = run_seconds * n_depths
    return f"{total:.0f} s" if total < 90 else f"{total / 60:.0f} min"


# -- scenario variants --------------------------------------------------------------------------


def variant_name(scenario: Scenario, promotion_id: str, settings: PromoSettings) -> str:
    return f"{scenario.name}-{promotion_id.lower()}-{round(settings.depth * 100)}pct"


# -- comparisons and exports --------------------------------------------------------------------


def headline(r: PlannerResult) -> dict[str, float]:
    """The numbers the page leads with (KPIs of the run plus the expected outlook)."""
    o = r.outlook
    return {
        **r.kpis,
        "expected_extra_units": o.extra_units,
        "expected_margin": o.margin,
        "expected_vendor_funding": o.vendor_funding,
    }


HEADLINE_LABELS: dict[str, tuple[str, str]] = {  # key -> (label, kind for formats)
    "readiness": ("readiness score (0-100)", "score"),
    "promo_fill_rate": ("promotion fill rate", "rate"),
    "fill_rate": ("fill rate", "rate"),
    "promo_lost_sales_units": ("promotion lost sales", "units"),
    "lost_sales_units": ("lost sales", "units"),
    "lost_sales_value": ("lost sales value", "money"),
    "stockout_days": ("out-of-stock days (location × SKU)", "count"),
    "revenue": ("revenue", "money"),
    "gross_margin": ("gross margin (simulated)", "money"),
    "vendor_funding": ("vendor funding (simulated)", "money"),
    "expedite_cost": ("expedite cost", "money"),
    "total_cost": ("total cost", "money"),
    "expected_extra_units": ("extra units from the promotion (expected)", "units"),
    "expected_margin": ("incremental margin (expected)", "money"),
    "expected_vendor_funding": ("vendor funding (expected)", "money"),
}


def side_by_side(current: PlannerResult, variant_: PlannerResult) -> pd.DataFrame:
    """One row per headline number: the current plan, this variant and the change."""
    a, b = headline(current), headline(variant_)
    rows = [
        {
            "key": key,
            "measure": label,
            "kind": kind,
            "current": a.get(key, np.nan),
            "variant": b.get(key, np.nan),
            "change": b.get(key, np.nan) - a.get(key, np.nan),
        }
        for key, (label, kind) in HEADLINE_LABELS.items()
    ]
    return pd.DataFrame(rows)


def time_left(done: int, total: int, elapsed: float) -> str:
    """How long the rest will take at the pace so far, in words (``done`` of ``total`` steps in
    ``elapsed`` seconds)."""
    if done <= 0 or elapsed <= 0:
        return "estimating time left"
    left = elapsed / done * max(total - done, 0)
    if left < 1:
        return "under a second left"
    return f"about {left:.0f} s left" if left < 90 else f"about {left / 60:.0f} min left"


def sweep(
    scenario: Scenario,
    promotion_id: str,
    settings: PromoSettings,
    depths: Sequence[float] = SWEEP_DEPTHS,
    policy: str = "base-stock",
    seed: int = 0,
    days_before: int = 7,
    quantile: float = 0.8,
    progress: Callable[[int, int], None] | None = None,
    run: Callable[..., PlannerResult] | None = None,
) -> pd.DataFrame:
    """Headline numbers against discount depth, every other setting as given (same seed)."""
    run = run or project
    rows = []
    for i, d in enumerate(depths):
        r = run(
            scenario,
            promotion_id,
            dataclasses.replace(settings, depth=float(d)),
            policy,
            seed,
            days_before,
            quantile,
        )
        rows.append({"depth": float(d), **headline(r)})
        if progress is not None:
            progress(i + 1, len(depths))
    return pd.DataFrame(rows)


def results_csv(current: PlannerResult, variant_: PlannerResult) -> str:
    """The comparison, uplift, spill-over and stockout tables as one tidy CSV."""
    out: list[dict[str, Any]] = []
    meta = {
        "scenario": variant_.scenario,
        "promotion": variant_.promotion,
        "policy": variant_.policy,
        "seed": variant_.seed,
        "run_id": variant_.run_id,
        "depth": variant_.settings.depth,
        "current_depth": current.settings.depth,
    }
    for r in side_by_side(current, variant_).itertuples(index=False):
        for col in ("current", "variant"):
            out.append(
                meta | {"table": "headline", "row": r.key, "column": col, "value": getattr(r, col)}
            )
    for r in variant_.outlook.uplift.itertuples(index=False):
        for col in ("baseline_units", "expected_units", "uplift", "low", "high"):
            out.append(
                meta
                | {
                    "table": f"uplift_by_{r.by}",
                    "row": f"{r.group}/{r.channel}",
                    "column": col,
                    "value": getattr(r, col),
                }
            )
    for r in variant_.lost.itertuples(index=False):
        for ch in CHANNELS:
            out.append(
                meta
                | {
                    "table": f"lost_units_by_{r.by}",
                    "row": r.group,
                    "column": ch,
                    "value": getattr(r, ch),
                }
            )
    for r in variant_.outlook.spill.itertuples(index=False):
        out.append(
            meta
            | {
                "table": "spill_over",
                "row": r.category,
                "column": "change_units",
                "value": r.change_units,
            }
        )
    buf = io.StringIO()
    pd.DataFrame(out).to_csv(buf, index=False)
    return buf.getvalue()


def heat_table(frame: pd.DataFrame, by: str, value_cols: Sequence[str]) -> pd.DataFrame:
    """Rows of one grouping (``region`` or ``cluster``) indexed by group, for a heatmap."""
    part = frame[frame["by"] == by].set_index("group")[list(value_cols)]
    part.index.name = by
    return part
