"""The ``twin`` command. Exit codes: 0 ok, 2 bad input, 1 internal error."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from promotwin import strict_json
from promotwin.cli import (
    dashboard,
    experiments,
    governance,
    history,
    intelligence,
    post_event,
    serve,
    shadow,
)
from promotwin.cli.common import check_days, check_seed, console, err, kpi_table, user_errors
from promotwin.cli.outputs import check_out_dir, check_writable, exclusive
from promotwin.policies.registry import POLICIES, make_policy

if TYPE_CHECKING:
    from promotwin.scenarios.schema import Scenario

# The library is imported inside the commands: typer builds every command at import, and
# ``twin --help`` should not pay for the twin, pandas or the optimizer.

app = typer.Typer(
    help="Promotwin: a digital twin for retail promotion planning and inventory coordination.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
scenarios_app = typer.Typer(help="List, show and validate scenarios.", no_args_is_help=True)
app.add_typer(scenarios_app, name="scenarios")


MaxMemoryOpt = Annotated[
    str | None,
    typer.Option(
        "--max-memory",
        help="allow a network whose estimated memory is up to this size (e.g. 32G; default 8G)",
    ),
]


def _max_memory(text: str | None) -> int | None:
    from promotwin.scenarios.loading import parse_size

    return None if text is None else parse_size(text)


def _simulate_with_progress(
    scenario: Scenario,
    policy: str,
    seed: int,
    days: int | None,
    ledger: str | None,
    uplifts: dict[str, float] | None = None,
    forecaster: Any = None,
) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from promotwin.policies.heuristics import StaticForecastPolicy
    from promotwin.twin import simulate

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
            forecaster=forecaster,
        )


@app.command()
@user_errors
def run(
    scenario: Annotated[str, typer.Argument(help="built-in scenario name or a YAML file")],
    out: Annotated[Path, typer.Option("--out", help="folder for the run's outputs")],
    policy: Annotated[
        str,
        typer.Option(
            help=f"one of: {', '.join(POLICIES)}, or hindsight (the perfect-information bound)"
        ),
    ] = "base-stock",
    seed: Annotated[int, typer.Option(help="random seed (same seed, same results)")] = 0,
    days: Annotated[int | None, typer.Option(help="simulate fewer days than the horizon")] = None,
    ledger: Annotated[str | None, typer.Option(help="ledger detail: sku or summary")] = None,
    uplift_file: Annotated[
        Path | None,
        typer.Option(help="static-forecast only: CSV promotion,uplift of the pre-season plan"),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace a non-empty --out folder")] = False,
    max_memory: MaxMemoryOpt = None,
    forecast: Annotated[
        str,
        typer.Option(
            help="forecaster: oracle (the generator's own mean: an upper bound no retailer "
            "has), plan (the scenario's plan, none of the hidden truth), glm or gbm (a fitted "
            "--model file). The default stays oracle, labelled an upper bound, until a learned "
            "one beats the others: gbm --sensing does not yet (with base-stock-expedite it "
            "loses ~8% more promotion sales and costs ~23% more than the oracle bound, and "
            "last session it did not beat plan --sensing; README, "
            "benchmarks/compare_forecasters.py), and it needs a --model file a default cannot "
            "supply; plan --sensing is the best forecast a retailer could have"
        ),
    ] = "oracle",
    model: Annotated[
        Path | None, typer.Option(help="fitted model file for --forecast glm/gbm (`twin fit`)")
    ] = None,
    sensing: Annotated[
        bool, typer.Option(help="re-forecast running promotions from the sales seen so far")
    ] = False,
    shards: Annotated[
        int | None,
        typer.Option(help="split the run into this many SKU-group shards on a Dask cluster"),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="with --shards: a Dask scheduler (tcp://HOST:PORT; default local)"),
    ] = None,
) -> None:
    """Simulate SCENARIO under a policy; print KPIs and write the run's files to --out."""
    from promotwin.demand.forecaster import make_forecaster
    from promotwin.demand.history import check_history
    from promotwin.policies.heuristics import read_uplift_file
    from promotwin.scenarios import load_scenario
    from promotwin.twin.run import write_outputs

    # every argument is checked before anything is simulated or written
    uplifts = None
    if uplift_file is not None:
        if policy != "static-forecast":
            raise ValueError("--uplift-file applies to --policy static-forecast only")
        uplifts = read_uplift_file(uplift_file)
    if ledger not in (None, "sku", "summary"):
        raise ValueError(f"--ledger must be sku or summary, not {ledger!r}")
    check_seed(seed)
    if days is not None and days < 1:
        raise ValueError("--days must be at least 1")
    check_out_dir(out, overwrite)
    s = load_scenario(scenario, max_memory=_max_memory(max_memory))
    check_days(days, s.horizon_days, s.name)
    if shards is not None or scheduler is not None:
        if model is not None or sensing or uplift_file is not None:
            raise ValueError("--shards runs without --model, --sensing or --uplift-file")
        _sharded(s, policy, out, overwrite, seed, days, shards, scheduler, forecast, ledger)
        return
    forecaster = None
    if policy == "hindsight":
        if forecast != "oracle" or model is not None or sensing:
            raise ValueError(
                "--policy hindsight knows the demand: drop --forecast/--model/--sensing"
            )
    else:
        make_policy(policy)  # an unknown policy is named before the scenario's history is read
        forecaster = make_forecaster(forecast, model, sensing)
    check_history(s)
    with exclusive(out):
        check_out_dir(out, overwrite)  # again, now that no other run can fill it meanwhile
        if forecaster is None:
            _hindsight(s, seed, days, out)
            return
        result = _simulate_with_progress(s, policy, seed, days, ledger, uplifts, forecaster)
        write_outputs(result, out)
    title = f"{result.scenario} — run {result.run_id}"
    console.print(kpi_table({policy: result.kpis}, title, s.currency))
    for note in result.forecast_notes:
        console.print(f"{result.forecaster}: {note}")
    console.print(f"wrote {out}/ (manifest.json, kpis.json, daily/ledger/decisions.parquet, chart)")


