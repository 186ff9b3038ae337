"""What the shadow page's monitoring section shows of :mod:`promotwin.shadow.monitoring`: the
forecast's error run by run against the drift limits, and integration health per day (no
Streamlit here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from promotwin.dashboards import fmt
from promotwin.shadow.monitoring import LEVELS, Accuracy, accuracy_by_run, drift, health_by_day
from promotwin.shadow.store import RunStore
from promotwin.workflow.config import Monitoring

if TYPE_CHECKING:
    from matplotlib.figure import Figure

LEVEL_WORDS = {
    "sku-location-day": "SKU × location × day",
    "sku-region-week": "SKU × region × week",
}
EXPLAIN = (
    "Each run scores the week to its as-of date against the forecasts of earlier runs (each "
    "day against the latest forecast issued before it). SKU × region × week sums a week's units "
    "per SKU and region (a DC and its stores) first: the level planners judge a forecast at; "
    "SKU × location × day counts every shelf's daily miss, so it is always the larger. Bias + is "
    "over-forecast."
)


def _accuracy(row: pd.Series) -> Accuracy:
    return Accuracy(
        str(row["level"]),
        row["first_day"],
        row["last_day"],
        int(row["days"]),
        float(row["actual_units"]),
        float(row["forecast_units"]),
        float(row["abs_error"]),
    )


def by_run(store: RunStore) -> pd.DataFrame:
    """One row per scored run: both levels' WAPE, the limits' level's bias, what it crossed."""
    acc = accuracy_by_run(store)
    if not len(acc):
        return pd.DataFrame()
    wide = acc.pivot(index=["run_id", "as_of", "days"], columns="level", values="wape")
    bias = acc.pivot(index=["run_id", "as_of", "days"], columns="level", values="bias")
    sold = acc.pivot(index=["run_id", "as_of", "days"], columns="level", values="actual_units")
    out = pd.DataFrame(
        {f"wape {lv}": wide[lv] for lv in LEVELS}
        | {f"bias {lv}": bias[lv] for lv in LEVELS}
        | {"actual_units": sold[LEVELS[0]]}
    ).reset_index()
    scores = {
        run_id: [_accuracy(r) for _, r in rows.iterrows()]
        for run_id, rows in acc.groupby("run_id", sort=False)
    }
    out["scores"] = out["run_id"].map(scores)
    return out.sort_values(["as_of", "run_id"]).reset_index(drop=True)


def accuracy_rows(runs: pd.DataFrame, limits: Monitoring) -> pd.DataFrame:
    """The runs' scores as text, with the limits each one crossed."""
    return pd.DataFrame(
        {
            "as of": runs["as_of"],
            "run": runs["run_id"],
            "days scored": runs["days"],
            "units sold": runs["actual_units"].map(fmt.units),
            **{f"WAPE {LEVEL_WORDS[lv]}": runs[f"wape {lv}"].map(fmt.pct) for lv in LEVELS},
            "bias": runs[f"bias {limits.level}"].map(lambda v: fmt.pct(v, signed=True)),
            "drift": ["; ".join(drift(s, limits)) or "within limits" for s in runs["scores"]],
        }
    )


def health_rows(store: RunStore) -> pd.DataFrame:
    """Integration health per day, as text."""
    h = health_by_day(store)
    return pd.DataFrame(
        {
            "day": h["day"],
            "runs": h["runs"].map(fmt.count),
            "ok": h["ok"].map(fmt.count),
            "degraded": h["degraded"].map(fmt.count),
            "partial": h["partial"].map(fmt.count),
            "failed": h["failed"].map(fmt.count),
            "ERP read (s, median / max)": [
                "–" if m != m else f"{m:.1f} / {x:.1f}"
                for m, x in zip(h["read_seconds_median"], h["read_seconds_max"], strict=True)
            ],
            "retries": h["retries"].map(fmt.count),
            "data warnings": h["data_warnings"].map(fmt.count),
        }
    )


def drift_figure(runs: pd.DataFrame, limits: Monitoring) -> Figure:
    """WAPE at both levels and bias at the limits' level by as-of date, with the limits."""
    from matplotlib import dates, ticker
    from matplotlib.figure import Figure

    when = pd.to_datetime(runs["as_of"])
    fig = Figure(figsize=(9, 3.4))
    ax = fig.subplots()
    for lv, style in zip(LEVELS, ("o:", "o-"), strict=True):
        ax.plot(when, runs[f"wape {lv}"], style, label=f"WAPE, {LEVEL_WORDS[lv]}")
    ax.plot(when, runs[f"bias {limits.level}"], "s--", label=f"bias, {LEVEL_WORDS[limits.level]}")
    if limits.max_wape is not None:
        ax.axhline(limits.max_wape, color="#d73027", lw=0.8, label="WAPE limit")
    if limits.max_abs_bias is not None:
        for y in (limits.max_abs_bias, -limits.max_abs_bias):
            ax.axhline(y, color="#4575b4", lw=0.8, ls="--")
    ax.axhline(0, color="#999", lw=0.6)
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(1.0, decimals=0))
    pad = pd.Timedelta(days=1)  # a single run still gets a readable date range
    ax.set_xlim(dates.date2num(when.min() - pad), dates.date2num(when.max() + pad))
    ax.xaxis.set_major_locator(dates.AutoDateLocator(maxticks=8))
    ax.xaxis.set_major_formatter(dates.DateFormatter("%Y-%m-%d"))
    ax.set_xlabel("as-of date of the run (week to it scored)")
    ax.set_ylabel("share of units sold (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
