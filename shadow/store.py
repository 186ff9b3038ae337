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
from typing import Any

import pandas as pd

from promotwin import strict_json
from promotwin.shadow.mapping import IdMapping

# the columns of the drafts table after run_id, in order (``ErpAdapter.write_drafts`` returns them)
DRAFT_COLUMNS = ["erp_model", "erp_id", "supplier", "destination", "product", "qty"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, started TEXT NOT NULL, finished TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'partial', 'failed')), reason TEXT NOT NULL,
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

    # -- runs -----------------------------------------------------------------------------------

    def record(
        self,
        run: RunRecord,
        recommendations: pd.DataFrame | None = None,
        comparisons: dict[str, tuple[dict[str, Any], pd.DataFrame]] | None = None,
        drafts: pd.DataFrame | None = None,
        mapping: tuple[str, IdMapping] | None = None,
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


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, dt.date):
        return str(v)
    return v
