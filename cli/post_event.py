"""``twin post-event``: look back at one promotion of a twin run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from promotwin.cli.common import console, err, user_errors
from promotwin.cli.outputs import check_out_dir, exclusive
from promotwin.policies.registry import POLICIES

LEVELS = ("cluster", "region")


def register(app: typer.Typer) -> None:
    """Add the command to the ``twin`` app."""

    @app.command("post-event")
    @user_errors
    def post_event(
        source: Annotated[
            Path,
            typer.Argument(help="a `twin run --out` folder or a `twin compare --out` folder"),
        ],
        promotion: Annotated[str, typer.Option("--promotion", help="promotion id to analyse")],
        out: Annotated[Path, typer.Option("--out", help="folder for report.html and tables")],
        baseline: Annotated[
            str | None,
            typer.Option(
                help="the counterfactual on the same demand: a policy for a run folder "
                f"({', '.join(POLICIES)}; default order-point), an arm for an experiment "
                "(default its baseline)"
            ),
        ] = None,
        arm: Annotated[
            str | None,
            typer.Option(
                help="experiment folder: the arm to analyse (default: the first "
                "that is not the baseline)"
            ),
        ] = None,
        replication: Annotated[
            int, typer.Option(help="experiment folder: the replication (seed) to analyse")
        ] = 0,
        by: Annotated[str, typer.Option(help="group stores by cluster or region")] = "cluster",
        readiness_days: Annotated[
            int, typer.Option(help="days before launch to score readiness at (0: skip)")
        ] = 7,
        overwrite: Annotated[bool, typer.Option(help="replace a non-empty --out")] = False,
    ) -> None:
        """Planned vs realised uplift with intervals, forecast error by day, service and
        margin against the baseline policy on the same demand, spill-overs, planner
        productivity and readiness: a self-contained report.html in --out."""
        from typing import cast

        from promotwin.experiments.post_event import Level, analyse
        from promotwin.experiments.post_event_report import write_post_event
        from promotwin.experiments.post_event_sources import check_source

        # every argument is checked before anything is simulated or written
        if by not in LEVELS:
            raise ValueError(f"--by {by!r}: give cluster or region")
        if readiness_days < 0:
            raise ValueError("--readiness-days must be 0 (skip) or more")
        check_source(source, promotion, baseline, arm, replication)
        check_out_dir(out, overwrite)
        with exclusive(out), err.status(f"analysing {promotion} (and re-running the baseline)"):
            pe = analyse(
                source, promotion, baseline, cast(Level, by), readiness_days, arm, replication, out
            )
            path = write_post_event(pe, out, by)
        s, b = pe.service, pe.baseline_service
        console.print(
            f"[bold]{promotion}[/] {pe.window[0]} to {pe.window[1]}: fill rate "
            f"{s['fill_rate']:.1%}, {s['lost_units']:,.0f} units lost; {pe.baseline_policy} on "
            f"the same demand {b['fill_rate']:.1%}, {b['lost_units']:,.0f} lost"
        )
        console.print(f"wrote {path} (and CSV tables, PNG charts)")
