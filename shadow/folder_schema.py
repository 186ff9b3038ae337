"""Row-by-row validation of a snapshot folder's tables (pydantic models from ``erpdata``).

Every table is checked before a run starts: each row against its model (types, allowed values,
no negative quantities), then across tables (duplicate ids, references to unknown locations,
products or suppliers). Problems are listed together, each naming the table, the column, what is
wrong and the first CSV lines where it is (line 1 is the header).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from promotwin.shadow.erpdata import ACTION_TABLES, OPTIONAL_COLUMNS, STATE_TABLES

ALLOWED: dict[tuple[str, str], Any] = {
    ("locations", "kind"): Literal["dc", "store", ""],
    ("locations", "supplied_by"): Literal["dc", "supplier", "both", ""],
    ("inbound", "kind"): Literal["purchase", "transfer"],
    ("sales", "channel"): Literal["walk_in", "pickup", "ecommerce"],
}
# quantities a row must give (other numbers may be empty: unknown)
REQUIRED_NUMBERS = {
    ("stock", "on_hand"),
    ("inbound", "qty"),
    ("sales", "units"),
    ("order_points", "min_quantity"),
    ("order_points", "target_quantity"),
    ("purchases", "qty"),
    ("requests", "qty"),
    ("transfers", "qty"),
}
NON_NEGATIVE = {
    ("inbound", "qty"),
    ("sales", "units"),
    ("stock", "committed"),
    ("purchases", "qty"),
    ("requests", "qty"),
    ("transfers", "qty"),
    ("product_suppliers", "lead_time_days"),
    ("lanes", "transit_days"),
}
REQUIRED_DATES = {("sales", "date"), ("transfers", "date")}
# (table, column) -> (table, column) it refers to; "" is allowed where a reference is optional
REFERENCES = {
    ("locations", "serving_dc"): ("locations", "erp_id"),
    ("lanes", "origin"): ("locations", "erp_id"),
    ("lanes", "destination"): ("locations", "erp_id"),
    ("product_suppliers", "product"): ("products", "erp_id"),
    ("product_suppliers", "supplier"): ("suppliers", "erp_id"),
    ("stock", "location"): ("locations", "erp_id"),
    ("stock", "product"): ("products", "erp_id"),
    ("inbound", "destination"): ("locations", "erp_id"),
    ("inbound", "product"): ("products", "erp_id"),
    ("sales", "location"): ("locations", "erp_id"),
    ("sales", "product"): ("products", "erp_id"),
    ("order_points", "location"): ("locations", "erp_id"),
    ("order_points", "product"): ("products", "erp_id"),
}
OPTIONAL_REFERENCES = {("locations", "serving_dc")}
UNIQUE = {"locations": "erp_id", "products": "erp_id", "suppliers": "erp_id"}
SHOWN = 5  # rows listed per problem


def _field(table: str, col: str, kind: str) -> tuple[Any, Any]:
    """The pydantic type and default of one column."""
    key = (table, col)
    ge = 0 if key in NON_NEGATIVE else None
    if key in ALLOWED:
        return ALLOWED[key], ...
    if kind == "string":
        return str, ...
    if kind == "integer":
        return int, Field(..., ge=ge)
    if kind == "number":
        if key in REQUIRED_NUMBERS:
            return float, Field(..., ge=ge, allow_inf_nan=False)
        return float | None, Field(None, ge=ge)
    return (dt.date, ...) if key in REQUIRED_DATES else (dt.date | None, None)


def _model(table: str, spec: dict[str, tuple[str, str]]) -> type[BaseModel]:
    fields = {c: _field(table, c, kind) for c, (kind, _) in spec.items()}
    config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)
    return create_model(f"{table}_row", __config__=config, **fields)  # type: ignore[call-overload]


TABLES = {**STATE_TABLES, **ACTION_TABLES}
MODELS: dict[str, TypeAdapter[Any]] = {
    name: TypeAdapter(list[_model(name, spec)])  # type: ignore[misc, arg-type]
    for name, spec in TABLES.items()
}


def _lines(rows: list[int]) -> str:
    shown = ", ".join(str(r + 2) for r in rows[:SHOWN])
    return f"line(s) {shown}" + (f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else "")


def _row_problems(name: str, frame: pd.DataFrame) -> list[str]:
    """Each row against the table's model: grouped by column and message."""
    spec = TABLES[name]
    defaults = {c: v for c, v in OPTIONAL_COLUMNS.get(name, {}).items() if c not in frame}
    missing = [c for c in spec if c not in frame.columns and c not in defaults]
    if missing:
        return [f"table {name!r}: missing column(s) {missing}; need {list(spec)}"]
    records = frame.assign(**defaults)[list(spec)].astype(object)
    records = records.where(records.notna() & (records != ""), None)
    strings = [c for c, (kind, _) in spec.items() if kind == "string"]
    records[strings] = records[strings].fillna("")
    try:
        MODELS[name].validate_python(records.to_dict("records"))
    except ValidationError as exc:
        groups: dict[tuple[str, str], list[int]] = {}
        for e in exc.errors():
            row, col = int(e["loc"][0]), str(e["loc"][1]) if len(e["loc"]) > 1 else "?"
            groups.setdefault((col, e["msg"]), []).append(row)
        return [
            f"table {name!r}, column {col!r}: {msg.lower()} at {_lines(rows)}"
            for (col, msg), rows in groups.items()
        ]
    return []


def _cross_problems(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Duplicate ids and references to items the folder does not have."""
    problems = []
    for name, col in UNIQUE.items():
        if name in tables:
            ids = tables[name][col].astype(str)
            dupes = ids[ids.duplicated(keep=False)]
            if len(dupes):
                problems.append(
                    f"table {name!r}, column {col!r}: duplicate id(s) "
                    f"{sorted(set(dupes))[:SHOWN]} at {_lines(list(dupes.index))}"
                )
    for (name, col), (target, target_col) in REFERENCES.items():
        if name not in tables or col not in tables[name]:
            continue
        known = set(tables[target][target_col].astype(str)) if target in tables else set()
        values = tables[name][col].fillna("").astype(str)
        bad = ~values.isin(known)
        if (name, col) in OPTIONAL_REFERENCES:
            bad &= values != ""
        if bad.any():
            problems.append(
                f"table {name!r}, column {col!r}: unknown {target} "
                f"{sorted(set(values[bad]))[:SHOWN]} (not in {target}.{target_col}) at "
                f"{_lines(list(values.index[bad]))}"
            )
    return problems


def validate_tables(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Every problem of a folder's tables (as read: CSV text or Parquet values)."""
    problems = []
    for name, frame in tables.items():
        problems += _row_problems(name, frame.reset_index(drop=True))
    return problems + _cross_problems({n: f.reset_index(drop=True) for n, f in tables.items()})
