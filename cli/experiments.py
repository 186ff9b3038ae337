"""``twin compare``: run a policy comparison experiment and write its results and report."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd

    from promotwin.experiments.spec import Experiment

EXIT_INTERRUPTED = 130


def register(app: typer.Typer) -> None:
    """Add ``compare`` to the ``twin`` command (called once from ``cli.main``)."""
    # Imported here, not at the top: main imports this module at its end, and under
    # ``python -m cli.main`` the two would otherwise import each other half-built.
    from promotwin.cli.common import user_errors

    app.command("compare")(user_errors(compare))


def _check_out(out: Path) -> None:
    from promotwin.cli.outputs import check_writable

    check_writable(out, "--out", "folder")
    if out.exists() and any(out.iterdir()) and not (out / "runs").is_dir():
        raise FileExistsError(
            f"{out} is not empty and holds no experiment to resume: choose another --out"
        )


def compare(
    spec: Annotated[str, typer.Argument(help="experiment spec YAML, or a built-in spec name")],
    out: Annotated[Path, typer.Option("--out", help="folder for results; rerun to resume")],
    workers: Annotated[
        int | None,
        typer.Option(
            help="local Dask worker processes (1 = in this process); default: one per core"
        ),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="run on this Dask cluster instead: tcp://HOST:PORT")
    ] = None,
    report: Annotated[bool, typer.Option(help="write report.html and charts")] = True,
) -> None:
    """Compare policies over scenarios, variations and replications with common random numbers.

    Writes DIR/results.parquet (one row per scenario x variation x policy x replication x KPI),
    DIR/manifest.json (every run's id and seed), DIR/statistics.csv and DIR/report.html.
    """
    from promotwin.cli.outputs import exclusive
    from promotwin.experiments.spec import load_spec

    if workers is not None and scheduler is not None:
        raise ValueError("give --workers or --scheduler, not both")
    if workers is not None and workers < 1:
        raise ValueError("--workers must be at least 1")
    _check_out(out)
    experiment = load_spec(spec)  # every problem listed, exit 2, before anything is written
    with exclusive(out):  # one writer per experiment folder: a second one exits 2 at once
        _check_out(out)
        _run_and_report(experiment, out, workers, scheduler, report)


def _run_and_report(
    experiment: Experiment, out: Path, workers: int | None, scheduler: str | None, report: bool
) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from promotwin.cli.common import console, err
    from promotwin.experiments.report import summary_sentences, write_report
    from promotwin.experiments.runner import ExperimentError, plan_tasks, run_experiment
    from promotwin.experiments.stats import compare as compare_stats
    from promotwin.experiments.stats import precision_warnings

    n_runs = len({t.key for t in plan_tasks(experiment)})
    where = scheduler or (
        "this process" if workers == 1 else f"{workers or 'one per core'} workers"
    )
    console.print(
        f"[bold]{experiment.spec.name}[/]: {n_runs} runs "
        f"({len(experiment.cells)} scenario×variation × {len(experiment.policies)} policies × "
        f"{experiment.spec.replications} replications) on {where}"
    )
    with Progress(
        TextColumn("[bold]runs"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("runs", total=n_runs)
        try:
            result = run_experiment(
                experiment,
                out,
                workers=workers,
                scheduler=scheduler,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except KeyboardInterrupt:
            bar.stop()
            err.print(
                f"interrupted: finished runs are saved in {out / 'runs'}; "
                "rerun the same command to resume"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except ExperimentError as exc:
            bar.stop()
            err.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from None
    console.print(
        f"{result.computed} runs simulated, {result.reused} reused from an earlier call, "
        f"{result.wall_s:.1f} s"
    )
    st = experiment.spec.statistics
    table = compare_stats(
        result.results,
        experiment.baseline,
        list(experiment.spec.kpis),
        st.confidence,
        st.precision,
        st.bootstrap,
        st.bootstrap_seed,
    )
    for sentence in summary_sentences(table, experiment):
        console.print(f"• {sentence}", highlight=False)
    console.print(_table(table, experiment.spec.kpis, st.confidence))
    warnings = precision_warnings(table, st.precision, list(experiment.spec.kpis))
    if warnings:
        n = len(warnings)
        shown = min(n, 5)
        head = f"{n} precision warning" + ("" if n == 1 else "s")
        more = f", the first {shown} below; all in report.html" if n > shown else ""
        console.print(f"[yellow]{head}[/]{more}:")
        for w in warnings[:shown]:
            console.print(f"  {w}", highlight=False)
    written = "results.parquet, manifest.json"
    if report:
        write_report(experiment, result.results, out)
        written += ", statistics.csv, report.html, charts"
    console.print(f"wrote {out}/ ({written})")


def _table(table: pd.DataFrame, kpis: tuple[str, ...], confidence: float) -> Table:
    from promotwin.experiments.kpis import info
    from promotwin.experiments.report import fmt_value

    out = Table(title=f"paired differences against the baseline ({confidence:.0%} CI)")
    for col in ("scenario / variation", "KPI", "policy", "baseline", "policy mean", "change"):
        text = col in ("scenario / variation", "KPI", "policy")
        out.add_column(col, justify="left" if text else "right", no_wrap=col == "change")
    order = {k: i for i, k in enumerate(kpis)}
    table = table.assign(_o=table["kpi"].map(order)).sort_values(
        ["scenario", "variation", "_o", "policy"], kind="stable"
    )
    for row in table.to_dict("records"):
        kpi = str(row["kpi"])
        if info(kpi).kind == "rate":
            lo, hi = 100 * row["ci_low"], 100 * row["ci_high"]
            change = f"{100 * row['mean_diff']:+.1f} pts [{lo:+.1f}, {hi:+.1f}]"
        elif not math.isnan(row["relative"]):
            lo, hi = row["rel_ci_low"], row["rel_ci_high"]
            change = f"{row['relative']:+.1%} [{lo:+.1%}, {hi:+.1%}]"
        else:
            change = f"{row['mean_diff']:+,.0f} [{row['ci_low']:+,.0f}, {row['ci_high']:+,.0f}]"
        cell = str(row["scenario"])
        if row["variation"] != "base":
            cell += f" / {row['variation']}"
        out.add_row(
            cell,
            info(kpi).label,
            str(row["policy"]),
            fmt_value(kpi, row["mean_baseline"]),
            fmt_value(kpi, row["mean_policy"]),
            change,
        )
    return out
