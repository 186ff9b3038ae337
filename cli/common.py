"""What every ``twin`` command shares: consoles, the bad-input handler, KPI tables."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from promotwin.experiments.kpis import COST_PARTS, DEFAULT_CURRENCY
from promotwin.experiments.kpis import label as kpi_label

# Piped output (files, CI logs) gets a wide fixed width instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

MAX_SEED = 2**63 - 1  # seeds are stored as 64-bit integers in manifests and result tables
F = TypeVar("F", bound=Callable[..., Any])

# (KPI, format): labels come from experiments.kpis, so every view names a KPI the same way.
# The cost parts sit under total cost, which is their sum.
KPI_ROWS: tuple[tuple[str, str], ...] = (
    ("fill_rate", "{:.1%}"),
    ("promo_fill_rate", "{:.1%}"),
    ("fill_rate_walk_in", "{:.1%}"),
    ("fill_rate_pickup", "{:.1%}"),
    ("fill_rate_ecommerce", "{:.1%}"),
    ("lost_sales_units", "{:,.0f}"),
    ("promo_lost_sales_units", "{:,.0f}"),
    ("lost_sales_value", "{:,.0f}"),
    ("stockout_days", "{:,.0f}"),
    ("revenue", "{:,.0f}"),
    ("vendor_funding", "{:,.0f}"),
    ("gross_margin", "{:,.0f}"),
    ("total_cost", "{:,.0f}"),
    *((part, "{:,.0f}") for part in COST_PARTS),
    ("avg_inventory_value", "{:,.0f}"),
    ("inventory_turns", "{:.1f}"),
    ("forecast_wape", "{:.1%}"),
    ("forecast_wape_region_week", "{:.1%}"),
    ("forecast_bias", "{:+.1%}"),
    ("promo_forecast_wape", "{:.1%}"),
    ("promo_forecast_wape_region_week", "{:.1%}"),
    ("promo_forecast_bias", "{:+.1%}"),
    ("exceptions", "{:,.0f}"),
)
KPI_NOTES = (
    "total cost = lost-sale + ordering + holding + transport + expedite cost (the rows under "
    "it); holding is charged on end-of-day stock.",
    "forecast WAPE by location × SKU × day is dominated by daily noise at one store; planners "
    "judge a forecast at SKU × region × week (the whole run, and the promotion window).",
)


def _fmt(fmt: str, value: float) -> str:
    return "–" if value != value else fmt.format(value)


# The error classes are imported while an error is being handled (Python evaluates an ``except``
# clause only then), so ``twin --help`` and cheap commands never import the library for them.


def _plan_error() -> type[Exception]:
    from promotwin.twin.model import PlanError

    return PlanError


def _bad_input() -> tuple[type[Exception], ...]:
    from promotwin.cli.outputs import OutputError
    from promotwin.demand.replay import HistoryError
    from promotwin.policies.registry import UnknownPolicyError
    from promotwin.scenarios import ScenarioError

    return (
        ScenarioError,
        UnknownPolicyError,
        HistoryError,
        OutputError,
        FileExistsError,
        ValueError,
    )


def user_errors(func: F) -> F:
    """Bad input: a clear message and exit 2. Anything else: exit 1 with a one-line summary."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except _plan_error() as exc:
            err.print(f"[red]error:[/] the policy proposed an impossible plan: {exc}")
            raise typer.Exit(1) from None
        except _bad_input() as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None
        except Exception as exc:  # internal error: say so, without a wall of traceback
            err.print(f"[red]internal error:[/] {type(exc).__name__}: {exc}")
            err.print(
                "Please report it with the command you ran. Set TWIN_DEBUG=1 for a traceback."
            )
            if "TWIN_DEBUG" in os.environ:
                raise
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def kpi_table(
    results: dict[str, dict[str, float]], title: str, currency: str = DEFAULT_CURRENCY
) -> Table:
    """KPIs by run, money in ``currency``, the cost parts indented under total cost, and the
    notes on cost and forecast accuracy as the caption."""
    table = Table(title=title, caption="\n".join(KPI_NOTES), caption_justify="left")
    table.add_column("KPI")
    for name in results:
        table.add_column(name, justify="right")
    for key, fmt in KPI_ROWS:
        name = ("  " if key in COST_PARTS else "") + kpi_label(key, currency)
        table.add_row(name, *(_fmt(fmt, r.get(key, float("nan"))) for r in results.values()))
    return table


def check_seed(seed: int, option: str = "--seed") -> None:
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{option} {seed}: give a whole number from 0 to {MAX_SEED}")


def check_days(days: int | None, horizon_days: int, scenario: str) -> None:
    """``--days`` must lie within the scenario's horizon (1 .. horizon_days)."""
    if days is not None and not 1 <= days <= horizon_days:
        raise ValueError(
            f"--days {days}: scenario {scenario} has a {horizon_days}-day horizon; "
            f"give --days from 1 to {horizon_days}, or leave it out for the whole horizon"
        )
