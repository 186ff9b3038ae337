"""The ``twin`` command. Exit codes: 0 ok, 2 bad input, 1 internal error."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from promotwin.demand.replay import HistoryError
from promotwin.policies.heuristics import StaticForecastPolicy, read_uplift_file
from promotwin.policies.registry import POLICIES, UnknownPolicyError, make_policy
from promotwin.scenarios import ScenarioError, library_names, load_scenario
from promotwin.scenarios.loading import resolve
from promotwin.twin.model import PlanError

app = typer.Typer(
    help="Promotwin: a digital twin for retail promotion planning and inventory coordination.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
scenarios_app = typer.Typer(help="List, show and validate scenarios.", no_args_is_help=True)
app.add_typer(scenarios_app, name="scenarios")
# Piped output (files, CI logs) gets a wide fixed width instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

BAD_INPUT = (ScenarioError, UnknownPolicyError, HistoryError, FileExistsError, ValueError)
F = TypeVar("F", bound=Callable[..., Any])

KPI_ROWS = [
    ("fill_rate", "fill rate", "{:.1%}"),
    ("promo_fill_rate", "fill rate, promoted SKUs in promotion", "{:.1%}"),
    ("fill_rate_walk_in", "fill rate, walk-in", "{:.1%}"),
    ("fill_rate_pickup", "fill rate, pickup", "{:.1%}"),
    ("fill_rate_ecommerce", "fill rate, ecommerce", "{:.1%}"),
    ("lost_sales_units", "lost sales (units)", "{:,.0f}"),
    ("promo_lost_sales_units", "lost sales, promoted (units)", "{:,.0f}"),
    ("lost_sales_value", "lost sales (value)", "{:,.0f}"),
    ("stockout_days", "stockout location-SKU-days", "{:,.0f}"),
    ("revenue", "revenue", "{:,.0f}"),
    ("gross_margin", "gross margin", "{:,.0f}"),
    ("holding_cost", "holding cost", "{:,.0f}"),
    ("transport_cost", "transport cost", "{:,.0f}"),
    ("expedite_cost", "expedite cost", "{:,.0f}"),
    ("total_cost", "total cost", "{:,.0f}"),
    ("avg_inventory_value", "average inventory value", "{:,.0f}"),
    ("inventory_turns", "inventory turns (per year)", "{:.1f}"),
    ("forecast_wape", "forecast WAPE", "{:.1%}"),
    ("forecast_bias", "forecast bias", "{:+.1%}"),
    ("exceptions", "exceptions", "{:,.0f}"),
]


def _fmt(fmt: str, value: float) -> str:
    return "–" if value != value else fmt.format(value)


def user_errors(func: F) -> F:
    """Bad input: a clear message and exit 2. Anything else: exit 1 with a one-line summary."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except PlanError as exc:
            err.print(f"[red]error:[/] the policy proposed an impossible plan: {exc}")
            raise typer.Exit(1) from None
        except BAD_INPUT as exc:
            err.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None
        except Exception as exc:  # internal error: say so, without a wall of traceback
            err.print(f"[red]internal error:[/] {type(exc).__name__}: {exc}")
            err.print(
                "Please report it with the command you ran. Set TWIN_DEBUG=1 for a traceback."
            )
            if "TWIN_DEBUG" in __import__("os").environ:
                raise
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def kpi_table(results: dict[str, dict[str, float]], title: str) -> Table:
    table = Table(title=title)
    table.add_column("KPI")
    for name in results:
        table.add_column(name, justify="right")
    for key, label, fmt in KPI_ROWS:
        table.add_row(label, *(_fmt(fmt, r.get(key, float("nan"))) for r in results.values()))
    return table


def _simulate_with_progress(
    scenario_name: str,
    policy: str,
    seed: int,
    days: int | None,
    ledger: str | None,
    uplifts: dict[str, float] | None = None,
) -> Any:
    from promotwin.twin import simulate

    scenario = load_scenario(scenario_name)
    pol = StaticForecastPolicy(uplifts=uplifts) if uplifts is not None else make_policy(policy)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("day {task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(f"{scenario.name} / {policy}", total=days or scenario.horizon_days)
        return simulate(
            scenario,
            pol,
            seed=seed,
            days=days,
            ledger_detail=ledger,  # type: ignore[arg-type]
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )


def _check_out_dir(path: Path, overwrite: bool) -> None:
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{path} exists and is not empty: choose another --out or add --overwrite"
        )
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file: --out needs a folder")


