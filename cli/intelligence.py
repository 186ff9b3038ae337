"""``twin fit``, ``twin forecast`` and ``twin readiness``: promotion intelligence commands."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

if TYPE_CHECKING:
    from promotwin.scenarios.schema import Promotion

# The library (numpy, pydantic, the twin) is imported inside the commands: typer builds every
# command at import, and ``twin --help`` should not pay for them.


def register(app: typer.Typer) -> None:
    """Add the commands to the ``twin`` app."""
    from promotwin.cli.common import console, user_errors

    @app.command()
    @user_errors
    def fit(
        history: Annotated[
            Path, typer.Argument(help="sales history CSV/Parquet (canonical format)")
        ],
        out: Annotated[Path, typer.Option("--out", help="fitted model file to write (JSON)")],
        model: Annotated[
            str, typer.Option("--model", help="glm (interpretable, calibrates the twin) or gbm")
        ] = "glm",
        scenario: Annotated[
            str | None,
            typer.Option(help="scenario whose SKU categories (and, for gbm, season) to use"),
        ] = None,
        weekly: Annotated[
            bool, typer.Option(help="rows are weekly and gaps are not zero sales")
        ] = False,
        date_format: Annotated[
            str | None,
            typer.Option(help="dates not in YYYY-MM-DD: their format, e.g. DD/MM/YYYY"),
        ] = None,
        seed: Annotated[int, typer.Option(help="random seed of the gbm model")] = 0,
    ) -> None:
        """Fit a forecast model to HISTORY: glm (uplift, elasticity, cannibalisation, dip with
        intervals) or gbm (gradient boosting with calibrated intervals)."""
        from promotwin.demand.models import KINDS

        if model not in KINDS:
            raise ValueError(f"--model {model!r} is not a model kind: use one of {list(KINDS)}")
        from promotwin.cli.outputs import check_writable, exclusive
        from promotwin.demand.fit import FitOptions, FittedModel
        from promotwin.demand.gbm import GbmModel, GbmOptions
        from promotwin.demand.glm_design import detect_period
        from promotwin.demand.history import read_history_file, validate_history, weekly_gaps
        from promotwin.demand.models import fit_model
        from promotwin.demand.replay import HistoryError

        check_writable(out, "--out", "file")
        frame = read_history_file(history)
        cats = None
        profile: tuple[tuple[str, float, int], ...] = ()
        if scenario is not None:
            from promotwin.demand.gbm import seasonal_profile
            from promotwin.scenarios import load_scenario

            sc = load_scenario(scenario)
            cats = {k.id: k.category for k in sc.skus}
            profile = seasonal_profile(sc.demand.seasonality)  # the planner's season, for gbm
        clean = validate_history(
            frame,
            skus=None if cats is None else list(cats),
            source=str(history),
            date_format=date_format,
        )
        period = detect_period(clean["date"])
        if period == 7 and not weekly:
            gaps = weekly_gaps(clean)
            if gaps:
                listed = "\n".join(f"  - {g}" for g in gaps)
                raise HistoryError(
                    f"{history}: weekly rows with missing weeks, which would be read as zero "
                    f"sales:\n{listed}\nadd --weekly to leave missing weeks out of the fit, "
                    "or list them with units 0 if nothing sold"
                )
        opts = (
            FitOptions(fill_zeros=not weekly)
            if model == "glm"
            else GbmOptions(fill_zeros=not weekly, seed=seed, seasonality=profile)
        )
        with exclusive(out):
            fitted = fit_model(clean, model, opts, cats, source=str(history))
            out.parent.mkdir(parents=True, exist_ok=True)
            fitted.save(out)
        title = f"{model} fitted on {history} ({fitted.history_start} .. {fitted.history_end})"
        if isinstance(fitted, FittedModel):
            table = Table(title=title)
            for col in ("parameter", "sku", "value", f"{fitted.ci_level:.0%} interval"):
                table.add_column(col)
            for r in fitted.summary().itertuples(index=False):
                table.add_row(
                    str(r.parameter), str(r.sku), f"{r.value:.3f}", f"[{r.low:.3f}, {r.high:.3f}]"
                )
            console.print(table)
            console.print(f"dispersion k = {fitted.dispersion:.2f}; wrote {out}")
        elif isinstance(fitted, GbmModel):
            console.print(title)
            console.print(
                f"{fitted.rounds} trees; NB k promoted {fitted.k_promoted:.2f}, other "
                f"{fitted.k_regular:.2f} (calibrated on the validation window); wrote {out}"
            )
        unit = "week" if period == 7 else "day"
        assumed = (
            f"missing {unit}s were left out of the fit (--weekly)"
            if weekly
            else f"a {unit} without a row for a location x SKU was read as zero sales, from "
            f"its first row on (before it, the SKU was not listed yet there: left out)"
        )
        console.print(f"assumed: {assumed}", highlight=False)

    @app.command()
    @user_errors
    def forecast(
        model: Annotated[
            Path, typer.Argument(help="fitted model file from `twin fit` (glm or gbm)")
        ],
        promotions: Annotated[
            Path | None,
            typer.Option(help="YAML with `promotions:` (the scenario schema's promotions)"),
        ] = None,
        start: Annotated[
            str | None, typer.Option(help="first forecast date (default: after the history)")
        ] = None,
        days: Annotated[int, typer.Option(help="forecast periods (days, or weeks)")] = 28,
        scenario: Annotated[
            str | None, typer.Option(help="scenario for stores' regions and clusters")
        ] = None,
        out: Annotated[Path | None, typer.Option(help="write the forecast CSV/Parquet")] = None,
    ) -> None:
        """Forecast mean and 5/50/95% quantiles per date x location x SKU x channel."""
        from promotwin.cli.outputs import check_writable
        from promotwin.demand.forecasting import calendar, store_info
        from promotwin.demand.forecasting import forecast as run_forecast
        from promotwin.demand.models import load_model

        if not 1 <= days <= MAX_FORECAST_PERIODS:
            raise ValueError(f"--days {days}: give 1 to {MAX_FORECAST_PERIODS} periods")
        if out is not None:
            check_writable(out, "--out", "file")
        if not model.exists():
            raise ValueError(f"{model}: model file not found; write one with `twin fit`")
        fitted = load_model(model)
        promos = _read_promotions(promotions) if promotions else []
        first = (
            _iso_date(start, "--start")
            if start
            else dt.date.fromisoformat(fitted.history_end) + dt.timedelta(days=fitted.period_days)
        )
        stores = None
        if scenario is not None:
            from promotwin.scenarios import load_scenario

            stores = store_info(load_scenario(scenario))
        rows = calendar(fitted, first, days, promos, stores)
        frame = run_forecast(fitted, rows)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            if out.suffix == ".parquet":
                frame.to_parquet(out, index=False)
            else:
                frame.to_csv(out, index=False)
        daily = frame.groupby("date")[["mean", "q05", "q95"]].sum()
        table = Table(title=f"forecast from {first}, {len(promos)} planned promotion(s)")
        for col in ("date", "mean units", "sum of q05", "sum of q95"):
            table.add_column(col, justify="right")
        for date, r in daily.head(14).iterrows():
            table.add_row(
                str(date)[:10], f"{r['mean']:,.0f}", f"{r['q05']:,.0f}", f"{r['q95']:,.0f}"
            )
        console.print(table)
        if out is not None:
            console.print(f"wrote {len(frame):,} rows to {out}")

    @app.command()
    @user_errors
    def readiness(
        scenario: Annotated[str, typer.Argument(help="built-in scenario name or a YAML file")],
        promotion: Annotated[str, typer.Option("--promotion", help="promotion id")],
        days_before: Annotated[
            int, typer.Option(help="assess this many days before launch (run the twin to then)")
        ] = 7,
        quantile: Annotated[float, typer.Option(help="demand quantile to be ready for")] = 0.8,
        seed: Annotated[int, typer.Option(help="random seed of the run up to assessment")] = 0,
        threshold: Annotated[
            float, typer.Option(help="below this score the promotion goes back to merchandising")
        ] = 80.0,
    ) -> None:
        """Readiness score 0-100 of a planned promotion, the reasons and measured mitigations."""
        from promotwin.cli.common import check_seed
        from promotwin.scenarios import load_scenario
        from promotwin.twin.outlook import before_launch, launch_readiness

        if not 0.5 <= quantile < 1:
            raise ValueError("--quantile must be in [0.5, 1)")
        if not 0 <= threshold <= 100:
            raise ValueError(f"--threshold {threshold}: a readiness score is 0 to 100")
        check_seed(seed)
        s = load_scenario(scenario)
        promo = next((p for p in s.promotions if p.id == promotion), None)
        if promo is None:
            known = ", ".join(p.id for p in s.promotions) or "none"
            raise ValueError(f"scenario {s.name} has no promotion {promotion!r}; known: {known}")
        launch = s.day_of(promo.start)
        if not 1 <= days_before <= launch:
            raise ValueError(
                f"--days-before {days_before}: {promotion} starts on day {launch} of "
                f"{s.name}, so give --days-before from 1 to {launch}"
                if launch >= 1
                else f"--days-before: {promotion} starts on the scenario's first day, "
                "so there is no day before launch to assess"
            )
        snap = before_launch(s, promotion, days_before, seed)
        report = launch_readiness(s, promotion, snap, quantile)
        colour = "green" if report.score >= threshold else "red"
        console.print(
            f"[bold]{promotion}[/] as of {snap.date} (day {snap.day}): readiness "
            f"[{colour}]{report.score:.0f}/100[/] at P{quantile * 100:.0f} "
            f"({report.short_units:,.0f} of {report.demand_units:,.0f} units at risk)"
        )
        for r in report.reasons[:10]:
            console.print(f"  - {r.text}", highlight=False)
        if len(report.reasons) > 10:
            console.print(f"  … and {len(report.reasons) - 10} more")
        if report.mitigations:
            table = Table(title="mitigations (each re-scored)")
            for col in ("action", "detail", "score after", "gain", "cost"):
                table.add_column(col)
            for m in report.mitigations:
                table.add_row(
                    m.action,
                    m.detail[:70],
                    f"{m.score_after:.0f}",
                    f"{m.gain:+.0f}",
                    f"{m.cost:,.0f}",
                )
            console.print(table)
        if report.score < threshold:
            console.print(
                f"below threshold {threshold:.0f}: route back to merchandising with the above"
            )


MAX_FORECAST_PERIODS = 3660


def _iso_date(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} {text!r}: write the date as YYYY-MM-DD") from None


def _read_promotions(path: Path) -> list[Promotion]:
    import yaml
    from pydantic import TypeAdapter, ValidationError

    from promotwin.scenarios.config_files import ConfigError, YamlLoader, read_text
    from promotwin.scenarios.schema import Promotion

    if not path.exists():
        raise ValueError(f"{path}: promotions file not found")
    try:
        raw = yaml.load(read_text(path, ConfigError, "promotions"), Loader=YamlLoader) or {}  # noqa: S506
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    items = raw.get("promotions", raw) if isinstance(raw, dict) else raw
    try:
        return TypeAdapter(list[Promotion]).validate_python(items)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:10]
        )
        raise ValueError(f"{path}: bad promotions ({problems})") from None
