"""The HTTP process API (FastAPI): promotion events and POS/stock events in, governed
replenishment actions out. ``create_app(config)`` builds it; ``twin serve`` runs it on uvicorn.

Contracts (see README): versioned paths under ``/v1``; an API key (``Authorization: Bearer``)
bound to a role on every path but ``/v1/health``; an ``Idempotency-Key`` on every POST (a retry
returns the first response and changes nothing); errors as RFC 9457 problem bodies naming every
invalid field; bodies above ``max_body_bytes`` refused before they are read; a token bucket per
key. The twin runs in a separate planning process, so a re-plan never stalls the ingest.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import promotwin
from promotwin import strict_json
from promotwin.scenarios.config_files import Problem
from promotwin.scenarios.network import compile_network
from promotwin.scenarios.schema import Scenario
from promotwin.service import db
from promotwin.service.models import Decision, PromotionEvent, SalesBatch, StockBatch
from promotwin.service.outbox import DELIVERY_KIND, Outbox
from promotwin.service.planning import Job, Settings, base_scenario, plan_promotion, unknown_ids
from promotwin.service.roles import ALLOWED, Action, approver_identity
from promotwin.workflow.identity import NotAllowedError
from promotwin.workflow.store import exceptions as exception_table
from promotwin.workflow.store import now

PROBLEM = "application/problem+json"
EXCEPTION_RUN = "serve-"  # run id prefix of the exceptions the service raises


@dataclass(frozen=True)
class ServeConfig:
    settings: Settings
    store: str
    max_body_bytes: int = 2_000_000
    rate_per_second: float = 50.0  # requests per key, sustained
    rate_burst: int = 100
    replan_lines: int = 20_000  # re-plan after this many new POS/stock lines (0: never)
    replan_seconds: float = 0.0  # and/or every this many seconds when events arrived (0: off)
    webhooks: tuple[str, ...] = ()
    webhook_secret: str = ""
    webhook_attempts: int = 20  # failed attempts before a message is abandoned (0: never)


class ProblemError(Exception):
    """A request refused with an RFC 9457 problem body."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: Sequence[Mapping[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, list(errors)
        self.headers = dict(headers or {})


TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    422: "Unprocessable Content",
    429: "Too Many Requests",
}


