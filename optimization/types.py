"""Plain-data inputs and typed results of the replenishment model (arrays only, no SimPy).

Time: the plan is made at the end of day ``day`` (after its demand). Epoch ``e`` (0..T-1) is a
dispatch at the end of day ``day + e``; demand index ``h`` (0..T-1) is day ``day + 1 + h``;
inventory index ``k`` (0..T) is stock after demand and dispatch at the end of day ``day + k``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from promotwin.arrays import UNLIMITED as UNLIMITED
from promotwin.arrays import BoolArray, FloatArray, IntArray


class LaneKind(enum.IntEnum):
    """What a lane is used for in the model."""

    SHIPMENT = 0  # DC -> a store it serves
    TRANSFER = 1  # DC <-> DC or store <-> store


@dataclass(frozen=True)
class NetworkStructure:
    """What fixes the shape of the LP; a change here means a rebuild (anything else is data).

    Lanes are the usable ones only (shipments on serving lanes, candidate transfer lanes).
    ``transfer_epochs`` limits transfers to the first few dispatch days (they are re-planned
    every tick; later ones only shape the plan). Lead times are whole days, at least 1.
    """

    n_locations: int
    n_dcs: int
    horizon: int  # T days
    lane_o: IntArray  # [A] origin location index
    lane_d: IntArray  # [A] destination location index
    lane_transit: IntArray  # [A] days
    lane_kind: IntArray  # [A] LaneKind
    lane_limited: BoolArray  # [A] capacity below UNLIMITED -> a shared capacity row
    lead_time: IntArray  # [V] regular supplier lead time, days
    expedite_lead_time: IntArray  # [V] days (expedites exist only where shorter than lead_time)
    fill_rate: FloatArray  # [V] expected share of ordered units delivered
    supplier_limited: BoolArray  # [V] capacity below UNLIMITED -> a shared capacity row
    transfer_epochs: int = 3
    # stores a supplier delivers to directly (location indices): they order like a DC, at the
    # supplier's lead time and fill rate, within its capacity
    direct_stores: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def n_lanes(self) -> int:
        return len(self.lane_o)

    def key(self) -> tuple[object, ...]:
        """Hashable identity: equal keys mean the same LP structure."""
        arrays = (
            self.lane_o,
            self.lane_d,
            self.lane_transit,
            self.lane_kind,
            self.lane_limited,
            self.lead_time,
            self.expedite_lead_time,
            np.round(self.fill_rate, 6),
            self.supplier_limited,
        )
        return (
            self.n_locations,
            self.n_dcs,
            self.horizon,
            self.transfer_epochs,
            *(tuple(np.asarray(a).tolist()) for a in arrays),
            tuple(np.asarray(self.direct_stores).tolist()),
        )


@dataclass(frozen=True)
class TickInputs:
    """One tick's data, pushed into the built model in place (units, currency, days)."""

    demand: FloatArray  # [T, L, S] planned demand per day (mean + safety-stock increments)
    supply: FloatArray  # [T+1, L, S] k=0: on hand; k>=1: expected arrivals already in the pipeline
    dc_throughput: FloatArray  # [D, T] outbound units per dispatch day
    lane_capacity: FloatArray  # [A, T] units per dispatch day
    supplier_capacity: FloatArray  # [V, T] units ordered per day
    lane_cost: FloatArray  # [A] currency per unit moved
    lost_sale_cost: FloatArray  # [S] currency per unit of demand not served
    holding_cost: FloatArray  # [S] currency per unit per day
    expedite_premium: FloatArray  # [S] extra currency per expedited unit
    sku_supplier: IntArray  # [S]
    store_holding_factor: float = 1.05  # stores hold dearer than DCs: keep stock pooled upstream
    order_cost: float = (
        1e-4  # tie-breaker per ordered unit (currency): order no earlier than needed
    )


class TerminationStatus(enum.Enum):
    """Solver outcome; anything but OPTIMAL is a failure the policy falls back from."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"
    ITERATION_LIMIT = "iteration_limit"
    NUMERICAL = "numerical"
    ERROR = "error"

    @property
    def ok(self) -> bool:
        return self is TerminationStatus.OPTIMAL


@dataclass(frozen=True)
class GroupResult:
    """One subproblem's solve."""

    skus: IntArray
    status: TerminationStatus
    objective: float  # currency over the horizon, including the lost-sale constant
    solve_seconds: float
    iterations: int
    n_columns: int
    n_rows: int


@dataclass(frozen=True)
class SolveResult:
    """A tick's solve: status, objective, timings and the day-0 decisions ([location/lane, sku]).

    ``objective`` is the plan's total cost over the horizon (lost-sale penalty + holding +
    transport + expedite premiums, currency); ``gap`` is the relative MIP/LP gap (0 for a
    solved LP). Decisions of SKUs in ``failed_skus`` are zero and must not be executed.
    """

    status: TerminationStatus
    objective: float
    gap: float
    build_seconds: float  # structure build on this tick (0 when the model was reused)
    update_seconds: float  # pushing this tick's data into the solver instances
    solve_seconds: float
    extract_seconds: float
    order: FloatArray  # [D, S] regular supplier orders dispatched today (gross units)
    expedite: FloatArray  # [D, S]
    move: FloatArray  # [A, S] lane flows dispatched today
    planned_lost: FloatArray  # [L, S] planned unserved demand over the horizon
    # [L, S] regular supplier orders placed today direct to stores (rows of other locations 0)
    direct: FloatArray | None = None
    groups: tuple[GroupResult, ...] = ()
    failed_skus: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    message: str = ""

    @property
    def n_columns(self) -> int:
        return sum(g.n_columns for g in self.groups)

    @property
    def n_rows(self) -> int:
        return sum(g.n_rows for g in self.groups)

    @property
    def total_seconds(self) -> float:
        return self.build_seconds + self.update_seconds + self.solve_seconds + self.extract_seconds
