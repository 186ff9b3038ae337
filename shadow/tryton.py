"""Tryton 8.2 adapter: reads the ERP through proteus (in-process or XML-RPC) or JSON-RPC.

URLs (credentials never go in the URL; they come from ``Credentials``):

- ``http://127.0.0.1:8000/DBNAME`` — XML-RPC through proteus, with a login session;
- ``jsonrpc+http://127.0.0.1:8000/DBNAME`` — the same server over JSON-RPC (stdlib client);
- ``trytond://DBNAME?config=/etc/trytond.conf`` — in-process (``proteus.config.set_trytond``),
  for a database on this machine; no password (the process already has database access).

Every read is a plain ``search_read``/``read`` in chunks; nothing is written unless
``create_draft`` is called, and that only creates draft ``purchase.purchase`` documents.
Tryton is imported lazily: the core imports without it.

Tryton conventions read: the roles of warehouses are proposed from their structure
(``shadow.layout``: provisioning locations, purchase order points, customer sales) and a
layout kept in the run store overrides them. Goods between warehouses are in transit while an
internal shipment's moves out of Tryton's transit location are open. Lanes come from
``stock.location.lead_time`` (warehouse to warehouse). Sales are done moves to customer
locations (a warehouse with none: its confirmed sale lines by sale date); from a DC they are
ecommerce, else walk-in. Committed units are open customer moves. Quantities are read in
each product's default unit (``internal_quantity``); purchase lines are assumed to be in it too.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import dataclasses
import datetime as dt
import gzip
import http.client
import json
import math
import socket
import threading
import urllib.parse
import xmlrpc.client
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from decimal import Decimal
from typing import Any, cast

import numpy as np
import pandas as pd

from promotwin import strict_json
from promotwin.shadow.adapter import (
    Credentials,
    DraftOrder,
    ErpDataError,
    ErpError,
    ErpLoginRefused,
    ErpTimeout,
    ErpUnavailable,
)
from promotwin.shadow.erpdata import ErpActions, ErpState
from promotwin.shadow.layout import Facts, propose

READ_CHUNK = 200  # ids per stock read (≈ 3x faster than one call at 2,000 products)
ROW_CHUNK = 2000  # rows per search_read page
OPEN_MOVE_STATES = ["draft", "assigned", "staging"]


def redact(url: str) -> str:
    """The URL without any user/password part (what logs and the run store see)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, ""))


RPC_SCHEMES = ("http", "https", "jsonrpc+http", "jsonrpc+https")


