"""``twin history``: a pre-season sales history for a scenario, to fit forecasters on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from promotwin.cli.common import console, user_errors
from promotwin.policies.registry import POLICIES


def register(app: typer.Typer) -> None:
    """Add the command to the ``twin`` app."""

    @app.command()
    @user_errors
    def history(
        scenario: Annotated[str, typer.Argument(help="built-in scenario name or a YAML file")],
        out: Annotated[Path, typer.Option("--out", help="history file to write (.csv/.parquet)")],
        weeks: Annotated[int, typer.Option(help="weeks of history before the season")] = 52,
        policy: Annotated[
            str, typer.Option(help=f"policy that ran those weeks: {', '.join(POLICIES)}")
        ] = "base-stock",
        seed: Annotated[int, typer.Option(help="random seed (same seed, same history)")] = 0,
        overwrite: Annotated[bool, typer.Option(help="replace an existing --out file")] = False,
    ) -> None:
        """Simulate earlier seasons (earlier promotions) under a policy; write their SALES
        (censored by stock, with stockout flags and price/promotion columns) to --out."""
        from promotwin.policies.registry import make_policy
        from promotwin.scenarios import load_scenario
        from promotwin.twin.history import sales_history

        if weeks < 1:
            raise ValueError("--weeks must be at least 1")
        if out.suffix not in (".csv", ".parquet"):
            raise ValueError(f"--out {out}: name a .csv or .parquet file")
        if out.exists() and not overwrite:
            raise FileExistsError(f"{out} exists: choose another --out or add --overwrite")
        pol = make_policy(policy)
        frame = sales_history(load_scenario(scenario), weeks, pol, seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".parquet":
            frame.to_parquet(out, index=False)
        else:
            frame.to_csv(out, index=False, date_format="%Y-%m-%d")
        promoted = frame["promo"] > 0
        console.print(
            f"wrote {out}: {len(frame):,} rows, {frame['date'].min():%Y-%m-%d} .. "
            f"{frame['date'].max():%Y-%m-%d}; {promoted.mean():.0%} promoted, "
            f"{frame.loc[promoted, 'stockout'].mean():.0%} of promoted rows stocked out"
        )
