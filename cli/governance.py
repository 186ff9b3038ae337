"""``twin governance``, ``twin exceptions`` and ``twin audit``: governed runs, the exception
queues and the audit trail, against a store (a SQLite file or a SQLAlchemy URL).

``register(app)`` wires the commands in; ``cli.main`` (console, ``user_errors``) is
imported lazily, because main imports this module at its end (also when run as ``__main__``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, cast

import typer
from rich.console import Console
from rich.table import Table

from promotwin.policies.registry import POLICIES, make_policy
from promotwin.workflow.roles import ENV_PASSWORD, ENV_USER, ENV_USERS, ROLES, Role

if TYPE_CHECKING:
    from promotwin.workflow.identity import Identity
    from promotwin.workflow.store import Store

# The workflow (pydantic, SQLAlchemy) and the twin are imported inside the commands, so
# ``twin --help`` does not load them; that is why ``--status`` and ``--owner`` do not list their
# values (the error for a wrong one does).

StoreOpt = Annotated[str, typer.Option("--store", help="SQLite file or SQLAlchemy URL")]
UsersOpt = Annotated[
    str | None,
    typer.Option("--users", help=f"users file (default: ${ENV_USERS})"),
]
UserOpt = Annotated[
    str | None,
    typer.Option("--user", help=f"who signs in (default: ${ENV_USER}); password: ${ENV_PASSWORD}"),
]


def _console() -> Console:
    from promotwin.cli.common import console

    return console


def _secret(what: str, env: str, confirm: bool = False) -> str:
    """From the environment, else asked for without echo; never an argument (argv is logged)."""
    from promotwin.workflow.identity import IdentityError

    value = os.environ.get(env, "")
    if value:
        return value
    if not sys.stdin.isatty():
        raise IdentityError(f"no {what}: set {env}, or run in a terminal to be asked for it")
    return str(typer.prompt(what.capitalize(), hide_input=True, confirmation_prompt=confirm))


def sign_in(users: str | None, user: str | None, at_least: Role) -> Identity:
    """The signed-in user, who must hold ``at_least`` that role (exit 2 otherwise)."""
    from promotwin.workflow.identity import IdentityError, NotAllowedError, load_users, users_path

    found = load_users(users_path(users))
    name = user or os.environ.get(ENV_USER, "")
    if not name:
        if not sys.stdin.isatty():
            raise IdentityError(f"who are you? give --user NAME or set {ENV_USER}")
        name = str(typer.prompt("User"))
    identity = found.sign_in(name, _secret("password", ENV_PASSWORD))
    if not identity.at_least(at_least):
        raise NotAllowedError(
            f"{identity.name}'s role is {identity.role}: this needs {at_least} or above"
        )
    return identity


def _existing(store: str) -> Store:
    """Open a store that must already exist (never create one by accident)."""
    from promotwin.cli.outputs import check_store
    from promotwin.workflow.store import Store

    check_store(store, create=False)
    return Store(store, create=False)


def governance_validate(
    config: Annotated[str, typer.Argument(help="governance YAML file or a built-in name")],
    scenario: Annotated[
        str | None, typer.Option(help="also check ids against this scenario")
    ] = None,
) -> None:
    """Check a governance config; list every problem (exit 2) or say it is valid."""
    from promotwin.scenarios import load_scenario
    from promotwin.workflow.config import load_config

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
    users: UsersOpt = None,
    user: UserOpt = None,
) -> None:
    """Simulate SCENARIO with governance and simulated planners; decisions go to --store.
    With a users file (--users or $TWIN_USERS) the run is signed by a planner, who then cannot
    approve its exceptions."""
    from promotwin.cli.common import check_days, check_seed, kpi_table
    from promotwin.cli.outputs import check_out_dir, check_store
    from promotwin.scenarios import load_scenario
    from promotwin.twin import simulate
    from promotwin.twin.run import write_outputs
    from promotwin.workflow import GovernedWorkflow
    from promotwin.workflow.config import load_config
    from promotwin.workflow.kpis import KPI_NAMES
    from promotwin.workflow.store import Store, to_url

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
    proposer = sign_in(users, user, "planner").name if users or os.environ.get(ENV_USERS) else ""

    workflow = GovernedWorkflow(config, Store(store), proposed_by=proposer)
    result = simulate(s, pol, seed=seed, days=days, governance=workflow)
    if out is not None:
        write_outputs(result, out)
    title = f"{result.scenario} — run {result.run_id}"
    table = kpi_table({policy: result.kpis}, title, s.currency)
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
    status: Annotated[
        str, typer.Option(help="open, a decided status (approved, rejected, …) or all")
    ] = "open",
    owner: Annotated[
        str | None, typer.Option(help="only this owner's queue (e.g. supply_chain)")
    ] = None,
    run: Annotated[str | None, typer.Option(help="only this run id")] = None,
    limit: Annotated[int, typer.Option(help="show at most this many")] = 50,
) -> None:
    """Exceptions by priority (value at risk), highest first."""
    from promotwin.workflow.config import OWNERS
    from promotwin.workflow.rules import PRIORITIES
    from promotwin.workflow.store import STATUSES

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
        _console().print(_why_none(_existing(store), status, owner, run, store))


def _why_none(opened: Store, status: str, owner: str | None, run: str | None, store: str) -> str:
    """Why the list is empty: in a governed twin run the simulated planners decide every
    exception, so none stays open; say so, with the counts and how to list them."""
    if status != "open":
        return "no exceptions match"
    decided = opened.list_exceptions(None, owner, run, None)
    if not decided:
        return "no exceptions match"
    counts: dict[str, int] = {}
    for r in decided:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    n = len(decided)
    parts = ", ".join(f"{c:,} {k}" for k, c in sorted(counts.items()))
    return (
        f"no open exceptions: all {n:,} exception{'' if n == 1 else 's'} here "
        f"{'was' if n == 1 else 'were'} already decided ({parts}) — in a governed twin run "
        "the simulated planners decide them. "
        f"See them with `twin exceptions list --store {store} --status all`."
    )


def _decide(
    store: str, exception_id: int, approve: bool, users: str | None, user: str | None, note: str
) -> None:
    opened = _existing(store)
    opened.get(exception_id)  # an unknown id is said before anyone types a password
    identity = sign_in(users, user, "approver")
    decision: Literal["approved", "rejected"] = "approved" if approve else "rejected"
    row = opened.decide(exception_id, decision, identity, note)
    _console().print(
        f"exception {row['id']} {decision} by {identity.name} {identity.signature()}: "
        f"{row['kind']} {row['qty']:,} x {row['sku']} {row['origin']}→{row['destination']}"
    )


def exceptions_approve(
    exception_id: Annotated[int, typer.Argument(help="exception id (see list)")],
    store: StoreOpt,
    users: UsersOpt = None,
    user: UserOpt = None,
    note: Annotated[str, typer.Option(help="why, for the audit trail")] = "",
) -> None:
    """Approve an open exception (signed in as an approver of its queue, within your limit,
    not its proposer); it is executed at the next review. Exit 2 if refused or already decided."""
    _decide(store, exception_id, True, users, user, note)


def exceptions_reject(
    exception_id: Annotated[int, typer.Argument(help="exception id (see list)")],
    store: StoreOpt,
    users: UsersOpt = None,
    user: UserOpt = None,
    note: Annotated[str, typer.Option(help="why, for the audit trail")] = "",
) -> None:
    """Reject an open exception (signed in as an approver of its queue); it is never executed.
    Exit 2 if refused or already decided."""
    _decide(store, exception_id, False, users, user, note)


def _limits(given: list[str]) -> dict[str, float]:
    """``QUEUE=VALUE`` pairs as a dict; ``ValueError`` naming --limit for anything else."""
    from promotwin.workflow.config import OWNERS

    limits: dict[str, float] = {}
    for item in given:
        queue, sep, value = item.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = float("nan")
        if not sep or queue not in OWNERS or not 0 <= amount < float("inf"):
            raise ValueError(
                f"--limit {item!r}: write QUEUE=VALUE with a queue of {', '.join(OWNERS)} "
                "and a value in currency, e.g. --limit supply_chain=50000"
            )
        limits[queue] = amount
    return limits


def _admin_if_any(users: str | None, user: str | None) -> None:
    """Once the file has an admin, only an admin changes it."""
    from promotwin.workflow.identity import load_users, users_path

    if load_users(users_path(users), missing_ok=True).admins():
        sign_in(users, user, "admin")


def users_add(
    name: Annotated[str, typer.Argument(help="user name, as it appears in the audit trail")],
    role: Annotated[str, typer.Option(help=f"one of: {', '.join(ROLES)}")],
    limit: Annotated[
        list[str] | None, typer.Option(help="approval limit QUEUE=VALUE (approvers; repeat)")
    ] = None,
    users: UsersOpt = None,
    user: UserOpt = None,
) -> None:
    """Add (or replace) a user; the password comes from $TWIN_NEW_PASSWORD or is asked twice.
    Once the file has an admin, sign in as one (--user / $TWIN_USER, $TWIN_PASSWORD)."""
    from promotwin.workflow.identity import load_users, users_path

    if role not in ROLES:
        raise ValueError(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    if not name.strip() or len(name) > 64 or name != name.strip():
        raise ValueError(f"user name {name!r}: 1 to 64 characters, no spaces around it")
    limits = _limits(limit or [])
    path = users_path(users)
    _admin_if_any(users, user)
    password = _secret("new password", "TWIN_NEW_PASSWORD", confirm=True)
    updated = load_users(path, missing_ok=True).with_user(name, cast(Role, role), password, limits)
    updated.save()
    _console().print(f"{name} ({role}) saved in {path}")


def users_remove(
    name: Annotated[str, typer.Argument(help="user name")],
    users: UsersOpt = None,
    user: UserOpt = None,
) -> None:
    """Remove a user (signed in as an admin once the file has one)."""
    from promotwin.workflow.identity import load_users, users_path

    path = users_path(users)
    _admin_if_any(users, user)
    load_users(path).without_user(name).save()
    _console().print(f"{name} removed from {path}")


def users_list(users: UsersOpt = None) -> None:
    """Users, roles and approval limits (never the password hashes)."""
    from promotwin.workflow.identity import load_users, users_path

    found = load_users(users_path(users))
    table = Table(title=f"users in {found.path}")
    for col in ("user", "role", "approval limits"):
        table.add_column(col)
    for name, entry in sorted(found.file.users.items()):
        limits = ", ".join(f"{q} {v:,.0f}" for q, v in entry.limits.items()) or "-"
        table.add_row(name, entry.role, limits)
    _console().print(table)
    if found.file.trusted_header:
        _console().print(f"the dashboard trusts the proxy header {found.file.trusted_header}")


def audit_verify(
    store: StoreOpt,
    manifest: Annotated[
        list[Path] | None,
        typer.Option(help="also check the head a governed run recorded (its --out folder)"),
    ] = None,
    anchor: Annotated[
        str, typer.Option(help="the store's anchor file, if not the default (see README)")
    ] = "",
) -> None:
    """Check the hash chain, the head and every anchor of it (anchor file, run manifests); exit
    1 naming the first bad or missing record if anything was tampered with."""
    from promotwin.cli.outputs import check_store
    from promotwin.workflow.audit_anchor import manifest_anchor
    from promotwin.workflow.store import Store

    check_store(store, create=False)
    anchors = [manifest_anchor(m) for m in manifest or []]
    if anchor and not Path(anchor).is_file():
        raise ValueError(f"--anchor {anchor}: no such file (an anchor file is written by runs)")
    result = Store(store, create=False, anchor=anchor).verify(anchors)
    for note in result.notes:
        _console().print(f"[yellow]note[/]: {note}")
    if result.ok:
        _console().print(
            f"[green]audit trail intact[/]: {result.checked:,} records, "
            f"checked against {result.anchors:,} anchors"
        )
        return
    where = f" at record {result.first_bad}" if result.first_bad is not None else ""
    _console().print(f"[red]audit trail broken[/]{where}: {result.problem}")
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the governance, exceptions and audit command groups to ``app``."""
    from promotwin.cli.common import user_errors

    groups: dict[str, tuple[str, dict[str, Callable[..., None]]]] = {
        "governance": (
            "Validate governance configs; run the twin governed.",
            {"validate": governance_validate, "run": governance_run},
        ),
        "exceptions": (
            "The exception queues: list, approve, reject.",
            {"list": exceptions_list, "approve": exceptions_approve, "reject": exceptions_reject},
        ),
        "audit": ("The tamper-evident audit trail.", {"verify": audit_verify}),
        "users": (
            "Who may approve: users, roles and approval limits.",
            {"add": users_add, "list": users_list, "remove": users_remove},
        ),
    }
    for name, (text, commands) in groups.items():
        group = typer.Typer(help=text, no_args_is_help=True)
        for command, func in commands.items():
            group.command(command)(user_errors(func))
        app.add_typer(group, name=name)