def check_url(url: str, database: str | None = None) -> None:
    """A configuration error in the URL raises ``ValueError`` (before any run is recorded)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:
        raise ValueError(
            "put ERP credentials in TWIN_ERP_USER / TWIN_ERP_PASSWORD or a --credentials "
            "file, not in the URL"
        )
    if parts.scheme == "trytond":
        if not (parts.netloc or parts.path.strip("/")):
            raise ValueError(f"{redact(url)}: name the database: trytond://DB?config=FILE")
        return
    if parts.scheme not in RPC_SCHEMES:
        raise ValueError(
            f"unsupported Tryton URL scheme {parts.scheme!r} in {redact(url)}: use "
            "http://host:port/DB (XML-RPC), jsonrpc+http://host:port/DB or "
            "trytond://DB?config=FILE"
        )
    if not parts.hostname:
        raise ValueError(f"{redact(url)}: no host: http://host:port/DBNAME")
    if not (database or parts.path.strip("/")):
        raise ValueError(
            f"{redact(url)}: the Tryton URL needs the database name: http://host:port/DBNAME"
        )


def _classify(exc: BaseException) -> ErpError:
    """Map a client/transport exception to an ``ErpError`` (message without credentials)."""
    if isinstance(exc, ErpError):
        return exc
    if isinstance(exc, socket.timeout | TimeoutError):
        return ErpTimeout(f"the ERP did not answer in time ({exc})")
    if isinstance(exc, xmlrpc.client.ProtocolError):
        if exc.errcode in (401, 403):
            return ErpLoginRefused(f"the ERP refused the session (HTTP {exc.errcode})")
        if exc.errcode == 429:
            return ErpUnavailable("the ERP is rate limiting logins (HTTP 429)")
        return ErpUnavailable(f"the ERP answered HTTP {exc.errcode} {exc.errmsg}")
    if isinstance(exc, ConnectionError | http.client.HTTPException | OSError):
        return ErpUnavailable(f"cannot reach the ERP ({type(exc).__name__}: {exc})")
    if isinstance(exc, xmlrpc.client.Fault):
        text = str(exc.faultString)
        if "LoginException" in text or "403" in str(exc.faultCode):
            return ErpLoginRefused("the ERP refused the login")
        return ErpDataError(f"the ERP failed a request: {text.splitlines()[0][:300]}")
    name = type(exc).__name__
    if name in ("LoginException", "RateLimitException"):
        return ErpLoginRefused("the ERP refused the login")
    if name == "DatabaseOperationalError" or "OperationalError" in name:
        return ErpUnavailable(f"the ERP database is busy or unavailable ({exc})")
    return ErpDataError(f"the ERP failed a request: {name}: {str(exc)[:300]}")


# -- backends: call(model, method, *args) with the user's context appended ---------------------


class _XmlRpc:
    """XML-RPC through proteus with a login session; ``timeout`` seconds per call."""

    def __init__(self, url: str, database: str, creds: Credentials, timeout: float):
        from proteus import config as pconfig

        base = url.rstrip("/") + f"/{database}/rpc/"
        transport = _TimeoutTransport(timeout)
        server = xmlrpc.client.ServerProxy(
            base, allow_none=True, use_builtin_types=True, transport=transport
        )
        try:
            result = server.common.db.login(creds.user, {"password": creds.password})
        except Exception as exc:  # noqa: BLE001 - classified
            raise _classify(exc) from None
        if not result:
            raise ErpLoginRefused("the ERP refused the login")
        user_id, session = cast(list[Any], result)[:2]  # Tryton answers [user id, session]
        token = base64.b64encode(f"{creds.user}:{user_id}:{session}".encode()).decode()
        self.headers = [("Authorization", "Session " + token)]
        self.base, self.timeout = base, timeout
        try:
            self.cfg = pconfig.XmlrpcConfig(
                base, transport=_TimeoutTransport(timeout, self.headers)
            )
        except Exception as exc:  # noqa: BLE001 - classified
            raise _classify(exc) from None
        self.context: dict[str, Any] = dict(self.cfg.context)
        self.server = self.cfg.server

    def call(
        self, model: str, method: str, *args: Any, context: dict[str, Any] | None = None
    ) -> Any:
        # the method name Tryton expects, e.g. model.stock.move.search_read
        func = getattr(getattr(self.server.model, model), method)
        return func(*args, {**self.context, **(context or {})})

    def fork(self) -> _XmlRpc:
        """The same login session on a connection of its own (one per reading thread: an
        ``http.client`` connection serves one request at a time)."""
        twin = copy.copy(self)
        twin.server = xmlrpc.client.ServerProxy(
            self.base,
            allow_none=True,
            use_builtin_types=True,
            transport=_TimeoutTransport(self.timeout, self.headers),
        )
        return twin

    def close(self) -> None:
        with contextlib.suppress(Exception):  # best effort: the server may be gone
            self.cfg.server.common.db.logout()


class _TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout: float, headers: list[tuple[str, str]] | None = None):
        super().__init__(use_builtin_types=True, headers=headers or [])
        self.timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn

    def request(self, host: Any, handler: str, request_body: Any, verbose: bool = False) -> Any:
        """Send once. The stdlib re-sends any call once after a reset: a read may be re-sent,
        a create must not (the ERP may have saved it before the connection dropped)."""
        if _retry_safe(bytes(request_body)):
            return super().request(host, handler, request_body, verbose)
        return self.single_request(host, handler, request_body, verbose)


READ_NAMES = ("search_read", "read", "search", "search_count", "get_preferences")
READ_METHODS = tuple(f".{n}<".encode() for n in READ_NAMES)


def _retry_safe(request_body: bytes) -> bool:
    """Whether an XML-RPC request only reads (re-sending it cannot change the ERP)."""
    start = request_body.find(b"<methodName>")
    name = request_body[start : request_body.find(b"</methodName>", start) + 1]
    return any(name.endswith(m) for m in READ_METHODS)


class _InProcess:
    """proteus ``set_trytond``: trytond runs inside this process."""

    def __init__(self, database: str, config_file: str | None, user: str):
        from proteus import config as pconfig

        try:
            self.cfg = pconfig.TrytondConfig(database, user, config_file=config_file)
        except IndexError:
            raise ErpLoginRefused(f"no Tryton user {user!r} in database {database!r}") from None
        self.context = dict(self.cfg.context)

    def call(
        self, model: str, method: str, *args: Any, context: dict[str, Any] | None = None
    ) -> Any:
        proxy = self.cfg.get_proxy(model)
        return getattr(proxy, method)(*args, {**self.context, **(context or {})})

    def fork(self) -> _InProcess:
        """Not forked: ``read_state`` reads in-process on one thread (``workers`` is 1)."""
        return self

    def close(self) -> None:
        pass


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {
            "__class__": "datetime",
            "year": value.year,
            "month": value.month,
            "day": value.day,
            "hour": value.hour,
            "minute": value.minute,
            "second": value.second,
            "microsecond": value.microsecond,
        }
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, dt.timedelta):
        return {"__class__": "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    raise TypeError(f"cannot send {type(value).__name__} to Tryton")


def _json_hook(obj: dict[str, Any]) -> Any:
    cls = obj.get("__class__")
    if cls == "date":
        return dt.date(obj["year"], obj["month"], obj["day"])
    if cls == "datetime":
        return dt.datetime(
            obj["year"],
            obj["month"],
            obj["day"],
            obj.get("hour", 0),
            obj.get("minute", 0),
            obj.get("second", 0),
            obj.get("microsecond", 0),
        )
    if cls == "timedelta":
        return dt.timedelta(seconds=obj["seconds"])
    if cls == "Decimal":
        return Decimal(obj["decimal"])
    if cls == "bytes":
        return base64.b64decode(obj["base64"])
    return obj


class _JsonRpc:
    """Tryton's JSON-RPC with a login session, on one kept-alive HTTP connection (stdlib
    ``http.client``), answers gzip-compressed where the server or a proxy in front of it
    compresses them. A request is sent once; only a read whose kept-alive connection the server
    had closed is sent again, on a new connection (as ``xmlrpc.client`` does)."""

    def __init__(self, url: str, database: str, creds: Credentials, timeout: float):
        parts = urllib.parse.urlsplit(url)
        self.secure = parts.scheme == "https"
        self.netloc = parts.netloc
        self.path = f"/{database}/rpc/"
        self.timeout = timeout
        self.auth: str | None = None
        self._id = 0
        self._conn: http.client.HTTPConnection | None = None
        result = self._post("common.db.login", [creds.user, {"password": creds.password}])
        if not result:
            raise ErpLoginRefused("the ERP refused the login")
        token = f"{creds.user}:{result[0]}:{result[1]}"
        self.auth = "Session " + base64.b64encode(token.encode()).decode()
        self.context: dict[str, Any] = self._post("model.res.user.get_preferences", [True, {}])

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.secure else http.client.HTTPConnection
            self._conn = cls(self.netloc, timeout=self.timeout)
        return self._conn

    def _send(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        conn = self._connection()
        try:
            conn.request("POST", self.path, body, headers)
            resp = conn.getresponse()
            data = resp.read()
        except BaseException:
            conn.close()
            self._conn = None
            raise
        if resp.getheader("Content-Encoding", "") == "gzip":
            data = gzip.decompress(data)
        if resp.will_close:
            conn.close()
            self._conn = None
        return resp.status, data

    def _post(self, method: str, params: list[Any]) -> Any:
        self._id += 1
        body = strict_json.dumps(
            {"id": self._id, "method": method, "params": params}, default=_json_default
        ).encode()
        headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
        if self.auth:
            headers["Authorization"] = self.auth
        reused = self._conn is not None
        try:
            try:
                status, data = self._send(body, headers)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not (reused and method.rsplit(".", 1)[-1] in READ_NAMES):
                    raise
                status, data = self._send(body, headers)  # the server closed an idle connection
        except Exception as exc:  # noqa: BLE001 - classified
            raise _classify(exc) from None
        if status in (401, 403):
            raise ErpLoginRefused(f"the ERP refused the session (HTTP {status})")
        if status >= 400:
            raise ErpUnavailable(f"the ERP answered HTTP {status}")
        answer = json.loads(data, object_hook=_json_hook)
        if answer.get("error"):
            error = answer["error"]
            name = error[0] if isinstance(error, list) and error else str(error)
            if name in ("LoginException", "RateLimitException"):
                raise ErpLoginRefused("the ERP refused the login")
            raise ErpDataError(f"the ERP failed a request: {str(error)[:300]}")
        return answer.get("result")

    def call(
        self, model: str, method: str, *args: Any, context: dict[str, Any] | None = None
    ) -> Any:
        return self._post(f"model.{model}.{method}", [*args, {**self.context, **(context or {})}])

    def fork(self) -> _JsonRpc:
        """The same login session on a connection of its own (one per reading thread)."""
        twin = copy.copy(self)
        twin._conn = None
        return twin

    def close(self) -> None:
        with contextlib.suppress(ErpError):
            self._post("common.db.logout", [])
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Inline(Executor):
    """An executor that runs each call at once on the calling thread (in-process reads)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        done: Future[Any] = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by result()
            done.set_exception(exc)
        return done


