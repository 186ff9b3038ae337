"""``twin governance``, ``twin exceptions`` and ``twin audit``: governed runs, the exception
queues and the audit trail, against a store (a SQLite file or a SQLAlchemy URL).

``register(app)`` wires the commands in; ``cli.main`` (console, ``user_errors``) is
imported lazily, because main imports this module at its end (also when run as ``__main__``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from promotwin.policies.registry import POLICIES, make_policy
from promotwin.scenarios import load_scenario
from promotwin.workflow.config import OWNERS, load_config
from promotwin.workflow.kpis import KPI_NAMES
from promotwin.workflow.rules import PRIORITIES
from promotwin.workflow.store import STATUSES, Store, to_url

StoreOpt = Annotated[str, typer.Option("--store", help="SQLite file or SQLAlchemy URL")]
ByOpt = Annotated[str, typer.Option("--by", help="your planner id, recorded in the audit trail")]


def _console() -> Console:
    from promotwin.cli.common import console

    return console


def _existing(store: str) -> Store:
    """Open a store that must already exist (never create one by accident)."""
    from promotwin.cli.outputs import check_store

    check_store(store, create=False)
    return Store(store, create=False)


def governance_validate(
    config: Annotated[str, typer.Argument(help="governance YAML file or a built-in name")],
    scenario: Annotated[
        str | None, typer.Option(help="also check ids against this scenario")
    ] = None,
) -> None:
    """Check a governance config; list every problem (exit 2) or say it is valid."""
    s = load_scenario(scenario) if scenario else None
    c = load_config(config, s)
    _console().print(f"[green]valid[/]: governance {c.name} (fingerprint {c.fingerprint()})")


def governance_run(
    scenario: Annotated[str, typer.Argument(help="built-in scenario name or a YAML file")],
    store: StoreOpt,
    out: Annotated[Path | None, typer.Option("--out", help="folder for the run's outputs")] = None,
    rules: Annotated[str, typer.Option(help="governance YAML file or built-in name")] = "default",
    policy: Annotated[str, typer.Option(help=f"one of: {', '.join(POLICIES)}")] = "base-stock",
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    days: Annotated[int | None, typer.Option(help="simulate fewer days than the horizon")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace a non-empty --out folder")] = False,
) -> None:
    """Simulate SCENARIO with governance and simulated planners; decisions go to --store."""
    from promotwin.cli.common import check_days, check_seed, kpi_table
    from promotwin.cli.outputs import check_out_dir, check_store
    from promotwin.twin import simulate
    from promotwin.twin.run import write_outputs
    from promotwin.workflow import GovernedWorkflow

    # everything is checked before anything is written
    if days is not None and days < 1:
        raise ValueError("--days must be at least 1")
    check_seed(seed)
    s = load_scenario(scenario)
    check_days(days, s.horizon_days, s.name)
    config = load_config(rules, s)
    pol = make_policy(policy)
    if out is not None:
        check_out_dir(out, overwrite)
    check_store(store)
    url = to_url(store)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).parent.is_dir():
        raise ValueError(f"--store {store}: its folder does not exist")

    workflow = GovernedWorkflow(config, Store(store))
    result = simulate(s, pol, seed=seed, days=days, governance=workflow)
    if out is not None:
        write_outputs(result, out)
    table = kpi_table({policy: result.kpis}, f"{result.scenario} — run {result.run_id}")
    for key in KPI_NAMES:
        value = result.kpis[key]
        shown = f"{value:.1%}" if key.endswith("_share") else f"{value:,.1f}"
        table.add_row(key.replace("_", " "), shown.removesuffix(".0"))
    _console().print(table)
    _console().print(
        f"decisions in {store} (run {result.run_id}); open exceptions: "
        f"`twin exceptions list --store {store}`"
    )


def exceptions_list(
    store: StoreOpt,
    status: Annotated[str, typer.Option(help=f"one of: {', '.join(STATUSES)}, all")] = "open",
    owner: Annotated[str | None, typer.Option(help=f"queue: {', '.join(OWNERS)}")] = None,
    run: Annotated[str | None, typer.Option(help="only this run id")] = None,
    limit: Annotated[int, typer.Option(help="show at most this many")] = 50,
) -> None:
    """Exceptions by priority (value at risk), highest first."""
    if status != "all" and status not in STATUSES:
        raise ValueError(f"--status must be one of {', '.join(STATUSES)} or all, not {status!r}")
    if owner is not None and owner not in OWNERS:
        raise ValueError(f"--owner must be one of {', '.join(OWNERS)}, not {owner!r}")
    rows = _existing(store).list_exceptions(None if status == "all" else status, owner, run, limit)
    table = Table(title=f"exceptions ({status}) in {store}")
    for col in ("id", "run", "queue", "priority", "status", "day", "expires", "action", "qty"):
        table.add_column(col, justify="right" if col in ("id", "qty") else "left")
    table.add_column("value", justify="right")
    table.add_column("at risk", justify="right")
    table.add_column("why")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["run_id"],
            r["owner"],
            PRIORITIES[r["priority"]],
            r["status"],
            str(r["created_day"]),
            str(r["expires_day"]),
            f"{r['kind']} {r['sku']} {r['origin']}→{r['destination']}",
            f"{r['qty']:,}",
            f"{r['value']:,.0f}",
            f"{r['value_at_risk']:,.0f}",
            r["reason"],
        )
    _console().print(table)
    if not rows:
        _console().print("no exceptions match")


def _decide(store: str, exception_id: int, decision: str, by: str, note: str) -> None:
    if not by.strip():
        raise ValueError("--by must name who decides (it goes into the audit trail)")
    row = _existing(store).decide(exception_id, decision, by, note)  # type: ignore[arg-type]
    _console().print(
        f"exception {row['id']} {decision} by {by}: {row['kind']} {row['qty']:,} x {row['sku']} "
        f"{row['origin']}→{row['destination']}"
    )


def exceptions_approve(
    exception_id: Annotated[int, typer.Argument(help="exception id (see list)")],
    store: StoreOpt,
    by: ByOpt,
    note: Annotated[str, typer.Option(help="why, for the audit trail")] = "",
) -> None:
    """Approve an open exception; it is executed at the next review. Exit 2 if already decided."""
    _decide(store, exception_id, "approved", by, note)


def exceptions_reject(
    exception_id: Annotated[int, typer.Argument(help="exception id (see list)")],
    store: StoreOpt,
    by: ByOpt,
    note: Annotated[str, typer.Option(help="why, for the audit trail")] = "",
) -> None:
    """Reject an open exception; it is never executed. Exit 2 if already decided."""
    _decide(store, exception_id, "rejected", by, note)


def audit_verify(store: StoreOpt) -> None:
    """Check the hash chain; exit 1 naming the first bad record if anything was tampered with."""
    result = _existing(store).verify()
    if result.ok:
        _console().print(f"[green]audit trail intact[/]: {result.checked:,} records")
        return
    _console().print(f"[red]audit trail broken[/] at record {result.first_bad}: {result.problem}")
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the governance, exceptions and audit command groups to ``app``."""
    from promotwin.cli.common import user_errors

    groups = {
        "governance": (
            "Validate governance configs; run the twin governed.",
            {"validate": governance_validate, "run": governance_run},
        ),
        "exceptions": (
            "The exception queues: list, approve, reject.",
            {"list": exceptions_list, "approve": exceptions_approve, "reject": exceptions_reject},
        ),
        "audit": ("The tamper-evident audit trail.", {"verify": audit_verify}),
    }
    for name, (text, commands) in groups.items():
        group = typer.Typer(help=text, no_args_is_help=True)
        for command, func in commands.items():
            group.command(command)(user_errors(func))
        app.add_typer(group, name=name)
