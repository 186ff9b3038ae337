"""The shadow run store (SQLite): runs, recommendations, comparisons, draft writes, id mapping.

Each run is written in one transaction: a run is there whole (ok, partial or failed with its
reason) or not at all. Nothing here ever holds credentials: sources are redacted URLs.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pandas as pd

from promotwin import strict_json
from promotwin.shadow.adapter import DraftOrder
from promotwin.shadow.mapping import IdMapping

# the columns of the drafts table after run_id, in order (``ErpAdapter.write_drafts`` returns them)
DRAFT_COLUMNS = ["erp_model", "erp_id", "supplier", "destination", "product", "qty"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, started TEXT NOT NULL, finished TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'degraded', 'partial', 'failed')),
    reason TEXT NOT NULL,
    source TEXT NOT NULL, policy TEXT NOT NULL, as_of TEXT, snapshot_hash TEXT,
    state_digest TEXT, n_recommendations INTEGER NOT NULL, attempts INTEGER NOT NULL,
    write_drafts INTEGER NOT NULL, seconds REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS recommendations (
    run_id TEXT NOT NULL REFERENCES runs(run_id), line INTEGER NOT NULL, kind TEXT NOT NULL,
    origin TEXT NOT NULL, destination TEXT NOT NULL, sku TEXT NOT NULL, qty INTEGER NOT NULL,
    unit_cost REAL NOT NULL, confidence REAL NOT NULL, reason TEXT NOT NULL,
    status TEXT NOT NULL, due_date TEXT, erp_origin TEXT, erp_destination TEXT,
    erp_product TEXT, PRIMARY KEY (run_id, line)
);
CREATE TABLE IF NOT EXISTS comparisons (
    run_id TEXT NOT NULL REFERENCES runs(run_id), against TEXT NOT NULL,
    summary TEXT NOT NULL, lines TEXT NOT NULL, PRIMARY KEY (run_id, against)
);
CREATE TABLE IF NOT EXISTS drafts (
    run_id TEXT NOT NULL REFERENCES runs(run_id), erp_model TEXT NOT NULL,
    erp_id TEXT NOT NULL, supplier TEXT, destination TEXT, product TEXT, qty REAL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS draft_keys (
    key TEXT PRIMARY KEY, source TEXT NOT NULL, run_id TEXT NOT NULL, state TEXT NOT NULL
    CHECK (state IN ('pending', 'created', 'existing', 'not-created')), erp_id TEXT,
    supplier TEXT NOT NULL, destination TEXT NOT NULL, delivery_date TEXT NOT NULL,
    n_lines INTEGER NOT NULL, updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    run_id TEXT PRIMARY KEY REFERENCES runs(run_id), forecast TEXT NOT NULL, model_file TEXT
);
CREATE TABLE IF NOT EXISTS warnings (
    run_id TEXT NOT NULL REFERENCES runs(run_id), code TEXT NOT NULL, degrading INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS layout (
    source TEXT NOT NULL, erp_code TEXT NOT NULL, role TEXT NOT NULL, serving_dc TEXT NOT NULL,
    supplied_by TEXT NOT NULL, reason TEXT NOT NULL, created TEXT NOT NULL,
    PRIMARY KEY (source, erp_code)
);
CREATE TABLE IF NOT EXISTS id_map (
    source TEXT NOT NULL, kind TEXT NOT NULL, erp_id TEXT NOT NULL, code TEXT,
    twin_id TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY (source, kind, erp_id)
);
"""


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    started: str
    finished: str
    status: str
    reason: str
    source: str
    policy: str
    as_of: str | None
    snapshot_hash: str | None
    state_digest: str | None
    n_recommendations: int
    attempts: int
    write_drafts: int
    seconds: float


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class RunStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            _allow_degraded_status(con)
            con.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30)
        con.execute("PRAGMA foreign_keys = ON")
        return con

    # -- mapping ------------------------------------------------------------------------------

    def load_mapping(self, source: str) -> IdMapping:
        with self._connect() as con:
            rows = con.execute(
                "SELECT kind, erp_id, code, twin_id FROM id_map WHERE source = ? ORDER BY rowid",
                (source,),
            ).fetchall()
        return IdMapping.from_frame(
            pd.DataFrame(rows, columns=["kind", "erp_id", "code", "twin_id"])
        )

    def save_mapping_rows(
        self, con: sqlite3.Connection, source: str, mapping: IdMapping, replace: bool = False
    ) -> None:
        if replace:
            con.execute("DELETE FROM id_map WHERE source = ?", (source,))
            rows = [
                (k, e, mapping.codes[k].get(e, ""), t)
                for k in mapping.entries
                for e, t in mapping.entries[k].items()
            ]
        else:
            rows = [(k, e, mapping.codes[k].get(e, ""), t) for k, e, t in mapping.added]
        con.executemany(
            "INSERT OR REPLACE INTO id_map (source, kind, erp_id, code, twin_id, created) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(source, *r, _now()) for r in rows],
        )

    def save_mapping(self, source: str, mapping: IdMapping, replace: bool = True) -> None:
        with self._connect() as con:
            self.save_mapping_rows(con, source, mapping, replace)

    # -- idempotent drafts: the key is recorded before the ERP is called ------------------------

    def intend_draft(self, source: str, run_id: str, order: DraftOrder) -> None:
        """Record (committed at once) that ``order`` is about to be written, before the call:
        after a crash the key says what to look up in the ERP."""
        with self._connect() as con:
            con.execute(
                "INSERT INTO draft_keys VALUES (?, ?, ?, 'pending', NULL, ?, ?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET run_id = excluded.run_id, "
                "updated = excluded.updated WHERE state != 'created' AND state != 'existing'",
                (
                    order.key,
                    source,
                    run_id,
                    order.supplier,
                    order.destination,
                    str(order.delivery_date),
                    len(order.lines),
                    _now(),
                ),
            )

    def settle_draft(self, key: str, state: str, erp_id: str | None) -> None:
        """What became of a draft: ``created`` (by the run recorded), ``existing`` (found in the
        ERP under its key, e.g. after a crash before it was settled) or ``not-created``; a
        draft this store saw created stays ``created``."""
        with self._connect() as con:
            con.execute(
                "UPDATE draft_keys SET state = ?, erp_id = ?, updated = ? "
                "WHERE key = ? AND state != 'created'",
                (state, erp_id, _now(), key),
            )

    def draft_keys(self, source: str | None = None) -> pd.DataFrame:
        with self._connect() as con:
            query, args = "SELECT * FROM draft_keys", cast(tuple[str, ...], ())
            if source:
                query, args = query + " WHERE source = ?", (source,)
            return pd.read_sql_query(query + " ORDER BY rowid", con, params=args)

    # -- layout -------------------------------------------------------------------------------

    def load_layout(self, source: str) -> pd.DataFrame | None:
        """The layout kept for ``source`` (``shadow.layout.COLUMNS`` + reason), None if none."""
        with self._connect() as con:
            frame = pd.read_sql_query(
                "SELECT erp_code, role, serving_dc, supplied_by, reason FROM layout "
                "WHERE source = ? ORDER BY rowid",
                con,
                params=(source,),
            )
        return frame if len(frame) else None

    def save_layout(self, source: str, layout: pd.DataFrame) -> None:
        """Replace the layout kept for ``source``."""
        with self._connect() as con:
            con.execute("DELETE FROM layout WHERE source = ?", (source,))
            con.executemany(
                "INSERT INTO layout VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (source, r.erp_code, r.role, r.serving_dc, r.supplied_by, r.reason, _now())
                    for r in layout.itertuples(False)
                ],
            )

    # -- runs -----------------------------------------------------------------------------------

    def record(
        self,
        run: RunRecord,
        recommendations: pd.DataFrame | None = None,
        comparisons: dict[str, tuple[dict[str, Any], pd.DataFrame]] | None = None,
        drafts: pd.DataFrame | None = None,
        mapping: tuple[str, IdMapping] | None = None,
        warnings: list[tuple[str, bool, str]] | None = None,
        model: tuple[str, str | None] | None = None,
    ) -> None:
        """Write a run and everything it produced in one transaction."""
        con = self._connect()
        try:
            with con:
                con.execute(
                    f"INSERT INTO runs VALUES ({', '.join('?' * 14)})",
                    (
                        run.run_id,
                        run.started,
                        run.finished,
                        run.status,
                        run.reason,
                        run.source,
                        run.policy,
                        run.as_of,
                        run.snapshot_hash,
                        run.state_digest,
                        run.n_recommendations,
                        run.attempts,
                        run.write_drafts,
                        run.seconds,
                    ),
                )
                if recommendations is not None and len(recommendations):
                    cols = [
                        "line",
                        "kind",
                        "origin",
                        "destination",
                        "sku",
                        "qty",
                        "unit_cost",
                        "confidence",
                        "reason",
                        "status",
                        "due_date",
                        "erp_origin",
                        "erp_destination",
                        "erp_product",
                    ]
                    rows = (
                        recommendations[cols]
                        .astype(object)
                        .where(recommendations[cols].notna(), None)
                    )
                    con.executemany(
                        f"INSERT INTO recommendations (run_id, {', '.join(cols)}) "
                        f"VALUES (?, {', '.join('?' * len(cols))})",
                        [(run.run_id, *(_plain(v) for v in r)) for r in rows.itertuples(False)],
                    )
                for against, (summary, lines) in (comparisons or {}).items():
                    con.execute(
                        "INSERT INTO comparisons VALUES (?, ?, ?, ?)",
                        (
                            run.run_id,
                            against,
                            strict_json.dumps(summary, default=str),
                            lines.to_json(orient="records", date_format="iso"),
                        ),
                    )
                if drafts is not None and len(drafts):
                    con.executemany(
                        "INSERT INTO drafts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            (run.run_id, *r, _now())
                            for r in drafts.astype({"qty": float})[DRAFT_COLUMNS].itertuples(False)
                        ],
                    )
                if mapping is not None:
                    self.save_mapping_rows(con, mapping[0], mapping[1])
                if model is not None:
                    con.execute("INSERT INTO models VALUES (?, ?, ?)", (run.run_id, *model))
                con.executemany(
                    "INSERT INTO warnings VALUES (?, ?, ?, ?)",
                    [(run.run_id, code, int(bad), msg) for code, bad, msg in warnings or []],
                )
        finally:
            con.close()

    def runs(self, source: str | None = None) -> pd.DataFrame:
        with self._connect() as con:
            query = "SELECT * FROM runs"
            args: tuple[Any, ...] = ()
            if source:
                query += " WHERE source = ?"
                args = (source,)
            return pd.read_sql_query(query + " ORDER BY started, rowid", con, params=args)

    def run(self, run_id: str) -> RunRecord | None:
        with self._connect() as con:
            row = con.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return RunRecord(*row) if row else None

    def previous(self, source: str, policy: str, before: dt.date) -> RunRecord | None:
        """The latest ok/partial run of ``policy`` on ``source`` as of a date before ``before``."""
        with self._connect() as con:
            row = con.execute(
                "SELECT * FROM runs WHERE source = ? AND policy = ? AND status != 'failed' "
                "AND as_of < ? ORDER BY as_of DESC, started DESC LIMIT 1",
                (source, policy, str(before)),
            ).fetchone()
        return RunRecord(*row) if row else None

    def warnings(self, run_id: str) -> pd.DataFrame:
        """A run's named data warnings (code, degrading, message)."""
        with self._connect() as con:
            return pd.read_sql_query(
                "SELECT code, degrading, message FROM warnings WHERE run_id = ? ORDER BY rowid",
                con,
                params=(run_id,),
            )

    def model(self, run_id: str) -> tuple[str, str | None] | None:
        """The forecast a run planned with and its model file (None: not recorded)."""
        with self._connect() as con:
            row = con.execute(
                "SELECT forecast, model_file FROM models WHERE run_id = ?", (run_id,)
            ).fetchone()
        return (str(row[0]), row[1]) if row else None

    def comparisons(self, run_id: str) -> list[str]:
        """What a run was compared with (``same-day``, ``previous:RUN``)."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT against FROM comparisons WHERE run_id = ? ORDER BY against", (run_id,)
            ).fetchall()
        return [r[0] for r in rows]

    def recommendations(self, run_id: str) -> pd.DataFrame:
        with self._connect() as con:
            return pd.read_sql_query(
                "SELECT * FROM recommendations WHERE run_id = ? ORDER BY line",
                con,
                params=(run_id,),
            )

    def comparison(self, run_id: str, against: str) -> tuple[dict[str, Any], pd.DataFrame] | None:
        with self._connect() as con:
            row = con.execute(
                "SELECT summary, lines FROM comparisons WHERE run_id = ? AND against = ?",
                (run_id, against),
            ).fetchone()
        if row is None:
            return None
        import io

        return json.loads(row[0]), pd.read_json(io.StringIO(row[1]), orient="records")

    def drafts(self, run_id: str | None = None) -> pd.DataFrame:
        with self._connect() as con:
            if run_id:
                return pd.read_sql_query(
                    "SELECT * FROM drafts WHERE run_id = ?", con, params=(run_id,)
                )
            return pd.read_sql_query("SELECT * FROM drafts", con)


def _allow_degraded_status(con: sqlite3.Connection) -> None:
    """A store made before runs could be ``degraded`` has a CHECK that refuses it: rebuild the
    runs table with the new CHECK (SQLite cannot alter one), keeping every row."""
    row = con.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='runs'").fetchone()
    if row is None or "'degraded'" in row[0]:
        return
    con.commit()
    con.execute("PRAGMA foreign_keys = OFF")
    create = SCHEMA.split(";")[0].replace("IF NOT EXISTS runs", "runs_new")
    with con:  # SQLite's recipe: new table, copy, drop, rename (references keep "runs")
        con.execute(create)
        con.execute("INSERT INTO runs_new SELECT * FROM runs")
        con.execute("DROP TABLE runs")
        con.execute("ALTER TABLE runs_new RENAME TO runs")
    con.execute("PRAGMA foreign_keys = ON")


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, dt.date):
        return str(v)
    return v
