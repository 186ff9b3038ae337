"""The canonical ERP tables every adapter produces (and a snapshot folder holds).

An adapter turns its ERP into these plain tables; one builder (``shadow.snapshot``) turns them
into a ``PlanningSnapshot``. References between tables use the ERP's own ids as strings
(``erp_id``), which the id mapping (``shadow.mapping``) translates to twin ids.

``ErpState`` is the ERP as of a date (what a planner would see at the end of that day);
``ErpActions`` is what the ERP and its planners did over a period (orders placed, the ERP's own
order-point requests, transfers between locations).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# table -> column -> (dtype, description). The folder format and its JSON Schema come from this.
STATE_TABLES: dict[str, dict[str, tuple[str, str]]] = {
    "locations": {
        "erp_id": ("string", "the ERP's id of the warehouse / store"),
        "code": ("string", "short code a planner knows; default twin id"),
        "name": ("string", "display name"),
        "kind": ("string", "'dc' or 'store'; empty: ambiguous, left out until given a role"),
        "serving_dc": ("string", "erp_id of the DC that replenishes a store; empty for a DC"),
        "supplied_by": ("string", "'dc', 'supplier' or 'both'; empty: dc for a store"),
        "reason": ("string", "why the warehouse has this role (the adapter's proposal)"),
    },
    "lanes": {
        "origin": ("string", "erp_id of the shipping location"),
        "destination": ("string", "erp_id of the receiving location"),
        "transit_days": ("integer", "days from dispatch to arrival (>= 1)"),
    },
    "products": {
        "erp_id": ("string", "the ERP's id of the product"),
        "code": ("string", "product code / SKU; default twin id"),
        "name": ("string", "display name"),
        "category": ("string", "product category"),
        "price": ("number", "regular selling price, currency per unit"),
        "unit_cost": ("number", "cost price, else the main supplier's price; empty if neither"),
    },
    "suppliers": {
        "erp_id": ("string", "the ERP's id of the supplier (party)"),
        "code": ("string", "supplier code; default twin id"),
        "name": ("string", "display name"),
    },
    "product_suppliers": {
        "product": ("string", "erp_id of the product"),
        "supplier": ("string", "erp_id of the supplier"),
        "lead_time_days": ("number", "planned supplier lead time, days"),
        "sequence": ("integer", "preference: the lowest sequence is the main supplier"),
        "unit_price": ("number", "the supplier's price list, currency per unit; empty if none"),
    },
    "stock": {
        "location": ("string", "erp_id of the location"),
        "product": ("string", "erp_id of the product"),
        "on_hand": ("number", "units on hand at the end of as_of"),
        "committed": ("number", "units promised to customer orders not yet shipped"),
        "forecast": ("number", "ERP's forecast quantity (on hand + planned in - planned out)"),
    },
    "inbound": {
        "kind": ("string", "'purchase' (from a supplier) or 'transfer' (between locations)"),
        "origin": ("string", "erp_id of the supplier (purchase) or shipping location (transfer)"),
        "destination": ("string", "erp_id of the receiving location"),
        "product": ("string", "erp_id of the product"),
        "qty": ("number", "open units"),
        "planned_date": ("date", "planned arrival date"),
        "reference": ("string", "ERP document (purchase line, shipment)"),
    },
    "sales": {
        "date": ("date", "day of the sale (done customer move, or sale date of an order line)"),
        "location": ("string", "erp_id of the location that shipped it"),
        "product": ("string", "erp_id of the product"),
        "channel": ("string", "'walk_in', 'pickup' or 'ecommerce'"),
        "units": ("number", "units sold"),
    },
    "order_points": {
        "location": ("string", "erp_id of the location"),
        "product": ("string", "erp_id of the product"),
        "min_quantity": ("number", "reorder when the forecast quantity falls below this"),
        "target_quantity": ("number", "order up to this"),
    },
}

# columns a table may leave out (older snapshot folders), with the value they read as
OPTIONAL_COLUMNS: dict[str, dict[str, Any]] = {
    "locations": {"supplied_by": "", "reason": ""},
    "stock": {"committed": 0.0},
    "product_suppliers": {"unit_price": float("nan")},
    "purchases": {"received_date": None, "received_qty": float("nan")},
}

ACTION_TABLES: dict[str, dict[str, tuple[str, str]]] = {
    "purchases": {
        "reference": ("string", "purchase order number / line"),
        "state": ("string", "ERP state (draft, quotation, confirmed, processing, done)"),
        "source": ("string", "'order-point' (from an ERP purchase request) or 'planner'"),
        "supplier": ("string", "erp_id of the supplier"),
        "destination": ("string", "erp_id of the receiving location"),
        "product": ("string", "erp_id of the product"),
        "qty": ("number", "units ordered"),
        "order_date": ("date", "date the order was placed"),
        "delivery_date": ("date", "planned delivery date"),
        "received_date": ("date", "last day units were received; empty: none received yet"),
        "received_qty": ("number", "units received so far (0 if none)"),
    },
    "requests": {
        "reference": ("string", "purchase request id"),
        "state": ("string", "ERP state of the request"),
        "supplier": ("string", "erp_id of the proposed supplier (may be empty)"),
        "destination": ("string", "erp_id of the warehouse"),
        "product": ("string", "erp_id of the product"),
        "qty": ("number", "units requested"),
        "computed_qty": ("number", "units the ERP computed"),
        "order_date": ("date", "date the request was generated"),
        "delivery_date": ("date", "expected supply date"),
    },
    "transfers": {
        "date": ("date", "dispatch date"),
        "origin": ("string", "erp_id of the shipping location"),
        "destination": ("string", "erp_id of the receiving location"),
        "product": ("string", "erp_id of the product"),
        "qty": ("number", "units dispatched"),
    },
}


def empty_table(columns: dict[str, tuple[str, str]]) -> pd.DataFrame:
    dtypes = {"string": object, "integer": np.int64, "number": np.float64, "date": object}
    return pd.DataFrame({c: pd.Series(dtype=dtypes[t]) for c, (t, _) in columns.items()})


def conform(name: str, frame: pd.DataFrame, spec: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Columns in the canonical order and types; raise ``ValueError`` naming what is missing."""
    defaults = {c: v for c, v in OPTIONAL_COLUMNS.get(name, {}).items() if c not in frame}
    if defaults:
        frame = frame.assign(**defaults)
    missing = [c for c in spec if c not in frame.columns]
    if missing:
        raise ValueError(f"table {name!r}: missing column(s) {missing}; need {list(spec)}")
    out = pd.DataFrame(index=range(len(frame)))
    for col, (kind, _) in spec.items():
        values = frame[col].reset_index(drop=True)
        if kind == "string":
            out[col] = values.fillna("").astype(str).to_numpy(object)
        elif kind == "integer":
            out[col] = pd.to_numeric(values).fillna(0).astype(np.int64)
        elif kind == "number":
            out[col] = pd.to_numeric(values).astype(np.float64)
        else:
            out[col] = pd.to_datetime(values).dt.date.to_numpy(object)
    return out


