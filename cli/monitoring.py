"""Shadow-mode monitoring on the command line: the monitor ``twin shadow`` runs with, and
``twin shadow monitor`` (forecast error run by run, integration health per day)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

if TYPE_CHECKING:
    from promotwin.shadow import RunStore
    from promotwin.workflow.config import GovernanceConfig
    from promotwin.workflow.store import Store

GovernanceOpt = Annotated[
    str,
    typer.Option(
        "--governance",
        help="governance config (name or YAML file): its monitoring section sets the drift limits",
    ),
]
ApprovalsOpt = Annotated[
    str | None,
    typer.Option(
        "--approvals",
        help="approval store (SQLite file or URL) where forecast drift raises an exception for "
        "the model owner (default: drift is recorded, no exception raised)",
    ),
]


def monitoring_inputs(
    governance: str, approvals: str | None
) -> tuple[GovernanceConfig, Store | None]:
    """The drift limits and the approval store of a ``twin shadow`` run, checked before the
    ERP is reached (exit 2 with what to fix)."""
    from promotwin.cli.outputs import check_store
    from promotwin.workflow.config import load_config

    config = load_config(governance)
    if approvals is None:
        return config, None
    from promotwin.workflow.store import Store

    check_store(approvals, "--approvals")
    return config, Store(approvals)


def _pct(v: float, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:+.1%}" if signed else f"{v:.1%}"


def accuracy_table(store: RunStore) -> Table:
    """WAPE and bias per run at both levels."""
    from promotwin.shadow.monitoring import accuracy_by_run

    acc = accuracy_by_run(store)
    table = Table(
        title="forecast error against the ERP's sales, week to each run's as-of date",
        caption="cell-day: SKU x location x day; region-week: SKU x region (a DC and its "
        "stores) x week, the level planners judge; bias + means over-forecast",
        caption_justify="left",
    )
    for col in ("run", "as of", "days", "sold (units)", "WAPE cell-day", "WAPE region-week"):
        table.add_column(col, justify="left" if col in ("run", "as of") else "right")
    table.add_column("bias", justify="right")
    for run_id, rows in acc.groupby("run_id", sort=False):
        by = {r["level"]: r for _, r in rows.iterrows()}
        cell, week = by["sku-location-day"], by["sku-region-week"]
        table.add_row(
            str(run_id),
            str(cell["as_of"]),
            str(cell["days"]),
            f"{cell['actual_units']:,.0f}",
            _pct(cell["wape"]),
            _pct(week["wape"]),
            _pct(week["bias"], signed=True),
        )
    return table


def health_table(store: RunStore) -> Table:
    """Integration health per day."""
    from promotwin.shadow.monitoring import health_by_day

    health = health_by_day(store)
    table = Table(title="integration health per day (UTC day the run started)")
    for col in ("day", "runs", "ok", "degraded", "partial", "failed"):
        table.add_column(col, justify="left" if col == "day" else "right")
    for col in ("ERP read s (median / max)", "retries", "data warnings"):
        table.add_column(col, justify="right")
    for r in health.to_dict("records"):
        read = (
            "–"
            if math.isnan(r["read_seconds_max"])
            else f"{r['read_seconds_median']:.1f} / {r['read_seconds_max']:.1f}"
        )
        table.add_row(
            str(r["day"]),
            *(f"{int(r[k]):,}" for k in ("runs", "ok", "degraded", "partial", "failed")),
            read,
            f"{int(r['retries']):,}",
            f"{int(r['data_warnings']):,}",
        )
    return table


def register(shadow: typer.Typer) -> None:
    """Add ``twin shadow monitor`` to the shadow command group."""
    from promotwin.cli.common import console, user_errors

    @shadow.command("monitor")
    @user_errors
    def monitor(
        store: Annotated[Path, typer.Option("--store", help="SQLite run store")] = Path(
            "shadow-runs.sqlite"
        ),
    ) -> None:
        """Forecast error against the ERP's sales run by run, and integration health per day."""
        from promotwin.cli.outputs import check_store
        from promotwin.shadow import RunStore
        from promotwin.shadow.monitoring import accuracy_by_run

        check_store(store, "--store", create=False)
        rs = RunStore(store)
        if not len(rs.runs()):
            console.print(f"no shadow runs in {store} yet: run `twin shadow … --store {store}`")
            return
        if len(accuracy_by_run(rs)):
            console.print(accuracy_table(rs))
        else:
            console.print(
                "no run scored yet: a run scores the week before it against the forecasts of "
                "earlier runs (run `twin shadow` again on a later day)"
            )
        console.print(health_table(rs))
