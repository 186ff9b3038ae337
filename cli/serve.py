"""``twin serve``: the HTTP process API on uvicorn, its API keys and the promotion event's JSON
Schema. FastAPI and uvicorn are imported inside the commands (``twin --help`` stays cheap)."""

from __future__ import annotations

import getpass
import json
import os
from typing import Annotated

import typer

from promotwin import strict_json
from promotwin.policies.registry import POLICIES

ENV_WEBHOOK_SECRET = "TWIN_WEBHOOK_SECRET"  # never an argument: argv is logged
KEY_ROLES = ("integrator", "viewer", "planner", "approver", "admin")
StoreOpt = Annotated[
    str, typer.Option("--store", help="SQLite file or SQLAlchemy URL (the service's state)")
]
DEFAULT_STORE = "twin.sqlite"

serve_app = typer.Typer(
    help="The HTTP process API: promotion and POS/inventory events in, governed actions out.",
    invoke_without_command=True,
)
keys_app = typer.Typer(help="API keys: create (printed once), list, revoke.", no_args_is_help=True)
serve_app.add_typer(keys_app, name="keys")


def _check_url(url: str) -> None:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"--webhook {url!r}: give an http:// or https:// URL")


def serve(
    ctx: typer.Context,
    scenario: Annotated[
        str | None, typer.Option(help="built-in scenario name or a YAML file (its network)")
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    host: Annotated[str, typer.Option(help="address to listen on (loopback unless set)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port")] = 8080,
    policy: Annotated[str, typer.Option(help=f"one of: {', '.join(POLICIES)}")] = "base-stock",
    seed: Annotated[int, typer.Option(help="random seed of the twin's runs")] = 0,
    forecast: Annotated[
        str, typer.Option(help="forecaster under in-season sensing: plan, oracle, glm, gbm")
    ] = "plan",
    model: Annotated[str | None, typer.Option(help="fitted model for glm/gbm")] = None,
    governance: Annotated[str, typer.Option(help="governance YAML file or built-in")] = "default",
    webhook: Annotated[
        list[str] | None,
        typer.Option(help=f"POST approved actions here (repeat), signed: ${ENV_WEBHOOK_SECRET}"),
    ] = None,
    rate_limit: Annotated[float, typer.Option(help="requests per second per key")] = 50.0,
    replan_lines: Annotated[
        int, typer.Option(help="re-plan after this many new event lines (0: never)")
    ] = 20_000,
    replan_seconds: Annotated[
        float, typer.Option(help="re-plan this often when events arrived (0: off)")
    ] = 0.0,
    max_body: Annotated[int, typer.Option(help="largest request body, bytes")] = 2_000_000,
) -> None:
    """Serve SCENARIO's network over HTTP (docs at /v1/docs)."""
    if ctx.invoked_subcommand is not None:
        return
    from promotwin.cli.common import check_seed
    from promotwin.cli.outputs import check_store
    from promotwin.demand.forecaster import make_forecaster
    from promotwin.policies.registry import make_policy
    from promotwin.scenarios import load_scenario
    from promotwin.workflow.config import load_config

    # everything is checked before the server starts
    if scenario is None:
        raise ValueError("give --scenario NAME|FILE: the network the service plans for")
    if not 0 < port < 65536:
        raise ValueError(f"--port {port}: give a port from 1 to 65535")
    check_seed(seed)
    for name, value in (("--rate-limit", rate_limit), ("--replan-seconds", replan_seconds)):
        if not 0 <= value < float("inf"):
            raise ValueError(f"{name} {value}: give a number of at least 0")
    if replan_lines < 0 or max_body < 1:
        raise ValueError("--replan-lines must be at least 0 and --max-body at least 1")
    urls = tuple(webhook or ())
    for url in urls:
        _check_url(url)
    secret = os.environ.get(ENV_WEBHOOK_SECRET, "")
    if urls and not secret:
        raise ValueError(f"--webhook needs a signing secret: set {ENV_WEBHOOK_SECRET}")
    s = load_scenario(scenario)
    make_policy(policy)
    make_forecaster(forecast, model, sensing=True)
    load_config(governance, s)
    check_store(store)
    _run(
        scenario, store, host, port, policy, seed, forecast, model, governance, urls, secret,
        rate_limit, replan_lines, replan_seconds, max_body,
    )  # fmt: skip


def _run(
    scenario: str,
    store: str,
    host: str,
    port: int,
    policy: str,
    seed: int,
    forecast: str,
    model: str | None,
    governance: str,
    urls: tuple[str, ...],
    secret: str,
    rate_limit: float,
    replan_lines: int,
    replan_seconds: float,
    max_body: int,
) -> None:
    import uvicorn

    from promotwin.cli.common import err
    from promotwin.service.app import ServeConfig, create_app
    from promotwin.service.planning import Settings

    settings = Settings(scenario, policy, seed, forecast, model, governance)
    config = ServeConfig(
        settings,
        store,
        max_body_bytes=max_body,
        rate_per_second=rate_limit,
        rate_burst=max(1, int(2 * rate_limit)),
        replan_lines=replan_lines,
        replan_seconds=replan_seconds,
        webhooks=urls,
        webhook_secret=secret,
    )
    app = create_app(config)
    err.print(f"serving {scenario} on http://{host}:{port}/v1 (docs: /v1/docs, store {store})")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def keys_create(
    name: Annotated[str, typer.Option(help="the key's principal, as in the audit trail")],
    role: Annotated[str, typer.Option(help=f"one of: {', '.join(KEY_ROLES)}")],
    limit: Annotated[
        list[str] | None, typer.Option(help="approval limit QUEUE=VALUE (approvers; repeat)")
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from promotwin.cli.common import console
    from promotwin.cli.governance import _limits
    from promotwin.cli.outputs import check_store
    from promotwin.service.db import ServiceStore

    if role not in KEY_ROLES:
        raise ValueError(f"--role must be one of {', '.join(KEY_ROLES)}, not {role!r}")
    if not name.strip() or len(name) > 64 or name != name.strip():
        raise ValueError(f"--name {name!r}: 1 to 64 characters, no spaces around it")
    limits = _limits(limit or [])
    if limits and role not in ("approver", "admin"):
        raise ValueError(f"a {role} key approves nothing: give no --limit")
    check_store(store)
    key, token = ServiceStore(store).create_key(name, role, limits, f"cli:{getpass.getuser()}")
    console.print(f"key {key.id} for {name} ({role}); shown only now, keep it secret:")
    console.print(token, highlight=False, soft_wrap=True)


def keys_list(store: StoreOpt = DEFAULT_STORE) -> None:
    """Keys with their principal, role, limits and state (never a secret)."""
    from rich.table import Table

    from promotwin.cli.common import console
    from promotwin.cli.outputs import check_store
    from promotwin.service.db import ServiceStore

    check_store(store, create=False)
    table = Table(title=f"API keys in {store}")
    for col in ("key", "name", "role", "limits", "created", "revoked"):
        table.add_column(col)
    for k in ServiceStore(store, create=False).list_keys():
        limits = ", ".join(f"{q} {v:,.0f}" for q, v in json.loads(k["limits"]).items()) or "-"
        table.add_row(k["id"], k["name"], k["role"], limits, k["created_at"], k["revoked_at"] or "")
    console.print(table)


def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (see list)")],
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    from promotwin.cli.common import console
    from promotwin.cli.outputs import check_store
    from promotwin.service.db import ServiceStore

    check_store(store, create=False)
    ServiceStore(store, create=False).revoke_key(key_id, f"cli:{getpass.getuser()}")
    console.print(f"key {key_id} revoked")


def schema() -> None:
    """Print the promotion event's JSON Schema (a scenario's promotion entry plus `version`)."""
    from promotwin.service.models import promotion_schema

    typer.echo(strict_json.dumps(promotion_schema(), indent=2))


def register(app: typer.Typer) -> None:
    from promotwin.cli.common import user_errors

    serve_app.callback()(user_errors(serve))
    keys_app.command("create")(user_errors(keys_create))
    keys_app.command("list")(user_errors(keys_list))
    keys_app.command("revoke")(user_errors(keys_revoke))
    serve_app.command("schema")(user_errors(schema))
    app.add_typer(serve_app, name="serve")
