"""The policy contract: ``PlanningSnapshot`` in, ``Plan`` out. Plain data, no I/O.

Time: the snapshot is taken at the end of day ``day``, after that day's demand. Anything a plan
dispatches or orders leaves at the end of ``day`` and arrives at the start of
``day + transit/lead days`` (so a 1-day lane delivers tomorrow morning, before tomorrow's demand).
Arrays are indexed ``[location, sku]`` with DCs first (``[:n_dcs]``) then stores.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd

from promotwin.arrays import BoolArray, FloatArray, IntArray
from promotwin.policies.forecast_terms import ForecastTerms

__all__ = [
    "ActionKind",
    "BoolArray",
    "FloatArray",
    "InboundShipment",
    "IntArray",
    "Plan",
    "PlanBuilder",
    "PlanningSnapshot",
    "Policy",
    "RunContext",
    "read_only",
    "start_run",
]


def read_only(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``a`` if it is read-only already, else a read-only view of it (the owner's array stays
    writeable: only what a policy is handed is protected)."""
    if not a.flags.writeable:
        return a
    view = a.view()
    view.flags.writeable = False
    return view


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """A dataclass's field names (looked up once per class, not once per snapshot)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _freeze_arrays(obj: object, names: tuple[str, ...]) -> None:
    """Replace the named array fields of a frozen dataclass by read-only views."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, np.ndarray):
            object.__setattr__(obj, name, read_only(value))


@dataclass(frozen=True)
class InboundShipment:
    """One open shipment or purchase order: arrays of SKU indices and units, due on ``due_day``."""

    kind: str  # "purchase" | "expedite" | "shipment" | "transfer"
    origin: int  # location index, or supplier index for purchases/expedites
    destination: int  # location index
    due_day: int  # planned arrival day (what the ERP shows; the real one may differ)
    sku: IntArray
    qty: IntArray

    def __post_init__(self) -> None:
        _freeze_arrays(self, ("sku", "qty"))


@dataclass(frozen=True)
class PlanningSnapshot:
    """Everything a policy may see. Built by the twin each day, or from an ERP by an adapter."""

    day: int
    date: dt.date
    location_ids: tuple[str, ...]
    sku_ids: tuple[str, ...]
    n_dcs: int
    serving_dc: IntArray  # [L] DC index replenishing each location (a DC maps to itself)
    on_hand: IntArray  # [L, S] units
    in_transit: IntArray  # [L, S] units dispatched between locations, not yet arrived
    on_order: IntArray  # [L, S] units ordered from suppliers, not yet arrived
    inbound: tuple[InboundShipment, ...]  # the detail behind in_transit and on_order
    forecast_mean: FloatArray  # [H, L, S] demand served from each location's stock, day+1..day+H
    forecast_dispersion: float  # negative-binomial k: variance = mu + mu**2 / k
    history_mean: FloatArray  # [L, S] trailing 28-day average daily sales (what an ERP sees)
    baseline_mean: FloatArray  # [L, S] average daily demand without promotions
    promotions: pd.DataFrame  # id, start_day, end_day, depth, planned_uplift
    promotion_cells: dict[str, BoolArray]  # promotion id -> [L, S] cells it applies to
    sku_supplier: IntArray  # [S] supplier index
    supplier_ids: tuple[str, ...]
    lead_time_mean: FloatArray  # [V] days
    lead_time_sd: FloatArray  # [V] days
    expedite_lead_time: IntArray  # [V] days
    supplier_capacity: FloatArray  # [V] units per day
    moq: FloatArray  # [V] units per SKU line
    fill_rate: FloatArray  # [V] expected share delivered
    lanes: pd.DataFrame  # o, d (location indices), transit_days, cost_per_unit, capacity
    dc_throughput: FloatArray  # [D] outbound units per day, today
    price: FloatArray  # [S] currency per unit
    unit_cost: FloatArray  # [S]
    holding_cost: FloatArray  # [S] currency per unit per day
    lost_sale_cost: FloatArray  # [S] lost margin + goodwill, currency per unit
    expedite_premium: FloatArray  # [S] extra currency per expedited unit
    seed: int = 0
    # [L, S] units promised to customer orders not yet shipped, already taken off ``on_hand``
    # (which is then what is available to plan with); None: nothing promised (the twin)
    committed: IntArray | None = None
    # per-date terms of ``forecast_mean`` from the forecast provider (None: a policy computes
    # them); kept only if they were computed from this very forecast (see ForecastTerms)
    forecast_terms: ForecastTerms | None = None
    # what moved the forecast in-season (sensing), for the reasons on plan lines: per cell an
    # index into ``forecast_notes`` (-1: nothing), the notes the largest change first
    forecast_note: IntArray | None = None  # [L, S]
    forecast_notes: tuple[str, ...] = ()
    # direct-store delivery, per location [L]: the stores a supplier delivers to (purchase
    # orders may name them as destination) and the stores their DC replenishes (``serving_dc``
    # of a store with neither flag is only its home DC, for ecommerce); None: no store is
    # supplied directly and every store is replenished by its DC
    direct: BoolArray | None = None
    dc_replenished: BoolArray | None = None

    def __post_init__(self) -> None:
        """Every array a policy is handed is read-only: a what-if builds a new snapshot
        (``dataclasses.replace``), it never edits one."""
        terms = self.forecast_terms
        if terms is not None and not terms.fits(
            self.forecast_mean, self.forecast_dispersion, self.serving_dc
        ):
            object.__setattr__(self, "forecast_terms", None)
        _freeze_arrays(self, _field_names(type(self)))
        object.__setattr__(
            self,
            "promotion_cells",
            {k: read_only(v) for k, v in self.promotion_cells.items()},
        )

    @property
    def n_locations(self) -> int:
        return len(self.location_ids)

    @property
    def n_skus(self) -> int:
        return len(self.sku_ids)

    @property
    def horizon(self) -> int:
        return int(self.forecast_mean.shape[0])

    @property
    def has_direct(self) -> bool:
        """Some store is supplied by suppliers directly (direct-store delivery)."""
        return self.direct is not None and bool(self.direct.any())

    @property
    def position(self) -> IntArray:
        """Inventory position per cell: on hand + in transit + on order (units)."""
        return self.on_hand + self.in_transit + self.on_order

    def forecast_var(self, mean: FloatArray) -> FloatArray:
        """Variance of daily demand with the given mean (negative binomial)."""
        return mean + mean**2 / self.forecast_dispersion


