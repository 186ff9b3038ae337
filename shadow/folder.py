"""``SnapshotFolderAdapter``: the same canonical tables from a folder of CSV or Parquet files.

For ERPs without a connector. The folder holds ``manifest.json`` (``{"as_of": "YYYY-MM-DD",
"history_days": 28, "source": "..."}``) and one file per table, ``<table>.csv`` or
``<table>.parquet`` (``erpdata.STATE_TABLES`` / ``ACTION_TABLES``; ``schema.json`` documents
them as JSON Schema). Missing optional tables are read as empty. "Drafts" are written as CSV
files ``outbox/<idempotency key>.csv`` in the folder — the folder's ERP picks them up; nothing
else is ever written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from promotwin import strict_json
from promotwin.shadow.adapter import DraftOrder, ErpDataError
from promotwin.shadow.erpdata import (
    ACTION_TABLES,
    STATE_TABLES,
    ErpActions,
    ErpState,
    json_schema,
)
from promotwin.shadow.folder_schema import validate_tables

REQUIRED_TABLES = ("locations", "products", "stock")


class SnapshotFolderError(ErpDataError, ValueError):
    """A snapshot folder that cannot be used: bad input (exit 2), said before any run."""


def _read_table(folder: Path, name: str) -> pd.DataFrame | None:
    for suffix in (".parquet", ".csv"):
        path = folder / f"{name}{suffix}"
        if path.exists():
            try:
                if suffix == ".parquet":
                    return pd.read_parquet(path)
                return pd.read_csv(path, dtype=str, keep_default_na=False)
            except (OSError, ValueError) as exc:
                raise ErpDataError(f"{path}: cannot read ({exc})") from None
    return None


def _typed(frame: pd.DataFrame, spec: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """CSV cells arrive as text: empty numbers become NaN, empty dates None."""
    out = frame.copy()
    for col, (kind, _) in spec.items():
        if col in out and kind in ("number", "integer"):
            out[col] = pd.to_numeric(out[col].replace("", None))
        elif col in out and kind == "date":
            out[col] = out[col].replace("", None)
    return out


class SnapshotFolderAdapter:
    """Reads a snapshot folder (a state as of one date, plus optional action tables)."""

    draft_model = "outbox"  # what the run store records drafts as

    def __init__(self, folder: str | Path):
        """Read and check the whole folder now: a bad folder is refused before any run."""
        self.folder = Path(folder)
        self.name = f"folder:{self.folder.resolve()}"
        if not (self.folder / "manifest.json").exists():
            raise SnapshotFolderError(
                f"{self.folder}: no manifest.json; a snapshot folder needs one with "
                '{"as_of": "YYYY-MM-DD"} (see `twin shadow schema`)'
            )
        self.manifest = json.loads((self.folder / "manifest.json").read_text())
        try:
            self.as_of = dt.date.fromisoformat(str(self.manifest["as_of"]))
        except (KeyError, ValueError):
            raise SnapshotFolderError(
                f"{self.folder}/manifest.json: as_of must be a date YYYY-MM-DD"
            ) from None
        raw = {
            name: frame
            for name in (*STATE_TABLES, *ACTION_TABLES)
            if (frame := _read_table(self.folder, name)) is not None
        }
        missing = [name for name in REQUIRED_TABLES if name not in raw]
        if missing:
            raise SnapshotFolderError(
                f"{self.folder}: missing table(s) {missing} (.csv or .parquet)"
            )
        problems = validate_tables(raw)
        if problems:
            raise SnapshotFolderError(
                f"{self.folder}: {len(problems)} problem(s): " + "; ".join(problems)
            )
        spec = {**STATE_TABLES, **ACTION_TABLES}
        self._tables = {name: _typed(frame, spec[name]) for name, frame in raw.items()}

    def read_state(self, as_of: dt.date | None = None, history_days: int = 28) -> ErpState:
        if as_of is not None and as_of != self.as_of:
            raise ValueError(
                f"{self.folder} holds a snapshot as of {self.as_of}, not {as_of}: "
                "drop --as-of or export a folder for that date"
            )
        tables = {name: self._tables[name] for name in STATE_TABLES if name in self._tables}
        return ErpState.build(
            self.as_of,
            self.name,
            int(self.manifest.get("history_days", history_days)),
            (),
            **tables,
        )

    def read_actions(self, start: dt.date, end: dt.date) -> ErpActions:
        tables = {}
        for name, spec in ACTION_TABLES.items():
            if name not in self._tables:
                continue
            frame = self._tables[name]
            date_col = "date" if "date" in spec else "order_date"
            dates = pd.to_datetime(frame[date_col]).dt.date
            tables[name] = frame[(dates >= start) & (dates <= end)]
        return ErpActions.build(start, end, **tables)

    def read_sales(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        """The ``sales`` table between ``start`` and ``end`` (inclusive)."""
        if "sales" not in self._tables:
            return pd.DataFrame(columns=list(STATE_TABLES["sales"]))
        frame = self._tables["sales"]
        dates = pd.to_datetime(frame["date"]).dt.date
        keep = (dates >= start) & (dates <= end)
        return frame[keep].assign(date=dates[keep])

    def find_draft(self, key: str) -> str | None:
        """``outbox/<key>.csv`` if it was written."""
        name = f"outbox/{key}.csv"
        return name if (self.folder / name).exists() else None

    def create_draft(self, order: DraftOrder, description: str) -> str:
        """Write the order's lines as ``outbox/<key>.csv`` (atomically) for the folder's ERP."""
        outbox = self.folder / "outbox"
        outbox.mkdir(exist_ok=True)
        frame = pd.DataFrame([vars(x) for x in order.lines]).assign(description=description)
        _atomic_csv(frame, outbox / f"{order.key}.csv")
        return f"outbox/{order.key}.csv"

    def close(self) -> None:
        pass


def _atomic_csv(frame: pd.DataFrame, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_folder(
    state: ErpState, folder: str | Path, actions: ErpActions | None = None, fmt: str = "csv"
) -> Path:
    """Export canonical tables as a snapshot folder (with manifest and schema)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables = dict(state.tables) | (dict(actions.tables) if actions else {})
    for name, frame in tables.items():
        if fmt == "parquet":
            frame.astype({c: str for c in frame.columns if frame[c].dtype == object}).to_parquet(
                folder / f"{name}.parquet", index=False
            )
        else:
            _atomic_csv(frame, folder / f"{name}.csv")
    manifest = {
        "as_of": str(state.as_of),
        "history_days": state.history_days,
        "source": state.source,
    }
    (folder / "manifest.json").write_text(strict_json.dumps(manifest, indent=2) + "\n")
    (folder / "schema.json").write_text(strict_json.dumps(json_schema(), indent=2) + "\n")
    return folder