def _open_moves(domain: list[Any], as_of: dt.date) -> list[Any]:
    """``domain`` restricted to moves still open at the end of ``as_of`` (for a past date:
    created by then and not done by then)."""
    if as_of >= dt.date.today():
        return [*domain, ("state", "in", OPEN_MOVE_STATES)]
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    return [
        *domain,
        ("create_date", "<", end),
        [
            "OR",
            ("state", "in", OPEN_MOVE_STATES),
            [("state", "=", "done"), ("effective_date", ">", as_of)],
        ],
    ]


def _ref_id(value: Any) -> str:
    """A many2one as read (id or None) as an id string ("" for none)."""
    if value is None or value is False:
        return ""
    return str(int(value))


def _days(value: Any) -> float:
    if isinstance(value, dt.timedelta):
        return value.total_seconds() / 86400.0
    return float("nan")


class TrytonAdapter:
    """Reads a Tryton 8.2 ERP (stock, purchase, sale, stock_supply, purchase_request)."""

    def __init__(
        self,
        url: str,
        credentials: Credentials | None = None,
        timeout: float = 30.0,
        database: str | None = None,
        order_sales: bool = True,
        workers: int = 4,
    ):
        check_url(url, database)
        self.url = url
        self.name = f"tryton:{redact(url)}"
        self.timeout = timeout
        self.credentials = credentials
        self._database = database
        self.order_sales = order_sales  # sale lines as sales where a warehouse shipped none
        self._backend: _XmlRpc | _JsonRpc | _InProcess | None = None
        self._kinds: dict[str, str] = {}
        self._names: dict[str, str] = {}
        self._wh_of: dict[int, int] = {}
        self.workers = workers  # connections reading at once (the server answers in threads)
        self._local = threading.local()

    # -- connection --------------------------------------------------------------------------

    def _connect(self) -> _XmlRpc | _JsonRpc | _InProcess:
        forked: _XmlRpc | _JsonRpc | _InProcess | None = getattr(self._local, "backend", None)
        if forked is not None:
            return forked
        if self._backend is not None:
            return self._backend
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme == "trytond":
            query = urllib.parse.parse_qs(parts.query)
            database = parts.netloc or parts.path.strip("/")
            user = self.credentials.user if self.credentials else "admin"
            try:
                self._backend = _InProcess(database, query.get("config", [None])[0], user)
            except ErpError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified
                raise _classify(exc) from None
            return self._backend
        database = self._database or parts.path.strip("/")
        if self.credentials is None:
            raise ErpLoginRefused(
                "no ERP credentials: set TWIN_ERP_USER and TWIN_ERP_PASSWORD or pass --credentials"
            )
        scheme = parts.scheme.removeprefix("jsonrpc+")
        base = urllib.parse.urlunsplit((scheme, parts.netloc, "", "", ""))
        if parts.scheme.startswith("jsonrpc+"):
            self._backend = _JsonRpc(base, database, self.credentials, self.timeout)
        else:
            self._backend = _XmlRpc(base, database, self.credentials, self.timeout)
        return self._backend

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    @contextlib.contextmanager
    def _pool(self) -> Iterator[Executor]:
        """Where independent reads go: ``workers`` threads, each with its own connection on the
        same login session; in-process (trytond in this process) on this thread. After a
        failed read the reads not yet sent are dropped (the run's retry starts over)."""
        backend = self._connect()
        if self.workers <= 1 or isinstance(backend, _InProcess):
            yield _Inline()
            return

        def own_connection() -> None:
            self._local.backend = backend.fork()

        pool = ThreadPoolExecutor(self.workers, "tryton-read", own_connection)
        try:
            yield pool
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()

    def _call(
        self, model: str, method: str, *args: Any, context: dict[str, Any] | None = None
    ) -> Any:
        backend = self._connect()
        try:
            return backend.call(model, method, *args, context=context)
        except ErpError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified
            if isinstance(_classify(exc), ErpUnavailable):
                self._backend = None  # reconnect (and log in again) on the next call
                self._local.backend = None
            raise _classify(exc) from None

    def _search_read(
        self,
        model: str,
        domain: list[Any],
        fields: list[str],
        context: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            args: list[Any] = [domain, offset, ROW_CHUNK, [("id", "ASC")], fields]
            part = self._call(model, "search_read", *args, context=context)
            rows += part
            if len(part) < ROW_CHUNK:
                return rows
            offset += ROW_CHUNK

    def _read(
        self, model: str, ids: list[int], fields: list[str], context: dict[str, Any]
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(0, len(ids), READ_CHUNK):
            out += self._call(model, "read", ids[i : i + READ_CHUNK], fields, context=context)
        return out

    # -- reading the state -------------------------------------------------------------------

    def _network(self) -> tuple[list[Facts], pd.DataFrame, dict[int, int]]:
        """Warehouses with what their structure says (provisioning), lanes, and the warehouse of
        every storage location."""
        rows = self._search_read(
            "stock.location",
            [("type", "in", ["warehouse", "storage", "view"])],
            ["code", "name", "type", "parent", "storage_location", "provisioning_location"],
        )
        by_id = {r["id"]: r for r in rows}

        def warehouse_of(loc: int | None) -> int | None:
            seen = 0
            while loc is not None and loc in by_id and seen < 64:
                if by_id[loc]["type"] == "warehouse":
                    return loc
                loc = by_id[loc]["parent"]
                seen += 1
            return None

        wh_of = {r["id"]: wh for r in rows if (wh := warehouse_of(r["id"])) is not None}
        warehouses = [r for r in rows if r["type"] == "warehouse"]
        provisioned_by: dict[int, int] = {}
        for w in warehouses:
            prov = by_id.get(w["storage_location"] or -1, {}).get("provisioning_location")
            if prov and wh_of.get(prov) not in (None, w["id"]):
                provisioned_by[w["id"]] = wh_of[prov]
        code = {w["id"]: w["code"] or str(w["id"]) for w in warehouses}
        facts = [
            Facts(
                erp_id=str(w["id"]),
                code=code[w["id"]],
                provisioned_by=str(provisioned_by.get(w["id"], "")),
                provisions=tuple(
                    sorted(code[s] for s, d in provisioned_by.items() if d == w["id"])
                ),
                purchase_order_points=0,
                sells=False,
            )
            for w in warehouses
        ]
        self._names = {str(w["id"]): w["name"] for w in warehouses}
        lead = self._search_read(
            "stock.location.lead_time", [], ["warehouse_from", "warehouse_to", "lead_time"]
        )
        lanes = pd.DataFrame(
            [
                {
                    "origin": _ref_id(r["warehouse_from"]),
                    "destination": _ref_id(r["warehouse_to"]),
                    "transit_days": max(math.ceil(_days(r["lead_time"]) or 1), 1),
                }
                for r in lead
                if r["warehouse_from"] and r["warehouse_to"] and r["lead_time"]
            ],
            columns=["origin", "destination", "transit_days"],
        )
        self._wh_of = wh_of
        return facts, lanes, wh_of

    def _layout(
        self, facts: list[Facts], order_points: pd.DataFrame, sellers: set[str]
    ) -> pd.DataFrame:
        """The proposed roles (``layout.propose``) from provisioning, purchase order points and
        which warehouses sell to customers."""
        n_ops = order_points["location"].value_counts().to_dict()
        located = [
            dataclasses.replace(
                f, purchase_order_points=int(n_ops.get(f.erp_id, 0)), sells=f.erp_id in sellers
            )
            for f in facts
        ]
        proposed = propose(located)
        proposed["name"] = proposed["erp_id"].map(self._names)
        self._kinds = dict(zip(proposed["erp_id"], proposed["kind"], strict=True))
        return proposed

    def read_state(self, as_of: dt.date | None = None, history_days: int = 28) -> ErpState:
        """The ERP at the end of ``as_of`` (today if None): network and its proposed layout,
        catalogue, stock and reservations, open orders, sales, order points."""
        as_of = as_of or dt.date.today()
        facts, lanes, wh_of = self._network()
        wh_ids = [int(f.erp_id) for f in facts]
        start = as_of - dt.timedelta(days=history_days - 1)
        # the reads below do not depend on each other: sent together, on `workers` connections
        with self._pool() as pool:
            order_points = pool.submit(self._order_points)
            moves = pool.submit(self._customer_moves, start, as_of)
            ordered = pool.submit(self._sale_lines, start, as_of)
            product_rows = pool.submit(self._product_rows)
            categories = pool.submit(self._search_read, "product.category", [], ["name"])
            ps_rows = pool.submit(self._supplier_rows)
            committed = pool.submit(self._committed, wh_ids, as_of)
            purchases = pool.submit(self._open_purchases, wh_ids, wh_of, as_of)
            transit = pool.submit(self._in_transit, wh_ids, as_of)
            prod_rows = product_rows.result()
            stock_parts = self._stock_reads(pool, wh_ids, [r["id"] for r in prod_rows], as_of)
            product_suppliers = self._product_suppliers(prod_rows, *ps_rows.result())
            suppliers = self._suppliers(product_suppliers)
            stock = self._stock(stock_parts, committed.result())
            locations = self._layout(
                facts,
                order_points.result(),
                set(moves.result()["location"]) | set(ordered.result()["location"]),
            )
            products = self._products(prod_rows, categories.result())
            inbound = pd.concat([purchases.result(), transit.result()], ignore_index=True)
        notes: list[str] = []
        if inbound["planned_date"].isna().any():
            notes.append(
                f"{int(inbound['planned_date'].isna().sum())} open purchase line(s) without a "
                "planned date: due after the supplier lead time"
            )
        return ErpState.build(
            as_of,
            self.name,
            history_days,
            tuple(notes),
            locations=locations,
            lanes=lanes,
            products=products,
            suppliers=suppliers,
            product_suppliers=product_suppliers,
            **({"stock": stock} if stock is not None else {}),
            inbound=inbound,
            sales=self._sales(moves.result(), ordered.result()),
            order_points=order_points.result(),
        )

    def _product_rows(self) -> list[dict[str, Any]]:
        return self._search_read(
            "product.product",
            [("type", "=", "goods")],
            [
                "code",
                "name",
                "cost_price",
                "template",
                "template.list_price",
                "template.categories",
            ],
        )

    def _products(
        self, prod_rows: list[dict[str, Any]], categories: list[dict[str, Any]]
    ) -> pd.DataFrame:
        """The catalogue: a product's category is its template's first category."""
        cats = {r["id"]: r["name"] for r in categories}
        return pd.DataFrame(
            [
                {
                    "erp_id": str(r["id"]),
                    "code": r["code"] or "",
                    "name": r["name"],
                    "category": next(
                        (cats.get(c, "") for c in (r.get("template.") or {}).get("categories", ())),
                        "",
                    ),
                    "price": float((r.get("template.") or {}).get("list_price") or "nan"),
                    "unit_cost": float(r["cost_price"] or 0),
                }
                for r in prod_rows
            ],
            columns=["erp_id", "code", "name", "category", "price", "unit_cost"],
        )

    def _supplier_rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The ERP's product-supplier lines and their price lists."""
        ps_rows = self._search_read(
            "purchase.product_supplier",
            [],
            ["product", "template", "party", "lead_time", "sequence"],
        )
        prices = self._search_read(
            "purchase.product_supplier.price",
            [],
            ["product_supplier", "quantity", "unit_price"],
        )
        return ps_rows, prices

    def _product_suppliers(
        self,
        prod_rows: list[dict[str, Any]],
        ps_rows: list[dict[str, Any]],
        prices: list[dict[str, Any]],
    ) -> pd.DataFrame:
        """Supplier lead times per product; a line set on the template holds for all its
        variants."""
        template_products: dict[int, list[int]] = {}
        for r in prod_rows:
            template_products.setdefault(r["template"], []).append(r["id"])
        # the price list's first break (the lowest minimal quantity) is the unit price
        price_of: dict[int, float] = {}
        for r in sorted(prices, key=lambda r: (r["quantity"], r["id"])):
            price_of.setdefault(r["product_supplier"], float(r["unit_price"]))
        ps = []
        for r in ps_rows:
            targets = [r["product"]] if r["product"] else template_products.get(r["template"], [])
            for p in targets:
                ps.append(
                    {
                        "product": str(p),
                        "supplier": _ref_id(r["party"]),
                        "lead_time_days": _days(r["lead_time"]) if r["lead_time"] else 0.0,
                        "sequence": r["sequence"] if r["sequence"] is not None else 10,
                        "unit_price": price_of.get(r["id"], float("nan")),
                    }
                )
        return pd.DataFrame(
            ps, columns=["product", "supplier", "lead_time_days", "sequence", "unit_price"]
        )

    def _suppliers(self, product_suppliers: pd.DataFrame) -> pd.DataFrame:
        """The parties that supply at least one product."""
        party_ids = sorted({int(p) for p in product_suppliers["supplier"] if p})
        parties = self._read("party.party", party_ids, ["code", "name"], {}) if party_ids else []
        return pd.DataFrame(
            [{"erp_id": str(r["id"]), "code": r["code"] or "", "name": r["name"]} for r in parties],
            columns=["erp_id", "code", "name"],
        )

    def _stock_reads(
        self, pool: Executor, wh_ids: list[int], product_ids: list[int], as_of: dt.date
    ) -> list[tuple[int, Future[list[dict[str, Any]]]]]:
        """On hand per warehouse (children included) at the end of ``as_of``: one read per
        warehouse and chunk of products, sent to ``pool``."""
        reads = []
        for w in wh_ids:
            ctx: dict[str, Any] = {"locations": [w], "with_childs": True}
            if as_of < dt.date.today():
                ctx["stock_date_end"] = as_of
            for i in range(0, len(product_ids), READ_CHUNK):
                chunk = product_ids[i : i + READ_CHUNK]
                reads.append(
                    (
                        w,
                        pool.submit(
                            self._call, "product.product", "read", chunk, ["quantity"], context=ctx
                        ),
                    )
                )
        return reads

    def _stock(
        self,
        reads: list[tuple[int, Future[list[dict[str, Any]]]]],
        committed: dict[tuple[int, int], float],
    ) -> pd.DataFrame | None:
        """On hand and the units committed to customer moves still open, per warehouse and
        product; None without warehouses."""
        rows = [(w, r) for w, read in reads for r in read.result()]
        if not rows:
            return None
        return pd.DataFrame(
            {
                "location": [str(w) for w, _ in rows],
                "product": [str(r["id"]) for _, r in rows],
                "on_hand": [float(r["quantity"] or 0) for _, r in rows],
                "committed": [committed.get((w, r["id"]), 0.0) for w, r in rows],
                "forecast": np.nan,
            }
        )

    def _committed(self, wh_ids: list[int], as_of: dt.date) -> dict[tuple[int, int], float]:
        """Units on customer moves not yet shipped, per (warehouse, product): confirmed sales
        promise them, so they are not available to plan with."""
        if not wh_ids:
            return {}
        moves = self._search_read(
            "stock.move",
            _open_moves(
                [
                    ("to_location.type", "=", "customer"),
                    ("from_location", "child_of", wh_ids, "parent"),
                ],
                as_of,
            ),
            ["product", "internal_quantity", "from_location"],
        )
        out: dict[tuple[int, int], float] = {}
        for m in moves:
            wh = self._wh_of.get(m["from_location"])
            if wh is not None:
                key = (wh, int(m["product"]))
                out[key] = out.get(key, 0.0) + float(m["internal_quantity"] or 0)
        return out

    def _open_purchases(
        self, wh_ids: list[int], wh_of: dict[int, int], as_of: dt.date
    ) -> pd.DataFrame:
        """Incoming moves from suppliers into the warehouses still open at the end of
        ``as_of`` (for a past date: created by then and not done by then)."""
        open_domain = _open_moves(
            [
                ("from_location.type", "=", "supplier"),
                ("to_location", "child_of", wh_ids, "parent"),
            ],
            as_of,
        )
        moves = self._search_read(
            "stock.move",
            open_domain,
            ["product", "internal_quantity", "planned_date", "to_location", "origin", "supplier"],
        )
        return pd.DataFrame(
            [
                {
                    "kind": "purchase",
                    "origin": _ref_id(m["supplier"]),
                    "destination": str(wh_of.get(m["to_location"], "")),
                    "product": str(m["product"]),
                    "qty": float(m["internal_quantity"] or 0),
                    "planned_date": m["planned_date"],
                    "reference": str(m["origin"] or f"stock.move,{m['id']}"),
                }
                for m in moves
            ],
            columns=[
                "kind",
                "origin",
                "destination",
                "product",
                "qty",
                "planned_date",
                "reference",
            ],
        )

    def _in_transit(self, wh_ids: list[int], as_of: dt.date) -> pd.DataFrame:
        """Internal shipments between warehouses shipped but not received at the end of
        ``as_of``: their open moves out of the transit location (outside every warehouse) into
        a warehouse, from the warehouse the shipment left."""
        moves = self._search_read(
            "stock.move",
            _open_moves(
                [
                    ("shipment", "like", "stock.shipment.internal,%"),
                    ("to_location", "child_of", wh_ids, "parent"),
                ],
                as_of,
            ),
            ["product", "internal_quantity", "planned_date", "from_location", "to_location"]
            + ["shipment"],
        )
        moves = [m for m in moves if m["from_location"] not in self._wh_of]
        shipment_ids = sorted({int(m["shipment"].split(",")[1]) for m in moves})
        shipped_from = {
            r["id"]: self._wh_of.get(r["from_location"])
            for r in self._read("stock.shipment.internal", shipment_ids, ["from_location"], {})
        }
        return pd.DataFrame(
            [
                {
                    "kind": "transfer",
                    "origin": str(shipped_from.get(int(m["shipment"].split(",")[1])) or ""),
                    "destination": str(self._wh_of[m["to_location"]]),
                    "product": str(m["product"]),
                    "qty": float(m["internal_quantity"] or 0),
                    "planned_date": m["planned_date"],
                    "reference": str(m["shipment"]),
                }
                for m in moves
                if m["to_location"] in self._wh_of
            ],
            columns=["kind", "origin", "destination", "product", "qty", "planned_date"]
            + ["reference"],
        )

    def _order_points(self) -> pd.DataFrame:
        """The ERP's own replenishment rules (purchase order points)."""
        ops = self._search_read(
            "stock.order_point",
            [("type", "=", "purchase")],
            ["product", "location", "min_quantity", "target_quantity"],
        )
        return pd.DataFrame(
            [
                {
                    "location": _ref_id(r["location"]),
                    "product": _ref_id(r["product"]),
                    "min_quantity": r["min_quantity"],
                    "target_quantity": r["target_quantity"],
                }
                for r in ops
            ],
            columns=["location", "product", "min_quantity", "target_quantity"],
        )

    def read_sales(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Sales between ``start`` and ``end`` (``_sales``): store walk-in, DC ecommerce."""
        moves, ordered = self._customer_moves(start, end), self._sale_lines(start, end)
        if not self._kinds:
            facts, _, _ = self._network()
            self._layout(
                facts, self._order_points(), set(moves["location"]) | set(ordered["location"])
            )
        return self._sales(moves, ordered)

    def _customer_moves(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Done moves to customers by effective date, per warehouse (date, location, product,
        units)."""
        if not self._wh_of:
            self._network()
        moves = self._search_read(
            "stock.move",
            [
                ("to_location.type", "=", "customer"),
                ("state", "=", "done"),
                ("effective_date", ">=", start),
                ("effective_date", "<=", end),
            ],
            ["product", "internal_quantity", "effective_date", "from_location"],
        )
        return pd.DataFrame(
            [
                {
                    "date": m["effective_date"],
                    "location": str(self._wh_of[m["from_location"]]),
                    "product": str(m["product"]),
                    "units": float(m["internal_quantity"] or 0),
                }
                for m in moves
                if m["from_location"] in self._wh_of
            ],
            columns=["date", "location", "product", "units"],
        )

    def _sale_lines(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Confirmed (or later) sale order lines by sale date, per warehouse; quantities in
        the line's unit, assumed the product's default unit."""
        if not self.order_sales:
            return pd.DataFrame(columns=["date", "location", "product", "units"])
        lines = self._search_read(
            "sale.line",
            [
                ("type", "=", "line"),
                ("product", "!=", None),
                ("sale.state", "in", ["confirmed", "processing", "done"]),
                ("sale.sale_date", ">=", start),
                ("sale.sale_date", "<=", end),
            ],
            ["product", "quantity", "sale.sale_date", "sale.warehouse"],
        )
        return pd.DataFrame(
            [
                {
                    "date": (r.get("sale.") or {}).get("sale_date"),
                    "location": _ref_id((r.get("sale.") or {}).get("warehouse")),
                    "product": _ref_id(r["product"]),
                    "units": float(r["quantity"] or 0),
                }
                for r in lines
                if (r.get("sale.") or {}).get("warehouse")
            ],
            columns=["date", "location", "product", "units"],
        )

    def _sales(self, moves: pd.DataFrame, ordered: pd.DataFrame) -> pd.DataFrame:
        """Sales per warehouse from its done customer moves; a warehouse with none in the period
        falls back on its confirmed sale lines (counting both would count a sale twice once it
        ships). Channel: ecommerce from a DC, walk-in elsewhere."""
        fallback = ordered[~ordered["location"].isin(set(moves["location"]))]
        sales = pd.concat([moves, fallback], ignore_index=True) if len(fallback) else moves
        sales = sales.assign(
            channel=[
                "ecommerce" if self._kinds.get(loc) == "dc" else "walk_in"
                for loc in sales["location"]
            ]
        )
        return sales[["date", "location", "product", "channel", "units"]]

    # -- what the ERP did --------------------------------------------------------------------

    def read_actions(self, start: dt.date, end: dt.date) -> ErpActions:
        """Purchases placed, the ERP's purchase requests and inter-warehouse transfers."""
        if not self._wh_of:
            self._network()
        lines = self._search_read(
            "purchase.line",
            [
                ("type", "=", "line"),
                ("product", "!=", None),
                ("purchase.purchase_date", ">=", start),
                ("purchase.purchase_date", "<=", end),
                ("purchase.state", "not in", ["cancelled"]),
            ],
            [
                "product",
                "quantity",
                "delivery_date",
                "requests",
                "purchase.party",
                "purchase.warehouse",
                "purchase.purchase_date",
                "purchase.state",
                "purchase.number",
            ],
        )
        received = self._receipts([r["id"] for r in lines])
        purchases = pd.DataFrame(
            [
                {
                    "reference": f"{(r.get('purchase.') or {}).get('number') or ''}"
                    f"/purchase.line,{r['id']}",
                    "state": (r.get("purchase.") or {}).get("state", ""),
                    "source": "order-point" if r.get("requests") else "planner",
                    "supplier": _ref_id((r.get("purchase.") or {}).get("party")),
                    "destination": _ref_id((r.get("purchase.") or {}).get("warehouse")),
                    "product": _ref_id(r["product"]),
                    "qty": float(r["quantity"] or 0),
                    "order_date": (r.get("purchase.") or {}).get("purchase_date"),
                    "delivery_date": r.get("delivery_date"),
                    "received_date": received.get(r["id"], (None, 0.0))[0],
                    "received_qty": received.get(r["id"], (None, 0.0))[1],
                }
                for r in lines
            ],
            columns=[
                "reference",
                "state",
                "source",
                "supplier",
                "destination",
                "product",
                "qty",
                "order_date",
                "delivery_date",
                "received_date",
                "received_qty",
            ],
        )
        lo = dt.datetime.combine(start, dt.time())
        hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
        reqs = self._search_read(
            "purchase.request",
            [("create_date", ">=", lo), ("create_date", "<", hi)],
            [
                "product",
                "party",
                "quantity",
                "computed_quantity",
                "supply_date",
                "warehouse",
                "state",
                "create_date",
            ],
        )
        requests = pd.DataFrame(
            [
                {
                    "reference": f"purchase.request,{r['id']}",
                    "state": r["state"],
                    "supplier": _ref_id(r["party"]),
                    "destination": _ref_id(r["warehouse"]),
                    "product": _ref_id(r["product"]),
                    "qty": float(r["quantity"] or 0),
                    "computed_qty": float(r["computed_quantity"] or 0),
                    "order_date": r["create_date"].date() if r["create_date"] else None,
                    "delivery_date": r["supply_date"],
                }
                for r in reqs
            ],
            columns=[
                "reference",
                "state",
                "supplier",
                "destination",
                "product",
                "qty",
                "computed_qty",
                "order_date",
                "delivery_date",
            ],
        )
        internal = self._search_read(
            "stock.move",
            [
                ("shipment", "like", "stock.shipment.internal,%"),
                ("state", "=", "done"),
                ("effective_date", ">=", start),
                ("effective_date", "<=", end),
            ],
            ["product", "internal_quantity", "effective_date", "from_location", "to_location"],
        )
        transfers = pd.DataFrame(
            [
                {
                    "date": m["effective_date"],
                    "origin": str(self._wh_of[m["from_location"]]),
                    "destination": str(self._wh_of[m["to_location"]]),
                    "product": str(m["product"]),
                    "qty": float(m["internal_quantity"] or 0),
                }
                for m in internal
                if self._wh_of.get(m["from_location"]) is not None
                and self._wh_of.get(m["to_location"]) is not None
                and self._wh_of[m["from_location"]] != self._wh_of[m["to_location"]]
            ],
            columns=["date", "origin", "destination", "product", "qty"],
        )
        return ErpActions.build(
            start, end, purchases=purchases, requests=requests, transfers=transfers
        )

    def _receipts(self, line_ids: list[int]) -> dict[int, tuple[dt.date, float]]:
        """Per purchase line: the last day goods were received (done moves from the supplier)
        and the units received; lines with nothing received are absent."""
        out: dict[int, tuple[dt.date, float]] = {}
        for i in range(0, len(line_ids), READ_CHUNK):
            refs = [f"purchase.line,{n}" for n in line_ids[i : i + READ_CHUNK]]
            for m in self._search_read(
                "stock.move",
                [("origin", "in", refs), ("state", "=", "done")],
                ["origin", "internal_quantity", "effective_date"],
            ):
                line = int(str(m["origin"]).split(",")[1])
                day, qty = out.get(line, (m["effective_date"], 0.0))
                out[line] = (max(day, m["effective_date"]), qty + float(m["internal_quantity"]))
        return out

    # -- the only write: draft purchases -----------------------------------------------------

    def find_draft(self, key: str) -> str | None:
        """The draft purchase whose reference is ``key`` (the lowest id), None if there is none."""
        ids = self._call("purchase.purchase", "search", [("reference", "=", key)], 0, None, None)
        return str(min(ids)) if ids else None

    def create_draft(self, order: DraftOrder, description: str) -> str:
        """One draft ``purchase.purchase`` with ``order.key`` as its reference, the supplier's
        unit prices and the planned delivery date; never quoted or confirmed. One call: the
        XML-RPC transport does not re-send it either (``_TimeoutTransport.request``)."""
        backend = self._connect()
        company = backend.context.get("company")
        if not company:
            raise ErpDataError("the ERP user has no company: cannot create purchases")
        currency = self._call("company.company", "read", [company], ["currency"])[0]["currency"]
        products = sorted({int(x.product) for x in order.lines})
        uoms = {
            r["id"]: r["default_uom"]
            for r in self._read("product.product", products, ["default_uom"], {})
        }
        values = {
            "party": int(order.supplier),
            "warehouse": int(order.destination),
            "company": company,
            "currency": currency,
            "reference": order.key,
            "description": description[:100],
            "delivery_date": order.delivery_date,
            "lines": [
                (
                    "create",
                    [
                        {
                            "type": "line",
                            "product": int(x.product),
                            "quantity": float(x.qty),
                            "unit": uoms[int(x.product)],
                            "unit_price": Decimal(str(round(x.unit_price, 4))),
                            "description": description[:100],
                        }
                        for x in order.lines
                    ],
                )
            ],
        }
        (pid,) = self._call("purchase.purchase", "create", [values])
        return str(pid)