@app.command()
@user_errors
def run(
    scenario: Annotated[str, typer.Argument(help="built-in scenario name or a YAML file")],
    out: Annotated[Path, typer.Option("--out", help="folder for the run's outputs")],
    policy: Annotated[str, typer.Option(help=f"one of: {', '.join(POLICIES)}")] = "base-stock",
    seed: Annotated[int, typer.Option(help="random seed (same seed, same results)")] = 0,
    days: Annotated[int | None, typer.Option(help="simulate fewer days than the horizon")] = None,
    ledger: Annotated[str | None, typer.Option(help="ledger detail: sku or summary")] = None,
    uplift_file: Annotated[
        Path | None,
        typer.Option(help="static-forecast only: CSV promotion,uplift of the pre-season plan"),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace a non-empty --out folder")] = False,
) -> None:
    """Simulate SCENARIO under a policy; print KPIs and write the run's files to --out."""
    from promotwin.twin.run import write_outputs

    uplifts = None
    if uplift_file is not None:
        if policy != "static-forecast":
            raise ValueError("--uplift-file applies to --policy static-forecast only")
        uplifts = read_uplift_file(uplift_file)
    if ledger not in (None, "sku", "summary"):
        raise ValueError(f"--ledger must be sku or summary, not {ledger!r}")
    if days is not None and days < 1:
        raise ValueError("--days must be at least 1")
    _check_out_dir(out, overwrite)
    result = _simulate_with_progress(scenario, policy, seed, days, ledger, uplifts)
    write_outputs(result, out)
    console.print(kpi_table({policy: result.kpis}, f"{result.scenario} — run {result.run_id}"))
    console.print(f"wrote {out}/ (manifest.json, kpis.json, daily/ledger/decisions.parquet, chart)")


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="folder for the comparison")] = Path(
        "demo-output"
    ),
    seed: Annotated[int, typer.Option(help="random seed")] = 1,
) -> None:
    """The appliance promotion under order-point and base-stock: KPI comparison and a chart."""
    from promotwin.twin.charts import comparison_chart
    from promotwin.twin.run import write_outputs

    results = []
    for name in ("order-point", "base-stock"):
        result = _simulate_with_progress("appliance_promo", name, seed, None, None)
        write_outputs(result, out / name)
        results.append(result)
    comparison_chart(results, out / "comparison.png")
    (out / "comparison.json").write_text(json.dumps({r.policy: r.kpis for r in results}, indent=2))
    console.print(kpi_table({r.policy: r.kpis for r in results}, "appliance_promo, seed 1"))
    console.print(f"wrote {out}/comparison.png, comparison.json and one folder per policy")


@scenarios_app.command("list")
@user_errors
def scenarios_list() -> None:
    """The built-in scenario library."""
    table = Table(title="built-in scenarios")
    for col in ("name", "stores", "DCs", "SKUs", "promotions", "days", "description"):
        table.add_column(col)
    for name in library_names():
        s = load_scenario(name)
        table.add_row(
            name,
            str(len(s.stores)),
            str(len(s.dcs)),
            str(len(s.skus)),
            str(len(s.promotions)),
            str(s.horizon_days),
            s.description[:48] + ("…" if len(s.description) > 48 else ""),
        )
    console.print(table)


@scenarios_app.command("show")
@user_errors
def scenarios_show(
    scenario: Annotated[str, typer.Argument(help="built-in scenario name or a YAML file")],
) -> None:
    """Summary of a scenario: network, catalogue, promotions, disruptions."""
    s = load_scenario(scenario)
    o = console
    o.print(f"[bold]{s.name}[/]: {s.description}")
    o.print(f"{s.start_date} .. {s.end_date} ({s.horizon_days} days, warm-up {s.warmup_days})")
    regions = sorted({x.region for x in s.stores})
    o.print(
        f"{len(s.stores)} stores in {len(regions)} regions ({', '.join(regions)}), "
        f"{len(s.dcs)} DCs, "
        f"{len(s.suppliers)} suppliers, {len(s.lanes)} lanes, {len(s.skus)} SKUs"
    )
    table = Table(title="promotions")
    for col in ("id", "start", "end", "depth", "SKUs/categories", "channels", "display", "feature"):
        table.add_column(col)
    for p in s.promotions:
        what = f"{len(p.skus)} SKUs" if p.skus else ", ".join(p.categories)
        table.add_row(
            p.id,
            str(p.start),
            str(p.end),
            f"{p.depth:.0%}",
            what,
            ", ".join(p.channels),
            str(p.display),
            str(p.feature),
        )
    o.print(table)
    for d in s.disruptions.supplier_delays:
        o.print(f"disruption: supplier {d.supplier} +{d.extra_days} days, {d.start}..{d.end}")
    for c in s.disruptions.dc_capacity_drops:
        o.print(f"disruption: {c.dc} at {c.factor:.0%} capacity, {c.start}..{c.end}")


@scenarios_app.command("validate")
@user_errors
def scenarios_validate(
    file: Annotated[str, typer.Argument(help="scenario YAML file (or a built-in name)")],
) -> None:
    """Check a scenario file; list every problem (exit 2) or say it is valid (exit 0)."""
    resolve(file)
    s = load_scenario(file)
    console.print(
        f"[green]valid[/]: {s.name} — {len(s.stores)} stores, {len(s.dcs)} DCs, "
        f"{len(s.skus)} SKUs, "
        f"{len(s.promotions)} promotions, {s.horizon_days} days"
    )


def main() -> None:  # pragma: no cover - console entry point
    app()


__import__("promotwin.cli.experiments", fromlist=["register"]).register(app)  # `twin compare`
__import__("promotwin.cli.governance", fromlist=["register"]).register(app)  # exceptions, audit
__import__("promotwin.cli.shadow", fromlist=["register"]).register(app)  # `twin shadow`
__import__("promotwin.cli.intelligence", fromlist=["register"]).register(app)  # fit, readiness
__import__("promotwin.cli.dashboard", fromlist=["register"]).register(app)  # `twin dashboard`
if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