def problem(
    status: int,
    detail: str,
    instance: str,
    errors: Sequence[Mapping[str, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(body, status, headers=dict(headers or {}), media_type=PROBLEM)


def field_errors(problems: Sequence[Problem], prefix: str) -> list[dict[str, str]]:
    return [{"field": f"{prefix}.{p.where}", "message": p.message} for p in problems]


class BodyLimit:
    """Refuse bodies above ``limit`` bytes (413) by the Content-Length, or while reading."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise ProblemError(413, self._detail())
            return message

        await self.app(scope, counted, send)

    def _detail(self) -> str:
        return f"the body is above {self.limit:,} bytes: send smaller batches"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await problem(413, self._detail(), scope["path"])(scope, receive, send)


@dataclass
class Bucket:
    tokens: float
    at: float


@dataclass
class RateLimit:
    """A token bucket per key: ``rate`` requests a second, bursts of ``burst``."""

    rate: float
    burst: int
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def take(self, key_id: str) -> float:
        """0 if the request may go, else the seconds until it may."""
        t = time.monotonic()
        b = self.buckets.setdefault(key_id, Bucket(float(self.burst), t))
        b.tokens = min(float(self.burst), b.tokens + (t - b.at) * self.rate)
        b.at = t
        if b.tokens >= 1:
            b.tokens -= 1
            return 0.0
        return (1 - b.tokens) / self.rate


@dataclass
class Replans:
    """When to re-plan: after ``lines`` new event lines, or every ``seconds`` with new ones."""

    lines: int
    seconds: float
    pending: int = 0
    last: float = field(default_factory=time.monotonic)
    running: asyncio.Task[None] | None = None

    def due(self) -> bool:
        if self.pending <= 0 or (self.running is not None and not self.running.done()):
            return False
        by_count = self.lines > 0 and self.pending >= self.lines
        by_time = self.seconds > 0 and time.monotonic() - self.last >= self.seconds
        return by_count or by_time


@dataclass
class Service:
    config: ServeConfig
    store: db.ServiceStore
    scenario: Scenario
    locations: dict[str, str]  # id -> kind (store | dc)
    skus: frozenset[str]
    limiter: RateLimit
    replans: Replans
    outbox: Outbox
    pool: ProcessPoolExecutor | None = None

    async def plan(self, job: Job) -> dict[str, Any]:
        """The twin's plan, computed in the planning process (the event loop stays free)."""
        if self.pool is None:
            raise RuntimeError("the planning process is not running")
        return await asyncio.get_running_loop().run_in_executor(self.pool, plan_promotion, job)


def _warm(scenario: str) -> None:
    """Load the scenario and the twin once in the planning process, before the first event."""
    compile_network(base_scenario(scenario))


def make_service(config: ServeConfig) -> Service:
    scenario = base_scenario(config.settings.scenario)
    store = db.ServiceStore(config.store)
    locations = {d.id: "dc" for d in scenario.dcs} | {s.id: "store" for s in scenario.stores}
    return Service(
        config,
        store,
        scenario,
        locations,
        frozenset(s.id for s in scenario.skus),
        RateLimit(config.rate_per_second, config.rate_burst),
        Replans(config.replan_lines, config.replan_seconds),
        Outbox(store, config.webhooks, config.webhook_secret, max_attempts=config.webhook_attempts),
    )


# -- requests -------------------------------------------------------------------------------------


def _token(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key", "").strip()


def caller(action: Action) -> Callable[[Request], Awaitable[db.ApiKey]]:
    """A dependency: the request's key, allowed to do ``action`` (401, 403 or 429 otherwise)."""

    async def check(request: Request) -> db.ApiKey:
        svc: Service = request.app.state.service
        token = _token(request)
        key = await run_in_threadpool(svc.store.authenticate, token) if token else None
        if key is None:
            raise ProblemError(
                401,
                "a valid API key is needed: send it as `Authorization: Bearer KEY` "
                "(an admin creates one with `twin serve keys create`)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        wait = svc.limiter.take(key.id)
        if wait > 0:
            raise ProblemError(
                429,
                f"rate limit of {svc.limiter.rate:g} requests/s for this key: retry after "
                f"{wait:.2f} s",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        if key.role not in ALLOWED[action]:
            allowed = ", ".join(sorted(ALLOWED[action]))
            raise ProblemError(
                403, f"{key.name}'s key has the {key.role} role: this needs one of {allowed}"
            )
        return key

    return check


# module-level: the route signatures' annotations are resolved in this module's namespace
Reader = Annotated[db.ApiKey, Depends(caller("read"))]
Proposer = Annotated[db.ApiKey, Depends(caller("propose"))]
Ingester = Annotated[db.ApiKey, Depends(caller("ingest"))]
Decider = Annotated[db.ApiKey, Depends(caller("decide"))]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="unique per request; a retry with the same key returns the first response",
    ),
]


@dataclass(frozen=True)
class Posted:
    key: db.ApiKey
    idem: str
    hash: str


async def posted(request: Request, key: db.ApiKey, idem: str) -> Posted:
    body = await request.body()
    return Posted(key, idem, db.request_hash(request.method, request.url.path, body))


def _stored(status: int, body: str) -> Response:
    return Response(body, status, media_type="application/json", headers={"Idempotent-Replay": "1"})


def _commit(
    svc: Service,
    p: Posted,
    status: int,
    write: Callable[[Connection], dict[str, Any]],
) -> Response:
    """Run ``write`` and remember its response in one transaction, unless the key was seen."""
    with svc.store.begin() as conn:
        seen = svc.store.replay(conn, p.key.id, p.idem, p.hash)
        if seen is not None:
            return _stored(*seen)
        text = strict_json.dumps(write(conn), separators=(",", ":"))
        svc.store.remember(conn, p.key.id, p.idem, p.hash, status, text)
    return Response(text, status, media_type="application/json")


def _replayed(svc: Service, p: Posted) -> Response | None:
    with svc.store.engine.connect() as conn:
        seen = svc.store.replay(conn, p.key.id, p.idem, p.hash)
    return None if seen is None else _stored(*seen)


# -- events ---------------------------------------------------------------------------------------


def _item_problems(svc: Service, lines: Sequence[Any], check_channel: bool) -> list[dict[str, str]]:
    """Unknown SKU and location ids, dates outside the calendar, store channels at a DC."""
    s = svc.scenario
    out = []
    for i, line in enumerate(lines):
        where = f"body.lines.{i}"
        kind = svc.locations.get(line.location)
        if kind is None:
            message = f"unknown location {line.location!r}"
            out.append({"field": f"{where}.location", "message": message})
        elif check_channel and kind == "dc" and line.channel != "ecommerce":
            out.append(
                {"field": f"{where}.channel", "message": f"{line.location} is a DC: only ecommerce"}
            )
        if line.sku not in svc.skus:
            out.append({"field": f"{where}.sku", "message": f"unknown SKU {line.sku!r}"})
        if not s.start_date <= line.date <= s.end_date:
            out.append(
                {
                    "field": f"{where}.date",
                    "message": f"{line.date} is outside {s.start_date}..{s.end_date}",
                }
            )
    return out


def _ingest(svc: Service, p: Posted, table: Any, rows: list[dict[str, Any]], what: str) -> Response:
    def write(conn: Connection) -> dict[str, Any]:
        accepted = svc.store.insert_new(conn, table, rows)
        duplicates = len(rows) - accepted
        detail = f"{accepted} {what} lines accepted, {duplicates} duplicates"
        svc.store.audit(conn, what, p.key.name, detail, qty=accepted)
        return {"accepted": accepted, "duplicates": duplicates}

    response = _commit(svc, p, 200, write)
    if "Idempotent-Replay" not in response.headers:
        svc.replans.pending += json.loads(bytes(response.body))["accepted"]
    return response


# -- promotions -----------------------------------------------------------------------------------


def _published(conn: Connection) -> dict[str, dict[str, Any]]:
    rows = conn.execute(select(db.promotions.c.id, db.promotions.c.event)).all()
    return {r.id: json.loads(r.event) for r in rows}


def _version_problem(conn: Connection, event: PromotionEvent) -> ProblemError | None:
    row = conn.execute(
        select(db.promotions.c.version).where(db.promotions.c.id == event.id)
    ).first()
    if row is not None and row.version >= event.version:
        return ProblemError(
            409,
            f"promotion {event.id} is at version {row.version}: version {event.version} is not "
            "newer; publish a revision with a higher version",
        )
    return None


def _record_plan(
    svc: Service, conn: Connection, result: dict[str, Any], actor: str
) -> dict[str, Any]:
    """Recommendations, exceptions (routed lines, proposed by ``actor``) and outbox messages
    of a plan, in ``conn``'s transaction; returns ``result`` with the exception ids."""
    stamp = now()
    routed = [a for a in result["actions"] if a["decision"] == "routed"]
    ids = svc.store.workflow.create_exceptions(
        conn, [_exception_row(result, a, actor) for a in routed]
    )
    for a, exc_id in zip(routed, ids, strict=True):
        a["exception_id"] = exc_id
    rows = [
        {
            "created_at": stamp,
            "promotion_id": result["promotion"],
            "version": result["version"],
            "status": a["decision"],
            "exception_id": a.get("exception_id"),
            "action": strict_json.dumps(a, separators=(",", ":")),
        }
        for a in result["actions"]
    ]
    if rows:
        conn.execute(db.recommendations.insert(), rows)
    approved = [a for a in result["actions"] if a["decision"] == "auto_approved"]
    svc.outbox.enqueue(conn, "actions.approved", result["promotion"], approved)
    return result


def _exception_row(result: Mapping[str, Any], a: Mapping[str, Any], actor: str) -> dict[str, Any]:
    return {
        "run_id": f"{EXCEPTION_RUN}{result['run_id']}",
        "owner": a["owner"],
        "priority": PRIORITY_INDEX[a["priority"]],
        "created_day": a["day"],
        "expires_day": a["expires_day"],
        "policy": result["policy"],
        "kind": a["kind"],
        "origin": a["origin"],
        "destination": a["destination"],
        "sku": a["sku"],
        "qty": a["qty"],
        "unit_cost": a["unit_cost"],
        "confidence": a["confidence"],
        "value": a["value"],
        "value_at_risk": a["value_at_risk"],
        "rules": a["rules"],
        "reason": a["governance_reason"],
        "policy_reason": a["reason"],
        "snapshot_hash": result["run_id"],
        "proposed_by": actor,
    }


PRIORITY_INDEX = {"low": 0, "medium": 1, "high": 2}


async def _replan_all(svc: Service) -> None:
    """Re-plan every published promotion from the events stored so far."""
    svc.replans.pending, svc.replans.last = 0, time.monotonic()
    with svc.store.engine.connect() as conn:
        rows = conn.execute(select(db.promotions)).all()
        published = {r.id: json.loads(r.event) for r in rows}
        sales, stock = _events(conn)
    for r in rows:
        job = Job(svc.config.settings, r.id, r.version, published, sales, stock)
        result = await svc.plan(job)

        def write(conn: Connection, result: dict[str, Any] = result) -> None:
            _record_plan(svc, conn, result, "service")
            conn.execute(
                db.promotions.update()
                .where(db.promotions.c.id == result["promotion"])
                .values(result=strict_json.dumps(result))
            )
            svc.store.audit(
                conn,
                "replan",
                "service",
                f"{result['promotion']} v{result['version']} as of {result['as_of']}: "
                f"readiness {result['readiness']['score']:.1f}",
            )

        await run_in_threadpool(_in_transaction, svc, write)


def _in_transaction(svc: Service, write: Callable[[Connection], None]) -> None:
    with svc.store.begin() as conn:
        write(conn)


def _events(conn: Connection) -> tuple[list[tuple[str, str, str, str, int]], list[Any]]:
    from sqlalchemy import func

    s, k = db.sales, db.stock
    sales = conn.execute(
        select(s.c.date, s.c.location, s.c.sku, s.c.channel, func.sum(s.c.units))
        .group_by(s.c.date, s.c.location, s.c.sku, s.c.channel)
        .order_by(s.c.date, s.c.location, s.c.sku, s.c.channel)
    ).all()
    # the lowest position reported for a day: a sell-out during the day counts
    stock = conn.execute(
        select(k.c.date, k.c.location, k.c.sku, func.min(k.c.on_hand))
        .group_by(k.c.date, k.c.location, k.c.sku)
        .order_by(k.c.date, k.c.location, k.c.sku)
    ).all()
    return [(a, b, c, d, int(e)) for a, b, c, d, e in sales], [
        (a, b, c, int(d)) for a, b, c, d in stock
    ]


def _maybe_replan(svc: Service) -> None:
    if svc.replans.due():
        svc.replans.running = asyncio.create_task(_replan_all(svc))
        svc.replans.running.add_done_callback(_report_failure)


def _report_failure(task: asyncio.Task[None]) -> None:
    """A background re-plan that failed says so in the server's log (the events stay stored;
    the next trigger re-plans from them)."""
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        print(f"re-plan failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


# -- the app --------------------------------------------------------------------------------------


def create_app(config: ServeConfig) -> FastAPI:
    svc = make_service(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # spawn: a fork of a process with uvicorn's threads could inherit held locks
        svc.pool = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
        )
        # ready (health answers) once the planning process has loaded the twin and scenario
        await asyncio.get_running_loop().run_in_executor(svc.pool, _warm, config.settings.scenario)
        svc.outbox.start()
        ticker = asyncio.create_task(_schedule(svc)) if config.replan_seconds > 0 else None
        try:
            yield
        finally:
            if ticker is not None:
                ticker.cancel()
            svc.outbox.stop()
            svc.pool.shutdown(cancel_futures=True)
            svc.store.close()

    app = FastAPI(
        title="Promotwin process API",
        version=promotwin.__version__,
        description="Promotion and POS/inventory events in, governed replenishment actions out.",
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = svc
    _handlers(app)
    _routes(app, svc)
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    return app


async def _schedule(svc: Service) -> None:
    while True:
        await asyncio.sleep(min(svc.config.replan_seconds, 1.0))
        _maybe_replan(svc)


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        return problem(exc.status, exc.detail, request.url.path, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": ".".join(str(x) for x in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        detail = f"{len(errors)} invalid field(s): " + "; ".join(
            f"{e['field']}: {e['message']}" for e in errors[:5]
        )
        return problem(422, detail, request.url.path, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"no such path {request.url.path}: see /v1/docs"
        return problem(exc.status_code, detail, request.url.path)

    @app.exception_handler(db.IdempotencyConflict)
    async def _reused(request: Request, exc: db.IdempotencyConflict) -> Response:
        errors = [{"field": "header.Idempotency-Key", "message": str(exc)}]
        return problem(422, str(exc), request.url.path, errors)


def _routes(app: FastAPI, svc: Service) -> None:
    @app.get("/v1/health")
    async def health() -> dict[str, str]:
        """Up and serving (no key needed)."""
        return {"status": "ok", "scenario": svc.scenario.name, "version": promotwin.__version__}

    @app.post("/v1/promotions", status_code=201)
    async def post_promotion(
        event: PromotionEvent,
        request: Request,
        idempotency_key: IdempotencyKey,
        key: Proposer,
    ) -> Response:
        """Create or revise a promotion (by id + a higher version): readiness, projected
        stockouts by region/cluster/channel and the recommended actions, governed."""
        p = await posted(request, key, idempotency_key)
        seen = await run_in_threadpool(_replayed, svc, p)
        if seen is not None:
            return seen
        problems = unknown_ids(svc.scenario, event.promotion())
        if problems:
            errors = field_errors(problems, "body")
            raise ProblemError(422, "the promotion names what the network lacks", errors)

        def prepare() -> tuple[dict[str, dict[str, Any]], list[Any], list[Any]]:
            with svc.store.engine.connect() as conn:
                refused = _version_problem(conn, event)
                if refused is not None:
                    raise refused
                return _published(conn), *_events(conn)

        published, sales, stock = await run_in_threadpool(prepare)
        body = event.model_dump(mode="json", exclude={"version"})
        job = Job(svc.config.settings, event.id, event.version, {**published, event.id: body})
        job = Job(job.settings, job.promotion_id, job.version, job.promotions, sales, stock)
        result = await svc.plan(job)

        def write(conn: Connection) -> dict[str, Any]:
            refused = _version_problem(conn, event)  # a newer revision may have won meanwhile
            if refused is not None:
                raise refused
            table = db.promotions
            conn.execute(table.delete().where(table.c.id == event.id))
            _record_plan(svc, conn, result, key.name)
            conn.execute(
                table.insert().values(
                    id=event.id,
                    version=event.version,
                    event=strict_json.dumps(body),
                    proposed_by=key.name,
                    received_at=now(),
                    result=strict_json.dumps(result),
                )
            )
            svc.store.audit(
                conn,
                "promotion",
                key.name,
                f"{event.id} v{event.version}: readiness {result['readiness']['score']:.1f}, "
                f"{len(result['actions'])} actions",
            )
            return result

        return await run_in_threadpool(_commit, svc, p, 201, write)

    @app.get("/v1/promotions/{promotion_id}/readiness")
    async def get_readiness(promotion_id: str, key: Reader) -> dict[str, Any]:
        """The latest readiness of a published promotion."""

        def read() -> Any:
            with svc.store.engine.connect() as conn:
                return conn.execute(
                    select(db.promotions.c.result).where(db.promotions.c.id == promotion_id)
                ).first()

        row = await run_in_threadpool(read)
        if row is None:
            raise ProblemError(404, f"no promotion {promotion_id!r}: POST it to /v1/promotions")
        r = json.loads(row.result)
        keep = ("promotion", "version", "as_of", "readiness", "projected_stockouts", "sensing")
        return {k: r[k] for k in keep}

    async def ingest(p: Posted, lines: Sequence[Any], table: Any, what: str) -> Response:
        """Store a batch of event lines (all ids checked first), then maybe re-plan."""
        errors = _item_problems(svc, lines, check_channel=what == "sales")
        if errors:
            raise ProblemError(422, f"{len(errors)} line field(s) name unknown ids", errors)
        rows = [line.model_dump(mode="json") for line in lines]
        response = await run_in_threadpool(_ingest, svc, p, table, rows, what)
        _maybe_replan(svc)
        return response

    @app.post("/v1/events/sales")
    async def post_sales(
        batch: SalesBatch,
        request: Request,
        idempotency_key: IdempotencyKey,
        key: Ingester,
    ) -> Response:
        """A batch of POS lines (deduplicated by event id): stored, and fed to sensing."""
        p = await posted(request, key, idempotency_key)
        return await ingest(p, batch.lines, db.sales, "sales")

    @app.post("/v1/events/inventory")
    async def post_inventory(
        batch: StockBatch,
        request: Request,
        idempotency_key: IdempotencyKey,
        key: Ingester,
    ) -> Response:
        """A batch of stock positions (deduplicated by event id): the next plan starts there."""
        p = await posted(request, key, idempotency_key)
        return await ingest(p, batch.lines, db.stock, "inventory")

    @app.get("/v1/recommendations")
    async def get_recommendations(
        key: Reader,
        since: Annotated[int, Query(ge=0, description="the last seq you have (0: all)")] = 0,
        limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    ) -> dict[str, Any]:
        """Recommended actions after ``since`` in order; ``next`` is the cursor to pass on."""

        def read() -> list[Any]:
            r = db.recommendations
            with svc.store.engine.connect() as conn:
                return list(
                    conn.execute(
                        select(r).where(r.c.seq > since).order_by(r.c.seq).limit(limit)
                    ).mappings()
                )

        rows = await run_in_threadpool(read)
        items = [{**json.loads(r["action"]), **{k: r[k] for k in r if k != "action"}} for r in rows]
        return {"items": items, "next": rows[-1]["seq"] if rows else since}

    @app.get("/v1/exceptions")
    async def get_exceptions(
        key: Reader,
        status: Annotated[str, Query(description="open, approved, rejected, … or all")] = "open",
    ) -> dict[str, Any]:
        """The exceptions the service's plans raised (highest priority first)."""

        def read() -> list[dict[str, Any]]:
            e = exception_table
            q = select(e).where(e.c.run_id.startswith(EXCEPTION_RUN))
            if status != "all":
                q = q.where(e.c.status == status)
            q = q.order_by(e.c.priority.desc(), e.c.value_at_risk.desc(), e.c.id)
            with svc.store.engine.connect() as conn:
                return [dict(r) for r in conn.execute(q).mappings()]

        return {"items": await run_in_threadpool(read)}

    async def decide(
        exception_id: int,
        decision: Literal["approved", "rejected"],
        body: Decision,
        request: Request,
        idem: str,
        key: db.ApiKey,
    ) -> Response:
        p = await posted(request, key, idem)
        seen = await run_in_threadpool(_replayed, svc, p)
        if seen is not None:
            return seen
        identity = approver_identity(key)

        def write(conn: Connection) -> dict[str, Any]:
            row = conn.execute(
                select(exception_table).where(
                    (exception_table.c.id == exception_id)
                    & exception_table.c.run_id.startswith(EXCEPTION_RUN)
                )
            ).first()
            if row is None:
                raise ProblemError(404, f"no exception {exception_id}: see GET /v1/exceptions")
            if row.status != "open":
                raise ProblemError(
                    409, f"exception {exception_id} is already {row.status} by {row.decided_by}"
                )
            try:
                identity.check_decision(
                    decision == "approved",
                    row.owner,
                    float(row.value),
                    row.proposed_by,
                    exception_id,
                )
            except NotAllowedError as exc:
                raise ProblemError(403, str(exc)) from None
            done = svc.store.workflow.decide_many(
                conn,
                [(exception_id, decision, identity.name)],
                None,
                body.note,
                role=identity.role,
                signature=identity.signature(),
            )
            if row.kind == DELIVERY_KIND:  # an abandoned webhook message: send it again?
                if decision == "approved":
                    svc.outbox.redeliver(conn, int(row.destination))
                return {"exception": exception_id, "status": decision, "by": identity.name}
            action = _action_of(conn, done[0], decision)
            conn.execute(
                db.recommendations.insert().values(
                    created_at=now(),
                    promotion_id=action["promotion"],
                    version=action["version"],
                    status=decision,
                    exception_id=exception_id,
                    action=strict_json.dumps(action, separators=(",", ":")),
                )
            )
            if decision == "approved":
                svc.outbox.enqueue(conn, "actions.approved", action["promotion"], [action])
            return {"exception": exception_id, "status": decision, "by": identity.name}

        return await run_in_threadpool(_commit, svc, p, 200, write)

    @app.post("/v1/exceptions/{exception_id}/approve")
    async def approve(
        exception_id: int,
        request: Request,
        idempotency_key: IdempotencyKey,
        key: Decider,
        body: Decision | None = None,
    ) -> Response:
        """Approve an open exception: your queue, within your limit, not your own proposal."""
        return await decide(
            exception_id, "approved", body or Decision(), request, idempotency_key, key
        )

    @app.post("/v1/exceptions/{exception_id}/reject")
    async def reject(
        exception_id: int,
        request: Request,
        idempotency_key: IdempotencyKey,
        key: Decider,
        body: Decision | None = None,
    ) -> Response:
        """Reject an open exception of your queue: it is never executed."""
        return await decide(
            exception_id, "rejected", body or Decision(), request, idempotency_key, key
        )


def _action_of(conn: Connection, row: Mapping[str, Any], decision: str) -> dict[str, Any]:
    """The decided exception as an action of the promotion whose plan raised it."""
    r = db.recommendations
    raised = conn.execute(
        select(r.c.promotion_id, r.c.version).where(r.c.exception_id == row["id"]).limit(1)
    ).one()
    keys = ("kind", "origin", "destination", "sku", "qty", "unit_cost", "value", "owner")
    out = {k: row[k] for k in keys}
    out["promotion"], out["version"] = raised.promotion_id, raised.version
    out["decision"] = decision
    out["exception_id"] = int(row["id"])
    out["decided_by"] = row["decided_by"]
    return out
