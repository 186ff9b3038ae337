"""The approval store and the audit trail: one database through SQLAlchemy (SQLite by default,
PostgreSQL with a URL).

Audit trail: append-only; record ``seq`` carries ``hash = sha256(prev_hash + its fields)`` and a
one-row ``audit_head`` keeps the last seq and hash, so an edited, deleted (also at the end) or
reordered record breaks the chain at that record. Writers serialise on the head row (``BEGIN
IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` elsewhere) and always take it last, after any
exception rows they change, so they cannot deadlock.

Anchors: after each committed transaction that advanced the head, its (seq, hash) is appended
to an anchor file outside the database (``workflow.audit_anchor``), so deleting the last records
and rewriting the head row is detected too.

Approvals: a decision is a conditional update (``... WHERE status = 'open'``) committed together
with its audit record, so of two concurrent approvals of the same exception exactly one wins and
the other gets ``ConflictError``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Double,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    select,
    update,
)
from sqlalchemy.pool import StaticPool

from promotwin.workflow.audit_anchor import (
    Anchor,
    AnchorError,
    AnchorFile,
    audit_key,
    default_anchor_path,
    make_anchor,
)
from promotwin.workflow.identity import Identity

GENESIS = "0" * 64
EVENTS = ("proposed", "auto_approved", "routed", "approved", "rejected", "executed", "expired")
STATUSES = ("open", "approved", "rejected", "expired", "released", "executed", "blocked")

metadata = MetaData()
audit = Table(
    "audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("run_id", String(64), nullable=False, index=True),
    Column("event", String(16), nullable=False),
    Column("sim_day", Integer),
    Column("sim_date", String(10)),
    Column("wall_time", String(40), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("exception_id", Integer),
    Column("rules", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("origin", String(64), nullable=False),
    Column("destination", String(64), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("qty", BigInteger, nullable=False),
    Column("value", Double, nullable=False),
    Column("snapshot_hash", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)
exceptions = Table(
    "exceptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("status", String(16), nullable=False, index=True),
    Column("owner", String(32), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("created_day", Integer, nullable=False),
    Column("expires_day", Integer, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("decided_day", Integer),
    Column("decided_at", String(40)),
    Column("decided_by", String(64)),
    Column("decided_role", String(16)),  # the role the decider signed in with (people only)
    Column("note", Text, nullable=False, default=""),
    Column("policy", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("origin", String(64), nullable=False),
    Column("destination", String(64), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("qty", BigInteger, nullable=False),
    Column("unit_cost", Double, nullable=False),
    Column("confidence", Double, nullable=False),
    Column("value", Double, nullable=False),
    Column("value_at_risk", Double, nullable=False),
    Column("rules", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("policy_reason", Text, nullable=False),
    Column("snapshot_hash", String(64), nullable=False),
    Column("proposed_by", String(64), nullable=False, default=""),  # who started the run
)


class StoreError(ValueError):
    """The store cannot be used as asked (missing, not a store, unknown exception)."""


class ConflictError(StoreError):
    """Someone else decided this exception first; nothing was changed."""


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class AuditEvent:
    """One decision, as handed to the store (the store adds seq, wall time and the hashes)."""

    run_id: str
    event: str
    actor: str
    sim_day: int | None = None
    sim_date: str | None = None
    exception_id: int | None = None
    rules: str = ""
    kind: str = ""
    origin: str = ""
    destination: str = ""
    sku: str = ""
    qty: int = 0
    value: float = 0.0
    snapshot_hash: str = ""
    detail: str = ""


EVENT_FIELDS = tuple(f.name for f in fields(AuditEvent))
HASHED = ("seq", "wall_time", *EVENT_FIELDS, "prev_hash")


def record_hash(row: Mapping[str, Any]) -> str:
    """sha256 over ``repr`` of the record's fields in a fixed order (seq and prev_hash
    included); ints, floats, strings and None only, so the text is the same after a
    database round trip."""
    return hashlib.sha256(repr(tuple(map(row.__getitem__, HASHED))).encode()).hexdigest()


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """Plain Python numbers (a numpy scalar's repr would change the hashed text)."""
    row["qty"], row["value"] = int(row["qty"]), float(row["value"])
    for k in ("sim_day", "exception_id"):
        if row[k] is not None:
            row[k] = int(row[k])
    return row


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int  # records read
    first_bad: int | None  # seq of the first bad (or missing) record
    problem: str = ""
    anchors: int = 0  # anchors (anchor file, manifests) the chain was checked against
    notes: tuple[str, ...] = ()  # what could not be checked, and why


def to_url(store: str | Path) -> str:
    text = str(store)
    return text if "://" in text else f"sqlite:///{Path(text)}"


_PENDING_HEAD = "promotwin_pending_head"


class Store:
    """Approval store + audit trail in one database; ``anchor`` is its anchor file (default:
    ``audit_anchor.default_anchor_path``)."""

    def __init__(
        self, store: str | Path = "sqlite://", *, create: bool = True, anchor: str | Path = ""
    ):
        url = to_url(store)
        self.url = url
        anchor_path = Path(anchor) if str(anchor) else default_anchor_path(url)
        self.anchor = AnchorFile(anchor_path) if anchor_path is not None else None
        sqlite = url.startswith("sqlite")
        memory = url in ("sqlite://", "sqlite:///:memory:")
        if sqlite and not memory and not create:
            path = Path(url.removeprefix("sqlite:///"))
            if not path.is_file():
                raise StoreError(f"no store at {path}: check the path (a run creates one)")
        kwargs: dict[str, Any] = {}
        if memory:
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        elif sqlite:
            kwargs = {"connect_args": {"timeout": 60}}
        self.engine: Engine = create_engine(url, **kwargs)
        if sqlite:
            _sqlite_transactions(self.engine, wal=not memory)
        if create:
            metadata.create_all(self.engine)
            with self.begin() as conn:
                if conn.execute(select(audit_head.c.id)).first() is None:
                    conn.execute(audit_head.insert().values(id=1, seq=0, hash=GENESIS))
        elif not inspect(self.engine).has_table("audit_head"):
            raise StoreError(f"{store} is not a promotwin store (no audit trail in it)")
        _check_columns(self.engine, store)  # create_all never adds columns to an old table

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: committed on exit, rolled back on an exception. Once committed, the
        head it left is appended to the anchor file (a crash in between leaves that head
        unanchored, never an anchor for records that were not committed)."""
        heads: list[Anchor] = []
        with self.engine.begin() as conn:
            conn.info[_PENDING_HEAD] = heads
            try:
                yield conn
            finally:
                del conn.info[_PENDING_HEAD]
        if heads and self.anchor is not None:
            self.anchor.append(heads[-1])

    def head(self) -> tuple[int, str]:
        """The last record's seq and hash (0 and the genesis hash for an empty trail)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).one()
        return int(row.seq), str(row.hash)

    def close(self) -> None:
        self.engine.dispose()

    # -- audit trail ---------------------------------------------------------------------------

    def append(self, conn: Connection, events: Sequence[AuditEvent | Mapping[str, Any]]) -> None:
        """Chain and insert ``events`` (or dicts with every ``AuditEvent`` field) in this
        transaction; call it last in a transaction, after any exception rows it changes."""
        if not events:
            return
        head = conn.execute(
            select(audit_head.c.seq, audit_head.c.hash)
            .where(audit_head.c.id == 1)
            .with_for_update()
        ).one()
        seq, prev = int(head.seq), str(head.hash)
        stamp = now()
        rows = []
        for e in events:
            seq += 1
            fields_ = asdict(e) if isinstance(e, AuditEvent) else {k: e[k] for k in EVENT_FIELDS}
            row = _normalise({**fields_, "seq": seq, "wall_time": stamp, "prev_hash": prev})
            prev = row["hash"] = record_hash(row)
            rows.append(row)
        _insert_many(conn, audit, rows)
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=prev))
        heads = conn.info.get(_PENDING_HEAD)
        if heads is not None:  # inside Store.begin(): anchored once committed
            heads.append(make_anchor(seq, prev, rows[-1]["run_id"], audit_key()))

    def verify(self, anchors: Sequence[Anchor] = ()) -> Verification:
        """Walk the chain in seq order, stopping at the first record that does not check out;
        then check the head and every anchor (the anchor file's and ``anchors``, e.g. from run
        manifests) against the chain."""
        notes: list[str] = []
        try:
            recorded = self.anchor.read() if self.anchor is not None else []
        except AnchorError as exc:
            return Verification(False, 0, None, f"the anchor file is damaged: {exc}")
        if self.anchor is None:
            notes.append(
                "no anchor file for this store (set TWIN_AUDIT_ANCHOR or --anchor): deleting "
                "the last records together with the head cannot be detected"
            )
        every = [*recorded, *anchors]
        wanted = {a.seq for a in every}
        found: dict[int, str] = {0: GENESIS}
        expected, prev, checked = 1, GENESIS, 0
        with self.engine.connect() as conn:
            head = conn.execute(select(audit_head)).one()
            result = conn.execution_options(yield_per=5000).execute(
                select(audit).order_by(audit.c.seq)
            )
            for r in result.mappings():
                checked += 1
                seq = int(r["seq"])
                if seq != expected:
                    gap = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
                    what = "missing (deleted)" if seq > expected else "out of order"
                    return Verification(
                        False,
                        checked,
                        expected,
                        f"record {gap} {what}: record {seq} follows record {expected - 1}",
                    )
                if r["prev_hash"] != prev:
                    return Verification(
                        False,
                        checked,
                        seq,
                        f"record {seq} does not follow record {seq - 1} "
                        "(records deleted, inserted or reordered)",
                    )
                if record_hash(dict(r)) != r["hash"]:
                    return Verification(
                        False, checked, seq, f"record {seq} was edited (its hash does not match)"
                    )
                if seq in wanted:
                    found[seq] = r["hash"]
                prev, expected = r["hash"], expected + 1
        last = expected - 1
        if int(head.seq) != last or head.hash != prev:
            return Verification(
                False,
                checked,
                expected,
                f"the log ends at record {last} but its head "
                f"says {head.seq}: records after {last} were deleted (or the head edited)",
            )
        if self.anchor is not None and not recorded and last > 0:
            return Verification(
                False,
                checked,
                None,
                f"the anchor file {self.anchor.path} is missing or empty but the log has {last} "
                "records: it was deleted or moved (give its path with --anchor)",
            )
        problem = _check_anchors(every, found, last, notes)
        if problem:
            return Verification(False, checked, problem[0], problem[1], len(every), tuple(notes))
        if recorded and max(a.seq for a in recorded) < last:
            notes.append(
                f"records after {max(a.seq for a in recorded)} are not in the anchor file yet "
                "(a writer stopped between its commit and the anchor, or the anchor file was "
                "cut short)"
            )
        return Verification(True, checked, None, "", len(every), tuple(notes))

    def audit_frame(
        self, run_id: str | None = None, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The audit trail (of one run), in order; all columns or the ones named."""
        names = list(columns) if columns is not None else [c.name for c in audit.columns]
        query = select(*(audit.c[n] for n in names)).order_by(audit.c.seq)
        if run_id is not None:
            query = query.where(audit.c.run_id == run_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        return pd.DataFrame(
            {n: pd.Series(c, dtype=object) for n, c in zip(names, cols, strict=True)}
        ).infer_objects()

    def has_run(self, run_id: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(select(audit.c.seq).where(audit.c.run_id == run_id).limit(1))
            return found.first() is not None

    # -- exceptions ----------------------------------------------------------------------------

    def create_exceptions(self, conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
        if not rows:
            return []
        stamp = now()
        rows = [
            {"status": "open", "created_at": stamp, "note": "", "proposed_by": "", **r}
            for r in rows
        ]
        ids = conn.execute(
            exceptions.insert().returning(exceptions.c.id, sort_by_parameter_order=True), rows
        )
        return [int(i) for i in ids.scalars()]

    def get(self, exception_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(exceptions).where(exceptions.c.id == exception_id)).first()
        if row is None:
            raise StoreError(
                f"no exception {exception_id} in this store: see `twin exceptions list`"
            )
        return dict(row._mapping)

    def list_exceptions(
        self,
        status: str | None = "open",
        owner: str | None = None,
        run_id: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Highest priority first, then largest value at risk, then oldest."""
        q = select(exceptions)
        if status is not None:
            q = q.where(exceptions.c.status == status)
        if owner is not None:
            q = q.where(exceptions.c.owner == owner)
        if run_id is not None:
            q = q.where(exceptions.c.run_id == run_id)
        q = q.order_by(
            exceptions.c.priority.desc(), exceptions.c.value_at_risk.desc(), exceptions.c.id
        )
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def decide(
        self,
        exception_id: int,
        decision: Literal["approved", "rejected"],
        identity: Identity,
        note: str = "",
        sim_day: int | None = None,
    ) -> dict[str, Any]:
        """A signed-in person approves or rejects one open exception: ``NotAllowedError`` if
        their role, queues, limit or having proposed it forbid it, ``ConflictError`` if it is
        no longer open. The audit record names who, when and under which role."""
        current = self.get(exception_id)
        if current["status"] == "open":
            identity.check_decision(
                decision == "approved",
                current["owner"],
                float(current["value"]),
                current["proposed_by"],
                exception_id,
            )
            with self.begin() as conn:
                rows = self.decide_many(
                    conn,
                    [(exception_id, decision, identity.name)],
                    sim_day,
                    note,
                    role=identity.role,
                    signature=identity.signature(),
                )
            if rows:
                return rows[0]
            current = self.get(exception_id)
        who = f" by {current['decided_by']}" if current["decided_by"] else ""
        when = f" at {current['decided_at']}" if current["decided_at"] else ""
        raise ConflictError(
            f"exception {exception_id} is already {current['status']}{who}{when}; nothing changed"
        )

    def decide_many(
        self,
        conn: Connection,
        decisions: Sequence[tuple[int, str, str]],
        sim_day: int | None,
        note: str = "",
        *,
        role: str | None = None,
        signature: str = "",
    ) -> list[dict[str, Any]]:
        """(id, "approved" | "rejected", by) for each; decides those still open, in this
        transaction, and returns their rows. One audit record per decision, its detail the
        ``signature`` (how the decider signed in) and the note."""
        stamp, done = now(), []
        for exception_id, decision, who in decisions:
            if decision not in ("approved", "rejected"):
                raise ValueError(f"a decision is approved or rejected, not {decision!r}")
            row = conn.execute(
                update(exceptions)
                .where((exceptions.c.id == exception_id) & (exceptions.c.status == "open"))
                .values(
                    status=decision,
                    decided_by=who,
                    decided_role=role,
                    decided_at=stamp,
                    decided_day=sim_day,
                    note=note,
                )
                .returning(*exceptions.c)
            ).first()
            if row is not None:
                done.append(dict(row._mapping))
        detail = "; ".join(t for t in (signature, note) if t)
        events = [exception_event(r, r["status"], r["decided_by"], sim_day, detail) for r in done]
        self.append(conn, events)
        return done

    def transition(
        self,
        conn: Connection,
        run_id: str,
        from_status: str,
        to_status: str,
        *,
        ids: Sequence[int] | None = None,
        expires_by: int | None = None,
    ) -> list[dict[str, Any]]:
        """Move a run's exceptions from one status to another, atomically; returns the rows."""
        where = (exceptions.c.run_id == run_id) & (exceptions.c.status == from_status)
        if ids is not None:
            where &= exceptions.c.id.in_(list(ids))
        if expires_by is not None:
            where &= exceptions.c.expires_day <= expires_by
        result = conn.execute(
            update(exceptions).where(where).values(status=to_status).returning(*exceptions.c)
        )
        return sorted((dict(r._mapping) for r in result), key=lambda r: r["id"])


def exception_event(
    row: Mapping[str, Any], name: str, actor: str, sim_day: int | None, detail: str = ""
) -> AuditEvent:
    return AuditEvent(
        run_id=row["run_id"],
        event=name,
        actor=actor,
        sim_day=sim_day,
        exception_id=int(row["id"]),
        rules=row["rules"],
        kind=row["kind"],
        origin=row["origin"],
        destination=row["destination"],
        sku=row["sku"],
        qty=int(row["qty"]),
        value=float(row["value"]),
        snapshot_hash=row["snapshot_hash"],
        detail=detail,
    )


def _check_anchors(
    anchors: Sequence[Anchor], found: Mapping[int, str], last: int, notes: list[str]
) -> tuple[int, str] | None:
    """The first anchor the chain contradicts, as (first bad seq, problem); signatures are
    checked when ``TWIN_AUDIT_KEY`` is set."""
    key = audit_key()
    unsigned = 0
    for a in sorted(anchors, key=lambda a: a.seq, reverse=True):
        if key is not None and not (a.mac and a.signature_ok(key)):
            return a.seq, (
                f"the anchor in {a.source} is not signed with TWIN_AUDIT_KEY "
                "(forged, or written without the key)"
            )
        unsigned += not a.mac
        if a.seq > last:
            gone = f"{last + 1}" if a.seq == last + 1 else f"{last + 1}..{a.seq}"
            return last + 1, (
                f"record {gone} missing: {a.source} recorded the head at record {a.seq} "
                f"({a.at}) but the log ends at record {last} "
                "(the last records were deleted and the head rewritten)"
            )
        if found.get(a.seq) != a.hash:
            return a.seq, (
                f"record {a.seq} is not the one {a.source} recorded ({a.at}): "
                "the log was rewritten up to there"
            )
    if key is None and len(anchors) > unsigned:
        notes.append("anchor signatures not checked: TWIN_AUDIT_KEY is not set")
    return None


def _check_columns(engine: Engine, store: str | Path) -> None:
    """An existing store must have every column this version writes."""
    if not inspect(engine).has_table("exceptions"):
        raise StoreError(f"{store} is not a promotwin store (no exception queue in it)")
    found = {c["name"] for c in inspect(engine).get_columns("exceptions")}
    missing = [c.name for c in exceptions.columns if c.name not in found]
    if missing:
        raise StoreError(
            f"{store} was written by an older promotwin (no {', '.join(missing)} column): "
            "give a new --store for new runs"
        )


def _insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Bulk insert through the driver's executemany (SQLAlchemy's per-row parameter processing
    dominates for the ~10^5 audit records of a large run)."""
    compiled = table.insert().compile(dialect=conn.dialect)
    if compiled.positional and compiled.positiontup is not None:
        keys = compiled.positiontup
        conn.exec_driver_sql(str(compiled), [tuple(map(r.__getitem__, keys)) for r in rows])
    else:
        conn.exec_driver_sql(str(compiled), rows)


def _sqlite_transactions(engine: Engine, wal: bool) -> None:
    """Let SQLAlchemy emit BEGIN IMMEDIATE: writers take the lock up front and queue."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if wal:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
