"""The service's state, in the same database as the approval store and the audit trail (SQLite
file by default, PostgreSQL by URL): API keys, idempotency records, promotions, POS lines, stock
positions, recommendations and the webhook outbox.

Every mutation is one transaction of ``workflow.Store.begin()`` (``BEGIN IMMEDIATE``, WAL,
``synchronous=FULL`` on SQLite) that also writes the idempotency record holding the response
and the audit record naming the key's principal: a 2xx is sent only after that commit, so a
crash either loses the whole request (the client retries with the same ``Idempotency-Key``) or
keeps it and its response (the retry gets the first response).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Double,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from promotwin import strict_json
from promotwin.workflow.store import AuditEvent, Store, now

SERVICE_RUN = "service"  # run id of the service's audit records
KEY_PREFIX = "ptk"

metadata = MetaData()
api_keys = Table(
    "service_keys",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("limits", Text, nullable=False),  # JSON: queue -> approval limit, currency
    Column("hash", String(64), nullable=False),  # sha256 of the secret part
    Column("created_at", String(40), nullable=False),
    Column("revoked_at", String(40)),
)
idempotency = Table(
    "service_idempotency",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("idempotency_key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
)
promotions = Table(
    "service_promotions",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("event", Text, nullable=False),  # the event body, JSON
    Column("proposed_by", String(64), nullable=False),
    Column("received_at", String(40), nullable=False),
    Column("result", Text, nullable=False),  # the latest plan (readiness, stockouts, actions)
)
sales = Table(
    "service_sales",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("date", String(10), nullable=False, index=True),
    Column("location", String(64), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("units", BigInteger, nullable=False),
)
stock = Table(
    "service_stock",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("date", String(10), nullable=False, index=True),
    Column("location", String(64), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("on_hand", BigInteger, nullable=False),
)
recommendations = Table(
    "service_recommendations",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("created_at", String(40), nullable=False),
    Column("promotion_id", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # auto_approved | routed | rejected | approved
    Column("exception_id", Integer),
    Column("action", Text, nullable=False),  # JSON: kind, origin, destination, sku, qty, ...
)
outbox = Table(
    "service_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", String(40), nullable=False),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", Double, nullable=False),  # unix time, seconds
    Column("delivered_at", String(40)),
    Column("last_error", Text, nullable=False, default=""),
    Column("abandoned_at", String(40)),  # after too many failed attempts (the row is kept)
)


class IdempotencyConflict(ValueError):
    """An ``Idempotency-Key`` reused for a different request."""


@dataclass(frozen=True)
class ApiKey:
    """A key's principal (``name``, as in the audit trail), role and approval limits."""

    id: str
    name: str
    role: str
    limits: dict[str, float]


def _secret_hash(secret: str) -> str:
    # The secret is 256 random bits, so a plain sha256 cannot be brute-forced; a slow password
    # hash (argon2, ~50 ms) on every request would cost the ingest its latency budget.
    return hashlib.sha256(secret.encode()).hexdigest()


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