class ActionKind(IntEnum):
    PURCHASE = 0  # supplier -> DC, or -> a store it delivers to directly
    EXPEDITE = 1  # the same, faster and dearer
    SHIPMENT = 2  # DC -> store allocation
    TRANSFER = 3  # DC <-> DC or store <-> store


@dataclass(frozen=True)
class Plan:
    """A policy's actions, columnar (one row per line); ``reasons`` is indexed by ``reason``.

    ``origin`` is a supplier index for purchases and expedites, a location index otherwise.
    ``confidence`` is in [0, 1]: how sure the policy is that the line is needed.
    """

    policy: str
    kind: IntArray
    origin: IntArray
    destination: IntArray
    sku: IntArray
    qty: IntArray
    unit_cost: FloatArray
    confidence: FloatArray
    reason: IntArray
    reasons: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.qty)

    def select(self, mask: BoolArray) -> Plan:
        """The lines where ``mask`` is true (same reasons table).

        Lines of one kind usually sit together (a policy adds them together): a selection that is
        one run of lines shares the columns as views instead of copying them."""
        lines = np.flatnonzero(mask)
        rows: slice | npt.NDArray[np.int64] = lines
        if len(lines) and lines[-1] - lines[0] + 1 == len(lines):
            rows = slice(int(lines[0]), int(lines[-1]) + 1)
        cols = {c: getattr(self, c)[rows] for c in _COLUMNS}
        return Plan(policy=self.policy, reasons=self.reasons, **cols)

    @classmethod
    def concat(cls, policy: str, *plans: Plan) -> Plan:
        """The lines of ``plans`` in order, under ``policy``, with one merged reasons table."""
        reasons: list[str] = []
        cols: dict[str, list[npt.NDArray[Any]]] = {c: [] for c in _COLUMNS}
        for p in plans:
            for c in _COLUMNS:
                cols[c].append(getattr(p, c) + (len(reasons) if c == "reason" else 0))
            reasons += p.reasons
        joined = {c: np.concatenate(v) for c, v in cols.items()}
        return cls(policy=policy, reasons=tuple(reasons), **joined)

    def of_kind(self, kind: ActionKind) -> Plan:
        return self.select(self.kind == kind)

    def to_frame(self, snapshot: PlanningSnapshot) -> pd.DataFrame:
        """Readable table with ids instead of indices."""
        locs = np.asarray(snapshot.location_ids, dtype=object)
        sups = np.asarray(snapshot.supplier_ids, dtype=object)
        is_supplier = (self.kind == ActionKind.PURCHASE) | (self.kind == ActionKind.EXPEDITE)
        origin = np.where(
            is_supplier,
            sups[np.where(is_supplier, self.origin, 0)] if len(sups) else "",
            locs[np.where(is_supplier, 0, self.origin)],
        )
        return pd.DataFrame(
            {
                "kind": [ActionKind(k).name.lower() for k in self.kind],
                "origin": origin,
                "destination": locs[self.destination],
                "sku": np.asarray(snapshot.sku_ids, dtype=object)[self.sku],
                "qty": self.qty,
                "unit_cost": self.unit_cost,
                "confidence": self.confidence,
                "reason": np.asarray(self.reasons + ("",), dtype=object)[self.reason],
            }
        )


