"""Matplotlib figures for the pages: units on every axis, the shared colours of ``fmt``.

Drawn on a bare ``matplotlib.figure.Figure`` (no pyplot): Streamlit renders it as it is, and
the process's backend and pyplot figures stay as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from promotwin.dashboards import fmt

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.ticker import Formatter


def _percent() -> Formatter:
    from matplotlib import ticker

    return ticker.PercentFormatter(1.0, decimals=0)


def _thousands() -> Formatter:
    from matplotlib import ticker

    return ticker.FuncFormatter(lambda v, _: f"{v:,.0f}")


def _money() -> Formatter:
    from matplotlib import ticker

    return ticker.FuncFormatter(lambda v, _: fmt.money(v))


SWEEP_PANELS: tuple[tuple[str, str, Callable[[], Formatter], str], ...] = (
    ("promo_fill_rate", "promotion fill rate (%)", _percent, fmt.GOOD),
    ("promo_lost_sales_units", "promotion lost sales (units)", _thousands, fmt.BAD),
    ("expected_margin", f"incremental margin, expected ({fmt.CURRENCY})", _money, fmt.GOOD),
    ("readiness", "readiness score (0-100)", _thousands, fmt.BASELINE),
)


def sweep_figure(frame: pd.DataFrame, current_depth: float, chosen_depth: float) -> Figure:
    """Headline numbers against discount depth; the current plan and the chosen depth marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 3.4))
    axes = fig.subplots(1, len(SWEEP_PANELS))
    for ax, (key, label, formatter, colour) in zip(axes, SWEEP_PANELS, strict=True):
        if key in frame:
            ax.plot(frame["depth"], frame[key], "o-", color=colour)
        ax.axvline(current_depth, color=fmt.BASELINE, ls="--", lw=1, label="current plan")
        ax.axvline(chosen_depth, color=fmt.VARIANT, ls=":", lw=1.5, label="chosen depth")
        ax.set_xlabel("discount depth (%)")
        ax.set_ylabel(label)
        ax.xaxis.set_major_formatter(_percent())
        ax.yaxis.set_major_formatter(formatter())
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def agreement_figure(runs: pd.DataFrame) -> Figure:
    """Same-day agreement with the ERP per shadow run (failed runs marked in red)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.2))
    ax = fig.subplots()
    when = pd.to_datetime(runs["started"], utc=True, errors="coerce")
    ok = runs["status"] != "failed"
    ax.plot(when[ok], runs.loc[ok, "agreement_rate"], "o-", color=fmt.BASELINE, label="agreement")
    ax.plot(
        when[ok],
        runs.loc[ok, "order_agreement_rate"],
        "s--",
        color=fmt.GOOD,
        alpha=0.7,
        label="both ordered",
    )
    from matplotlib.dates import date2num

    for t in when[~ok]:  # failed runs: a red line at their start
        ax.axvline(float(date2num(t)), color=fmt.BAD, alpha=0.5, lw=1)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of SKU x location keys (%)")
    ax.set_xlabel("shadow run started (UTC)")
    ax.yaxis.set_major_formatter(_percent())
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