@dataclass(frozen=True)
class ErpState:
    """The ERP as of ``as_of`` (end of day), in canonical tables."""

    as_of: dt.date
    source: str  # e.g. "tryton:http://127.0.0.1:8000/db" (never credentials)
    tables: dict[str, pd.DataFrame]
    history_days: int = 28
    notes: tuple[str, ...] = ()  # partial-data findings made while reading

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    @classmethod
    def build(
        cls,
        as_of: dt.date,
        source: str,
        history_days: int = 28,
        notes: tuple[str, ...] = (),
        **tables: pd.DataFrame,
    ) -> ErpState:
        conformed = {
            name: conform(name, tables[name], spec) if name in tables else empty_table(spec)
            for name, spec in STATE_TABLES.items()
        }
        return cls(as_of, source, conformed, history_days, notes)

    def digest(self) -> str:
        """Content hash of the tables (source excluded): same ERP data, same digest."""
        h = hashlib.sha256(str(self.as_of).encode())
        for name in STATE_TABLES:
            frame = self.tables[name]
            h.update(name.encode())
            h.update(frame.to_csv(index=False).encode())
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class ErpActions:
    """What the ERP and planners did between ``start`` and ``end`` (inclusive)."""

    start: dt.date
    end: dt.date
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.tables[name]

    @classmethod
    def build(cls, start: dt.date, end: dt.date, **tables: pd.DataFrame) -> ErpActions:
        conformed = {
            name: conform(name, tables[name], spec) if name in tables else empty_table(spec)
            for name, spec in ACTION_TABLES.items()
        }
        return cls(start, end, conformed)


def json_schema() -> dict[str, Any]:
    """JSON Schema of the snapshot folder: one object per table, one property per column."""
    types = {"string": "string", "integer": "integer", "number": "number", "date": "string"}

    def table(name: str, spec: dict[str, tuple[str, str]]) -> dict[str, Any]:
        props = {
            c: {"type": types[t], "description": d} | ({"format": "date"} if t == "date" else {})
            for c, (t, d) in spec.items()
        }
        return {
            "type": "array",
            "items": {
                "type": "object",
                "properties": props,
                "required": [c for c in spec if c not in OPTIONAL_COLUMNS.get(name, {})],
            },
        }

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Promotwin shadow snapshot folder",
        "description": "Each table is a CSV or Parquet file <table>.csv|.parquet in the folder; "
        "manifest.json holds as_of (YYYY-MM-DD) and optionally history_days.",
        "type": "object",
        "properties": {
            **{name: table(name, spec) for name, spec in STATE_TABLES.items()},
            **{name: table(name, spec) for name, spec in ACTION_TABLES.items()},
        },
        "required": ["locations", "products", "stock"],
    }
