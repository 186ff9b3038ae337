"""``twin serve``: the HTTP process API on uvicorn, its API keys and the promotion event's JSON
Schema. FastAPI and uvicorn are imported inside the commands (``twin --help`` stays cheap)."""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from promotwin import strict_json
from promotwin.policies.registry import POLICIES

if TYPE_CHECKING:
    from promotwin.service.config import ServeFile

DEFAULT_SECRET_ENV = "TWIN_WEBHOOK_SECRET"  # the default of webhooks.secret_env in serve.yaml
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


def serve(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="serve.yaml with any of these settings (options win)"),
    ] = None,
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
        typer.Option(help=f"POST approved actions here (repeat), signed: ${DEFAULT_SECRET_ENV}"),
    ] = None,
    webhook_attempts: Annotated[
        int, typer.Option(help="abandon a delivery after this many failures (0: never)")
    ] = 20,
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
    from promotwin.service.config import OPTIONS, load

    # typer carries its own copy of click, so the source is compared by name
    given = {
        name: ctx.params[name]
        for name in OPTIONS
        if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"
    }
    settings = load(config, given)
    secret = _checked(settings, config)
    _run(settings, secret)


def _checked(settings: ServeFile, config: Path | None) -> str:
    """Everything checked before the server starts; returns the webhook signing secret."""
    from promotwin.cli.outputs import check_store
    from promotwin.demand.forecaster import make_forecaster
    from promotwin.policies.registry import make_policy
    from promotwin.scenarios import load_scenario
    from promotwin.workflow.config import load_config

    if settings.scenario is None:
        where = f" (or `scenario:` in {config})" if config else ""
        raise ValueError(f"give --scenario NAME|FILE{where}: the network the service plans for")
    hooks = settings.webhooks
    secret = os.environ.get(hooks.secret_env, "")
    if hooks.urls and not secret:
        raise ValueError(f"--webhook needs a signing secret: set {hooks.secret_env}")
    s = load_scenario(settings.scenario)
    make_policy(settings.policy)
    make_forecaster(settings.forecast, settings.model, sensing=True)
    load_config(settings.governance, s)
    check_store(settings.store)
    return secret


def _run(settings: ServeFile, secret: str) -> None:
    import uvicorn

    from promotwin.cli.common import err
    from promotwin.service.app import ServeConfig, create_app
    from promotwin.service.planning import Settings

    s = settings
    planning = Settings(s.scenario or "", s.policy, s.seed, s.forecast, s.model, s.governance)
    config = ServeConfig(
        planning,
        s.store,
        max_body_bytes=s.limits.max_body_bytes,
        rate_per_second=s.limits.rate_per_second,
        rate_burst=s.rate_burst,
        replan_lines=s.thresholds.replan_lines,
        replan_seconds=s.thresholds.replan_seconds,
        webhooks=tuple(s.webhooks.urls),
        webhook_secret=secret,
        webhook_attempts=s.webhooks.max_attempts,
    )
    app = create_app(config)
    where = f"http://{s.host}:{s.port}/v1"
    err.print(f"serving {s.scenario} on {where} (docs: /v1/docs, store {s.store})")
    uvicorn.run(app, host=s.host, port=s.port, log_level="warning", access_log=False)


def keys_create(
    name: Annotated[str, typer.Option(help="the key's principal, as in the audit trail")],
    role: Annotated[str, typer.Option(help=f"one of: {', '.join(KEY_ROLES)}")],
    limit: Annotated[
        list[str] | None,
        typer.Option(
            help="approval limit QUEUE=VALUE (approvers; repeat); integration=0 lets the key "
            "re-send or drop abandoned webhook deliveries"
        ),
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from promotwin.cli.common import console
    from promotwin.cli.outputs import check_store
    from promotwin.service.db import ServiceStore

    if role not in KEY_ROLES:
        raise ValueError(f"--role must be one of {', '.join(KEY_ROLES)}, not {role!r}")
    if not name.strip() or len(name) > 64 or name != name.strip():
        raise ValueError(f"--name {name!r}: 1 to 64 characters, no spaces around it")
    limits = _key_limits(limit or [])
    if limits and role not in ("approver", "admin"):
        raise ValueError(f"a {role} key approves nothing: give no --limit")
    check_store(store)
    key, token = ServiceStore(store).create_key(name, role, limits, f"cli:{getpass.getuser()}")
    console.print(f"key {key.id} for {name} ({role}); shown only now, keep it secret:")
    console.print(token, highlight=False, soft_wrap=True)


def _key_limits(given: list[str]) -> dict[str, float]:
    """The approval store's queues, and the service's own: abandoned webhook deliveries."""
    from promotwin.cli.governance import _limits
    from promotwin.service.outbox import QUEUE

    ours = [x for x in given if x.partition("=")[0] == QUEUE]
    limits = _limits([x for x in given if x not in ours])
    for item in ours:  # a delivery carries no money: the limit only grants the queue
        value = item.partition("=")[2]
        if not value.replace(".", "", 1).isdigit():
            raise ValueError(f"--limit {item!r}: write {QUEUE}=VALUE with a number, e.g. {QUEUE}=0")
        limits[QUEUE] = float(value)
    return limits


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