_COLUMNS = ("kind", "origin", "destination", "sku", "qty", "unit_cost", "confidence", "reason")


@dataclass
class PlanBuilder:
    """Collects action lines as arrays (no per-line Python objects) and freezes them into a Plan."""

    policy: str
    _parts: list[dict[str, npt.NDArray]] = field(default_factory=list)
    _reasons: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        kind: ActionKind,
        origin: npt.ArrayLike,
        destination: npt.ArrayLike,
        sku: npt.ArrayLike,
        qty: npt.ArrayLike,
        unit_cost: npt.ArrayLike,
        confidence: npt.ArrayLike,
        reason: str,
    ) -> None:
        """Add lines; scalars broadcast against ``qty``. Lines with qty <= 0 are dropped.

        The arrays are read when the plan is built (``build()`` copies them into the plan's
        columns once): do not change them in between."""
        q = np.atleast_1d(np.asarray(qty, dtype=np.int64))  # a scalar is one line
        keep = q > 0
        if not keep.any():
            return
        code = self._reasons.setdefault(reason, len(self._reasons))
        every = bool(keep.all())  # the usual case: no selection, views until build()
        n = len(q) if every else int(np.count_nonzero(keep))

        def col(x: npt.ArrayLike, dtype: type) -> npt.NDArray:
            if np.ndim(x) == 0:  # a scalar fills its column (no broadcast view: 8 a call)
                return np.full(n, x, dtype)
            a: npt.NDArray = np.asarray(x, dtype=dtype)
            if a.shape != q.shape:
                a = np.broadcast_to(a, q.shape)
            return a if every else a[keep]

        self._parts.append(
            {
                "kind": col(int(kind), np.int64),
                "origin": col(origin, np.int64),
                "destination": col(destination, np.int64),
                "sku": col(sku, np.int64),
                "qty": col(q, np.int64),
                "unit_cost": col(unit_cost, np.float64),
                "confidence": col(confidence, np.float64),
                "reason": col(code, np.int64),
            }
        )

    def build(self) -> Plan:
        if self._parts:
            cols = {c: np.concatenate([p[c] for p in self._parts]) for c in _COLUMNS}
            np.clip(cols["confidence"], 0.0, 1.0, out=cols["confidence"])
        else:
            cols = {
                c: np.zeros(0, np.float64 if c in ("unit_cost", "confidence") else np.int64)
                for c in _COLUMNS
            }
        return Plan(policy=self.policy, reasons=tuple(self._reasons), **cols)


@dataclass(frozen=True)
class RunContext:
    """What a policy is told when a run starts: the run's seed, length and first date."""

    seed: int
    days: int
    start_date: dt.date


@runtime_checkable
class Policy(Protocol):
    """Decides each day's actions from a snapshot; deterministic, no I/O.

    Run lifecycle: a policy that remembers anything between days (order points, a built model,
    kept forecast terms) defines ``start(context: RunContext) -> None``, which forgets it; the
    twin and the shadow runner call it (through ``start_run``) before a run's first
    ``decide()``, so one object reused gives the same results as a fresh one. A policy that
    remembers nothing needs no ``start``.
    """

    name: str
    horizon_days: int  # forecast days it needs in the snapshot

    def decide(self, snapshot: PlanningSnapshot) -> Plan: ...


def start_run(policy: Policy, context: RunContext) -> None:
    """Start ``policy``'s run: call its ``start(context)`` if it has one."""
    start = getattr(policy, "start", None)
    if start is not None:
        start(context)