def _sharded(
    s: Scenario,
    policy: str,
    out: Path,
    overwrite: bool,
    seed: int,
    days: int | None,
    shards: int | None,
    scheduler: str | None,
    forecast: str,
    ledger: str | None,
) -> None:
    """``twin run --shards K``: one run split by SKU group (``experiments.shards``)."""
    from promotwin.experiments.shards import run_sharded, shard_specs

    if shards is None:
        raise ValueError("--scheduler applies with --shards K: add --shards")
    if policy == "hindsight" or forecast not in ("oracle", "plan"):
        raise ValueError("--shards runs a policy with --forecast oracle or plan")
    make_policy(policy)
    shard_specs(s, shards, seed)  # a split that cannot be made is named before any work
    with exclusive(out):
        check_out_dir(out, overwrite)
        with err.status(f"simulating {shards} shard(s)"):
            run = run_sharded(s, policy, out, shards, seed, days, scheduler, None, forecast, ledger)
    console.print(kpi_table({policy: run.kpis}, f"{s.name} — run {run.run_id}, {shards} shards"))
    console.print(f"wrote {out}/ (manifest.json, kpis.json, daily/ledger/decisions.parquet)")


def _hindsight(scenario: Scenario, seed: int, days: int | None, out: Path) -> None:
    """The perfect-information LP for the run's demand: its KPIs to --out (no forecast)."""
    import tempfile

    from promotwin.policies.hindsight import hindsight_bound
    from promotwin.twin.history import hindsight_inputs

    with err.status("solving the hindsight LP per SKU"):
        bound = hindsight_bound(hindsight_inputs(scenario, seed, days))
    manifest: dict[str, object] = {"scenario": scenario.name, "policy": "hindsight"}
    manifest |= {"scenario_hash": scenario.content_hash(), "forecaster": None, "seed": seed}
    # written beside --out and moved in place, like every run's outputs: never half a folder
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    (staging / "manifest.json").write_text(strict_json.dumps(manifest, indent=2) + "\n")
    (staging / "kpis.json").write_text(strict_json.dumps(bound.kpis(), indent=2) + "\n")
    if out.exists():
        import shutil

        shutil.rmtree(out)
    staging.rename(out)
    title = f"{scenario.name} — lower bound"
    console.print(kpi_table({"hindsight": bound.kpis()}, title, scenario.currency))
    console.print(f"wrote {out}/ (manifest.json, kpis.json)")


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="folder for the comparison")] = Path(
        "demo-output"
    ),
    seed: Annotated[int, typer.Option(help="random seed")] = 1,
) -> None:
    """The appliance promotion under order-point and base-stock: KPI comparison and a chart."""
    from promotwin.scenarios import load_scenario
    from promotwin.twin.charts import comparison_chart
    from promotwin.twin.run import write_outputs

    check_seed(seed)
    check_writable(out, "--out", "folder")
    scenario = load_scenario("appliance_promo")
    results = []
    with exclusive(out):
        for name in ("order-point", "base-stock"):
            result = _simulate_with_progress(scenario, name, seed, None, None)
            write_outputs(result, out / name)
            results.append(result)
        comparison_chart(results, out / "comparison.png")
        kpis = {r.policy: r.kpis for r in results}
        (out / "comparison.json").write_text(strict_json.dumps(kpis, indent=2))
    title = f"appliance_promo, seed {seed}"
    console.print(kpi_table({r.policy: r.kpis for r in results}, title, scenario.currency))
    console.print(f"wrote {out}/comparison.png, comparison.json and one folder per policy")


@scenarios_app.command("list")
@user_errors
def scenarios_list() -> None:
    """The built-in scenario library."""
    from promotwin.scenarios import library_names, load_scenario

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
    from promotwin.scenarios import load_scenario

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
    max_memory: MaxMemoryOpt = None,
) -> None:
    """Check a scenario file; list every problem (exit 2) or say it is valid (exit 0)."""
    from promotwin.demand.history import check_history
    from promotwin.scenarios import load_scenario
    from promotwin.scenarios.loading import resolve

    resolve(file)
    s = load_scenario(file, max_memory=_max_memory(max_memory))
    check_history(s)
    console.print(
        f"[green]valid[/]: {s.name} — {_n(len(s.stores), 'store')}, {_n(len(s.dcs), 'DC')}, "
        f"{_n(len(s.skus), 'SKU')}, {_n(len(s.promotions), 'promotion')}, "
        f"{_n(s.horizon_days, 'day')}"
    )


def _n(count: int, noun: str) -> str:
    """``1 promotion``, ``2 promotions``."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def main() -> None:  # pragma: no cover - console entry point
    app()


for group in (
    experiments,
    governance,
    shadow,
    intelligence,
    dashboard,
    history,
    post_event,
    serve,
):
    group.register(app)
if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