class ServiceStore:
    """The service tables beside a ``workflow.Store`` (exceptions, audit) in one database."""

    def __init__(self, store: str | Path, *, create: bool = True):
        self.workflow = Store(store, create=create)
        self.engine = self.workflow.engine
        metadata.create_all(self.engine)
        self._add_missing_columns()
        self._insert = postgresql.insert if self.engine.dialect.name == "postgresql" else None

    def _add_missing_columns(self) -> None:
        """Columns added since a store was made (``create_all`` only makes missing tables)."""
        from sqlalchemy import inspect
        from sqlalchemy.schema import CreateColumn

        for table in metadata.sorted_tables:
            have = {c["name"] for c in inspect(self.engine).get_columns(table.name)}
            missing = [c for c in table.columns if c.name not in have]
            if not missing:
                continue
            with self.workflow.begin() as conn:
                for column in missing:
                    ddl = CreateColumn(column).compile(dialect=self.engine.dialect)
                    conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")

    def close(self) -> None:
        self.workflow.close()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.workflow.begin() as conn:
            yield conn

    def audit(self, conn: Connection, event: str, actor: str, detail: str, **fields: Any) -> None:
        """One audit record of a service mutation, in ``conn``'s transaction."""
        self.workflow.append(
            conn,
            [AuditEvent(run_id=SERVICE_RUN, event=event, actor=actor, detail=detail, **fields)],
        )

    # -- keys ---------------------------------------------------------------------------------

    def create_key(
        self, name: str, role: str, limits: dict[str, float], actor: str
    ) -> tuple[ApiKey, str]:
        """A new key and its token (``ptk_ID_SECRET``), shown once: only a hash is stored."""
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        with self.begin() as conn:
            conn.execute(
                api_keys.insert().values(
                    id=key_id,
                    name=name,
                    role=role,
                    limits=strict_json.dumps(limits, sort_keys=True),
                    hash=_secret_hash(secret),
                    created_at=now(),
                )
            )
            self.audit(conn, "key_created", actor, f"key {key_id} for {name} as {role}")
        return ApiKey(key_id, name, role, limits), f"{KEY_PREFIX}_{key_id}_{secret}"

    def list_keys(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at)).mappings()
            return [{k: v for k, v in r.items() if k != "hash"} for r in rows]

    def revoke_key(self, key_id: str, actor: str) -> None:
        with self.begin() as conn:
            done = conn.execute(
                update(api_keys)
                .where((api_keys.c.id == key_id) & api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now())
            )
            if done.rowcount != 1:
                raise ValueError(f"no active key {key_id!r}: see `twin serve keys list`")
            self.audit(conn, "key_revoked", actor, f"key {key_id}")

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key of ``token``, or None (unknown, revoked or wrong secret)."""
        prefix, _, rest = token.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != KEY_PREFIX or not key_id or not secret:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.hash, _secret_hash(secret)):
            return None
        return ApiKey(row.id, row.name, row.role, json.loads(row.limits))

    # -- idempotency --------------------------------------------------------------------------

    def replay(
        self, conn: Connection, key_id: str, idem_key: str, req_hash: str
    ) -> tuple[int, str] | None:
        """The stored (status, body) of an earlier request with this key, in ``conn``."""
        row = conn.execute(
            select(idempotency).where(
                (idempotency.c.key_id == key_id) & (idempotency.c.idempotency_key == idem_key)
            )
        ).first()
        if row is None:
            return None
        if row.request_hash != req_hash:
            raise IdempotencyConflict(
                f"Idempotency-Key {idem_key!r} was used for a different request: use a new key "
                "for a new request, the same key only to retry the very same one"
            )
        return int(row.status), str(row.body)

    def remember(
        self, conn: Connection, key_id: str, idem_key: str, req_hash: str, status: int, body: str
    ) -> None:
        conn.execute(
            idempotency.insert().values(
                key_id=key_id,
                idempotency_key=idem_key,
                request_hash=req_hash,
                status=status,
                body=body,
                created_at=now(),
            )
        )

    # -- events -------------------------------------------------------------------------------

    def insert_new(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
        """Insert the rows whose event id is new; returns how many (the rest are duplicates).

        Through the driver's executemany: SQLAlchemy's per-row parameter processing cost
        ~10 ms of CPU per 500-line batch, as much as everything else in the request."""
        make = self._insert or sqlite.insert
        compiled = make(table).on_conflict_do_nothing().compile(dialect=conn.dialect)
        params: list[Any] = list(rows)
        if compiled.positional and compiled.positiontup is not None:
            keys = compiled.positiontup
            params = [tuple(map(r.__getitem__, keys)) for r in rows]
        done = conn.exec_driver_sql(str(compiled), params)
        return int(done.rowcount)

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (sales, stock, promotions, recommendations, outbox)
            }
