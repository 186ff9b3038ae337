"""What the Post-event page shows of :mod:`promotwin.experiments.post_event`: the run's
promotions, and the analysis as tables a planner reads (no Streamlit here)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from promotwin.dashboards import fmt
from promotwin.experiments.post_event import PostEvent, load_run
from promotwin.experiments.post_event_report import CHANNEL_WORDS, accuracy_rows
from promotwin.experiments.post_event_sources import (
    ExperimentArms,
    experiment_arms,
    is_experiment_folder,
)

ENV_RUN = "PROMOTWIN_RUN"  # a `twin run --out` folder


def promotions(folder: Path | str) -> list[str]:
    """The promotions of the run's scenario (a clear error when it is not a run folder)."""
    return [p.id for p in load_run(folder).scenario.promotions]


def arms(folder: Path | str) -> ExperimentArms | None:
    """The experiment's arms, replications and promotions; None for a twin run folder."""
    return experiment_arms(folder) if is_experiment_folder(Path(folder)) else None


def accuracy_table(pe: PostEvent) -> pd.DataFrame:
    """The run's forecast accuracy at both levels, whole run and promotion, as text."""
    rows = accuracy_rows(pe)
    if not len(rows):
        return rows
    return pd.DataFrame(
        {
            "over": rows["over"],
            "measure": rows["measure"],
            "value": [
                fmt.pct(v, signed=bool(s))
                for v, s in zip(rows["value"], rows["signed"], strict=True)
            ],
        }
    )


def uplift_rows(pe: PostEvent, level: str) -> pd.DataFrame:
    """Planned vs realised uplift per group and channel, as text."""
    g = pe.uplift_by_group
    return pd.DataFrame(
        {
            level: g[level],
            "channel": g["channel"].map(lambda c: CHANNEL_WORDS.get(str(c), str(c))),
            "planned uplift": g["planned_uplift"].map(lambda v: f"×{v:.2f}"),
            "realised uplift": g["realised_uplift"].map(lambda v: f"×{v:.2f}"),
            "95% interval": [
                f"×{lo:.2f} to ×{hi:.2f}" for lo, hi in zip(g["low"], g["high"], strict=True)
            ],
            "realised vs plan": g["realised_vs_plan"].map(lambda v: fmt.pct(v, signed=True)),
        }
    )


def service_rows(pe: PostEvent) -> pd.DataFrame:
    """This run against the baseline policy on the same demand, promoted cells in the window."""
    currency = pe.run.currency
    policy = str(pe.run.manifest["policy"])
    s, b = pe.service, pe.baseline_service
    rows = [
        ("fill rate", fmt.pct(s["fill_rate"]), fmt.pct(b["fill_rate"])),
        ("lost sales", fmt.units(s["lost_units"]), fmt.units(b["lost_units"])),
    ]
    for key, name in (
        ("margin_before_funding", "margin before vendor funding"),
        ("vendor_funding", "vendor funding"),
        ("margin_with_funding", "margin with vendor funding"),
    ):
        rows.append(
            (name, fmt.money(s[key], currency=currency), fmt.money(b[key], currency=currency))
        )
    return pd.DataFrame(rows, columns=["measure", policy, f"{pe.baseline_policy} (same demand)"])


def spill_rows(pe: PostEvent) -> pd.DataFrame:
    sp = pe.spill
    if not len(sp):
        return pd.DataFrame()
    return pd.DataFrame(
        {
            "effect": sp["effect"],
            "dates": [f"{a} to {b}" for a, b in zip(sp["from"], sp["to"], strict=True)],
            "planned": sp["planned_change"].map(lambda v: fmt.pct(v, signed=True)),
            "realised": sp["realised_change"].map(lambda v: fmt.pct(v, signed=True)),
        }
    )
