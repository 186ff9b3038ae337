"""``twin shadow``: the twin's policies on live ERP data, compared with what the ERP did.

    twin shadow --erp tryton --url http://127.0.0.1:8000/DB --policy base-stock --once
    twin shadow runs | show RUN_ID | layout ... | counterfactual ... | map ... | export ... | schema

Credentials come from TWIN_ERP_USER / TWIN_ERP_PASSWORD or an INI file (``--credentials`` or
TWIN_ERP_CONFIG, section ``[erp]``), never from the command line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from promotwin import strict_json
from promotwin.cli import monitoring
from promotwin.policies.registry import POLICIES

DEFAULT_STORE = Path("shadow-runs.sqlite")

Erp = Annotated[str, typer.Option("--erp", help="tryton or folder")]
Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="tryton: http://host:port/DB (XML-RPC), jsonrpc+http://host:port/DB, "
        "trytond://DB?config=FILE (in-process); folder: the snapshot folder",
    ),
]
Store = Annotated[Path, typer.Option("--store", help="SQLite run store")]


if TYPE_CHECKING:
    from promotwin.shadow import RunStore


def _run_store(store: Path) -> RunStore:
    """The shadow run store, after checking the path can hold one (exit 2 with what to do)."""
    from promotwin.cli.outputs import check_store
    from promotwin.shadow import RunStore

    check_store(store)
    return RunStore(store)


CredFile = Annotated[
    Path | None,
    typer.Option("--credentials", help="INI file with an \\[erp] section: user, password"),
]
TimeLimit = Annotated[float, typer.Option("--time-limit", help="seconds per run, retries included")]


def _adapter(erp: str, url: str | None, credentials: Path | None, timeout: float) -> Any:
    from promotwin.shadow import SnapshotFolderAdapter, load_credentials

    if not url:
        raise ValueError("--url is required: the ERP's address or the snapshot folder")
    if erp == "folder":
        return SnapshotFolderAdapter(url)
    if erp == "tryton":
        try:
            import proteus  # noqa: F401

            from promotwin.shadow.tryton import TrytonAdapter
        except ImportError:
            raise ValueError(
                "the Tryton adapter needs the ERP extra: pip install 'promotwin[erp]'"
            ) from None
        return TrytonAdapter(url, load_credentials(credentials), timeout=timeout)
    raise ValueError(f"--erp {erp!r}: use tryton or folder")


@contextlib.contextmanager
def _erp_faults() -> Iterator[None]:
    """An ERP fault outside a shadow run (after the retries): what happened, exit 1."""
    from promotwin.shadow import ErpError

    try:
        yield
    except ErpError as exc:
        from promotwin.cli.common import err

        err.print(f"[red]ERP fault:[/] {type(exc).__name__}: {exc}", highlight=False)
        raise typer.Exit(1) from None


def _date(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date: write YYYY-MM-DD") from None


def _print_result(result: Any) -> None:
    from promotwin.cli.common import console

    run = result.run
    colour = {"ok": "green", "degraded": "magenta", "partial": "yellow", "failed": "red"}[
        run.status
    ]
    console.print(
        f"[{colour}]{run.status}[/] run {run.run_id} — {run.policy} on {run.source}, "
        f"as of {run.as_of or '–'}: {run.n_recommendations} recommendation(s), "
        f"{run.attempts} attempt(s), {run.seconds:.1f} s",
        highlight=False,
    )
    if run.reason:
        console.print(f"  reason: {run.reason}", highlight=False)
    for against, (summary, _) in result.comparisons.items():
        console.print(
            f"  vs ERP ({against}): agreement {summary['agreement_rate']:.0%}, "
            f"both ordered {summary['both']}, policy only {summary['policy_only']}, "
            f"ERP only {summary['erp_only']}, units {summary['policy_units']:.0f} vs "
            f"{summary['erp_units']:.0f}",
            highlight=False,
        )
    if len(result.drafts):
        console.print(f"  wrote {len(result.drafts)} draft purchase line(s) (never confirmed)")


def _run(
    erp: str,
    url: str | None,
    policy: str,
    as_of: str | None,
    once: bool,
    every: str | None,
    store: Path,
    write_drafts: bool,
    credentials: Path | None,
    time_limit: float,
    add_new: bool,
    max_runs: int | None,
    allow_degraded: bool,
    forecast: str = "average",
    model: Path | None = None,
    history_days: int = 28,
    governance: str = "default",
    approvals: str | None = None,
) -> None:
    from promotwin.cli.monitoring import monitoring_inputs
    from promotwin.shadow import RetryPolicy, ShadowRunner, SnapshotOptions
    from promotwin.shadow.forecast import FORECASTS
    from promotwin.shadow.monitoring import Monitor
    from promotwin.shadow.runner import parse_every

    if forecast not in FORECASTS:
        raise ValueError(f"--forecast {forecast!r}: use one of {', '.join(FORECASTS)}")
    if model is not None and forecast == "average":
        raise ValueError("--model goes with --forecast glm or gbm (the model's kind)")
    if history_days < 1:
        raise ValueError("--history-days must be at least 1")

    if once and every:
        raise ValueError("give --once or --every, not both")
    if every and as_of:
        raise ValueError("--as-of is for a single run; --every always reads the ERP as of today")
    period = parse_every(every) if every else None
    config, approval_store = monitoring_inputs(governance, approvals)
    adapter = _adapter(erp, url, credentials, timeout=min(30.0, time_limit))
    run_store = _run_store(store)
    runner = ShadowRunner(
        adapter,
        run_store,
        policy,
        retry=RetryPolicy(time_limit=time_limit),
        write_drafts=write_drafts,
        add_new=add_new,
        allow_degraded=allow_degraded,
        history_days=history_days,
        options=SnapshotOptions(forecast=forecast, model_file=str(model) if model else None),
        monitor=Monitor(run_store, config, approval_store).record,
    )
    try:
        if period is None:
            result = runner.run_once(_date(as_of))
            _print_result(result)
            if result.run.status == "failed":
                raise typer.Exit(1)
            if result.run.status == "degraded" and not allow_degraded:
                from promotwin.cli.common import console

                console.print(
                    "  exit 3: the run is degraded (its recommendations are not meaningful); "
                    "fix the reasons above or pass --allow-degraded"
                )
                raise typer.Exit(3)
        else:
            runner.run_every(period, max_runs=max_runs, on_run=_print_result)
    finally:
        adapter.close()


def register(app: typer.Typer) -> None:
    """Add the ``shadow`` command group to the ``twin`` app."""
    from promotwin.cli.common import console, user_errors

    shadow = typer.Typer(
        help="Shadow mode: run a policy on live ERP data and compare with what the ERP did.",
        invoke_without_command=True,
    )
    logging.getLogger("shadow").addHandler(logging.NullHandler())

    @shadow.callback()
    @user_errors
    def shadow_main(
        ctx: typer.Context,
        erp: Erp = "tryton",
        url: Url = None,
        policy: Annotated[str, typer.Option(help=f"one of: {', '.join(POLICIES)}")] = "base-stock",
        as_of: Annotated[str | None, typer.Option("--as-of", help="YYYY-MM-DD")] = None,
        once: Annotated[bool, typer.Option("--once", help="one run, then exit")] = False,
        every: Annotated[str | None, typer.Option("--every", help="e.g. 1d, 6h, 15m")] = None,
        store: Store = DEFAULT_STORE,
        write_drafts: Annotated[
            bool, typer.Option("--write-drafts", help="create DRAFT purchases for approved lines")
        ] = False,
        credentials: CredFile = None,
        time_limit: TimeLimit = 120.0,
        add_new: Annotated[
            bool, typer.Option("--add-new", help="map ERP items missing from the id mapping")
        ] = False,
        max_runs: Annotated[int | None, typer.Option(help="stop --every after N runs")] = None,
        allow_degraded: Annotated[
            bool,
            typer.Option("--allow-degraded", help="exit 0, not 3, when the run is degraded"),
        ] = False,
        forecast: Annotated[
            str,
            typer.Option(help="average (trailing sales), or a model fitted on the ERP: glm, gbm"),
        ] = "average",
        model: Annotated[
            Path | None,
            typer.Option(help="model file: loaded if it exists, else fitted and saved there"),
        ] = None,
        history_days: Annotated[
            int, typer.Option(help="days of ERP sales read (the average's window, the fit's)")
        ] = 28,
        governance: monitoring.GovernanceOpt = "default",
        approvals: monitoring.ApprovalsOpt = None,
    ) -> None:
        """Pull a snapshot, run the policy and governance, store and compare (default: once)."""
        if ctx.invoked_subcommand is not None:
            return
        if url is None:
            console.print(ctx.get_help())
            raise typer.Exit(0)
        _run(
            erp,
            url,
            policy,
            as_of,
            once,
            every,
            store,
            write_drafts,
            credentials,
            time_limit,
            add_new,
            max_runs,
            allow_degraded,
            forecast,
            model,
            history_days,
            governance,
            approvals,
        )

    monitoring.register(shadow)

    @shadow.command("runs")
    @user_errors
    def runs(store: Store = DEFAULT_STORE) -> None:
        """List recorded shadow runs."""
        frame = _run_store(store).runs()
        table = Table(title=f"shadow runs in {store}")
        for col in (
            "run_id",
            "status",
            "policy",
            "as_of",
            "n_recommendations",
            "attempts",
            "seconds",
            "reason",
        ):
            table.add_column(col)
        for r in frame.itertuples(False):
            table.add_row(
                str(r.run_id),
                str(r.status),
                str(r.policy),
                str(r.as_of),
                str(r.n_recommendations),
                str(r.attempts),
                f"{r.seconds:.1f}",
                str(r.reason or "")[:60],
            )
        console.print(table)

    @shadow.command("show")
    @user_errors
    def show(
        run_id: Annotated[str, typer.Argument(help="a run id from `twin shadow runs`")],
        store: Store = DEFAULT_STORE,
        out: Annotated[Path | None, typer.Option(help="write recommendations CSV here")] = None,
    ) -> None:
        """A run's recommendations and its comparisons with the ERP."""
        rs = _run_store(store)
        run = rs.run(run_id)
        if run is None:
            raise ValueError(f"no run {run_id!r} in {store}: see `twin shadow runs`")
        console.print(strict_json.dumps(run.__dict__, indent=2, default=str), highlight=False)
        planned_with = rs.model(run_id)
        if planned_with is not None and planned_with[1]:
            console.print(f"forecast: {planned_with[0]} model {planned_with[1]}", highlight=False)
        for w in rs.warnings(run_id).itertuples(False):
            mark = "degrading" if w.degrading else "warning"
            console.print(f"{mark} [{w.code}]: {w.message}", highlight=False, markup=False)
        recs = rs.recommendations(run_id)
        console.print(f"{len(recs)} recommendation(s)")
        if len(recs):
            console.print(recs.drop(columns=["run_id"]).head(50).to_string(index=False))
        for against in rs.comparisons(run_id):
            found = rs.comparison(run_id, against)
            assert found is not None
            summary, lines = found
            console.print(
                f"vs ERP ({against}): agreement {summary['agreement_rate']:.0%}, both ordered "
                f"{summary['both']}, policy only {summary['policy_only']}, ERP only "
                f"{summary['erp_only']}, units {summary['policy_units']:.0f} vs "
                f"{summary['erp_units']:.0f}",
                highlight=False,
            )
            if len(lines):
                console.print(lines.head(50).to_string(index=False))
        if out is not None:
            recs.to_csv(out, index=False)
            console.print(f"wrote {out}")

    @shadow.command("counterfactual")
    @user_errors
    def counterfactual_cmd(
        start: Annotated[str, typer.Option("--start", help="first day, YYYY-MM-DD")],
        end: Annotated[str, typer.Option("--end", help="last day, YYYY-MM-DD")],
        erp: Erp = "tryton",
        url: Url = None,
        policy: Annotated[str, typer.Option(help=f"one of: {', '.join(POLICIES)}")] = "base-stock",
        store: Store = DEFAULT_STORE,
        credentials: CredFile = None,
        seed: int = 0,
        time_limit: TimeLimit = 120.0,
    ) -> None:
        """Replay START..END in the twin: the ERP's actual actions vs the policy, same demand."""
        from promotwin.shadow import ErpState, build_snapshot
        from promotwin.shadow.counterfactual import counterfactual
        from promotwin.shadow.layout import rechannel
        from promotwin.shadow.runner import apply_kept_layout, read_erp
        from promotwin.shadow.snapshot import sales_history

        first, last = _date(start), _date(end)
        assert first is not None and last is not None
        if last < first:
            raise ValueError(f"--end {last} is before --start {first}")
        adapter = _adapter(erp, url, credentials, timeout=min(30.0, time_limit))
        rs = _run_store(store)
        try:
            mapping = rs.load_mapping(adapter.name)
            with _erp_faults():
                raw = read_erp(lambda: adapter.read_state(first - dt.timedelta(days=1)), time_limit)
                actions = read_erp(lambda: adapter.read_actions(first, last), time_limit)
                sales = read_erp(lambda: adapter.read_sales(first, last), time_limit)
            state = apply_kept_layout(rs, raw)[0]
            built = build_snapshot(state, mapping)
            rs.save_mapping(adapter.name, mapping)
            # the replayed sales' channels follow the kept roles, like the snapshot's
            sales = rechannel(sales, raw["locations"], state["locations"])
            history = sales_history(ErpState.build(last, adapter.name, sales=sales), mapping)
            cats = dict(
                zip(state["products"]["erp_id"], state["products"]["category"], strict=True)
            )
            categories = {mapping.twin_id("product", e) or "": c for e, c in cats.items()}
            result = counterfactual(built, actions, history, policy, categories, seed=seed)
        finally:
            adapter.close()
        console.print(f"counterfactual {first}..{last}: ERP actual vs {policy} (same demand)")
        console.print(result.table().to_string(index=False, float_format="{:,.2f}".format))
        for note in result.notes:
            console.print(f"note: {note}")

    @shadow.command("map")
    @user_errors
    def map_cmd(
        erp: Erp = "tryton",
        url: Url = None,
        store: Store = DEFAULT_STORE,
        credentials: CredFile = None,
        export: Annotated[Path | None, typer.Option(help="write the mapping CSV here")] = None,
        load: Annotated[Path | None, typer.Option("--import", help="replace from a CSV")] = None,
        add_new: Annotated[bool, typer.Option("--add-new", help="map new ERP items")] = False,
        time_limit: TimeLimit = 120.0,
    ) -> None:
        """Show, initialise, extend, export or import the ERP-id <-> twin-id mapping."""
        import pandas as pd

        from promotwin.shadow import IdMapping
        from promotwin.shadow.runner import read_erp

        adapter = _adapter(erp, url, credentials, timeout=min(30.0, time_limit))
        try:
            rs = _run_store(store)
            if load is not None:
                mapping = IdMapping.from_frame(pd.read_csv(load, dtype=str))
                rs.save_mapping(adapter.name, mapping, replace=True)
            mapping = rs.load_mapping(adapter.name)
            with _erp_faults():
                state = read_erp(lambda: adapter.read_state(None), time_limit)
            issues = mapping.resolve(state.tables, add_new)
            rs.save_mapping(adapter.name, mapping, replace=True)
        finally:
            adapter.close()
        frame = mapping.to_frame()
        for kind, n in frame.groupby("kind").size().items():
            console.print(f"{kind}: {n} mapped")
        for issue in issues:
            console.print(f"[yellow]{issue}[/]", highlight=False)
        if export is not None:
            frame.to_csv(export, index=False)
            console.print(f"wrote {export}")

    @shadow.command("layout")
    @user_errors
    def layout_cmd(
        erp: Erp = "tryton",
        url: Url = None,
        store: Store = DEFAULT_STORE,
        credentials: CredFile = None,
        export: Annotated[Path | None, typer.Option(help="write the layout CSV here")] = None,
        load: Annotated[
            Path | None, typer.Option("--import", help="replace the kept layout from a CSV")
        ] = None,
        time_limit: TimeLimit = 120.0,
    ) -> None:
        """Location roles: one row per ERP warehouse (erp_code, role, serving_dc, supplied_by).

        Without a kept layout, prints the one proposed from the ERP's structure with reasons;
        --import replaces the kept layout (checked first), --export writes it as CSV."""
        import pandas as pd

        from promotwin.shadow import layout as roles

        imported = None
        if load is not None:
            try:
                raw = pd.read_csv(load, dtype=str, keep_default_na=False)
            except (OSError, ValueError) as exc:
                raise ValueError(f"--import {load}: cannot read the CSV ({exc})") from None
            imported = roles.validate(raw, where=str(load))
        from promotwin.shadow.runner import read_erp

        adapter = _adapter(erp, url, credentials, timeout=min(30.0, time_limit))
        try:
            rs = _run_store(store)
            with _erp_faults():
                state = read_erp(lambda: adapter.read_state(None), time_limit)
        finally:
            adapter.close()
        proposed = roles.to_layout(state["locations"])
        if imported is not None and load is not None:
            unknown = sorted(set(imported["erp_code"]) - set(proposed["erp_code"]))
            if unknown:
                raise ValueError(
                    f"--import {load}: erp_code(s) {unknown} are not warehouses of the ERP "
                    f"(it has {sorted(proposed['erp_code'])})"
                )
            imported["reason"] = f"imported from {load.name}"
            rs.save_layout(adapter.name, imported)
        kept = rs.load_layout(adapter.name)
        shown = kept if kept is not None else proposed
        title = "layout kept in the run store" if kept is not None else "proposed layout"
        table = Table(title=f"{title} ({adapter.name})")
        for col in ("erp_code", "role", "serving_dc", "supplied_by", "reason"):
            table.add_column(col)
        for r in shown[["erp_code", "role", "serving_dc", "supplied_by", "reason"]].itertuples(
            False
        ):
            cells = [str(v) for v in r]
            table.add_row(cells[0], cells[1] or "[red]?[/]", *cells[2:])
        console.print(table)
        for r in shown[shown["role"] == ""].itertuples(False):
            console.print(
                f"[yellow]ambiguous warehouse {r.erp_code}: left out of every run until given a "
                "role (edit the exported CSV, then --import it)[/]",
                highlight=False,
            )
        if kept is None:
            console.print("not kept yet: the first shadow run keeps it, or --import one")
        if export is not None:
            shown[[*roles.COLUMNS, "reason"]].to_csv(export, index=False)
            console.print(f"wrote {export}")

    @shadow.command("export")
    @user_errors
    def export_cmd(
        out: Annotated[Path, typer.Option("--out", help="snapshot folder to write")],
        erp: Erp = "tryton",
        url: Url = None,
        as_of: Annotated[str | None, typer.Option("--as-of", help="YYYY-MM-DD")] = None,
        credentials: CredFile = None,
        fmt: Annotated[str, typer.Option("--format", help="csv or parquet")] = "csv",
        time_limit: TimeLimit = 120.0,
    ) -> None:
        """Write the ERP's canonical tables as a snapshot folder (for `--erp folder`)."""
        from promotwin.shadow import write_folder
        from promotwin.shadow.runner import read_erp

        if fmt not in ("csv", "parquet"):
            raise ValueError(f"--format {fmt!r}: use csv or parquet")
        day = _date(as_of)
        adapter = _adapter(erp, url, credentials, timeout=min(30.0, time_limit))
        try:
            with _erp_faults():
                state = read_erp(lambda: adapter.read_state(day), time_limit)
                actions = read_erp(
                    lambda: adapter.read_actions(state.as_of, state.as_of), time_limit
                )
        finally:
            adapter.close()
        write_folder(state, out, actions, fmt)
        console.print(f"wrote {out}/ (manifest.json, schema.json, one {fmt} per table)")

    @shadow.command("schema")
    def schema_cmd() -> None:
        """Print the snapshot folder's JSON Schema."""
        from promotwin.shadow.erpdata import json_schema

        console.print_json(strict_json.dumps(json_schema()))

    app.add_typer(shadow, name="shadow")
