"""The replenishment LP for one SKU, written in Pyomo, one function per constraint family.

Every SKU of a supplier has the same LP structure (network, horizon, lead times, fill rate); only
data differ. So the Pyomo model is built once per supplier *for one SKU*, compiled to a sparse
standard form (``LinearStandardFormCompiler``), and a subproblem over many SKUs is the
block-diagonal copy of that template plus the rows the SKUs share (DC throughput, lane and
supplier capacity), assembled with numpy in :mod:`optimization.solver`. Each tick's
data (demand, stock, pipeline, capacities, costs) is pushed straight into the HiGHS instance as
bounds and costs; the Pyomo model is never rebuilt element by element.

Notation (units, days): ``inv[l,k]`` stock at the end of day ``day+k`` after demand and dispatch;
``sales[l,h]`` units served on day ``day+1+h``; ``order[d,e]``/``expedite[d,e]`` placed at the end
of day ``day+e`` at DC ``d``; ``direct[j,e]`` the same for a store ``j`` a supplier delivers to
directly (direct-store delivery); ``move[a,e]`` units dispatched on lane ``a`` at the end of
``day+e``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
import scipy.sparse as sp
from pyomo.repn import generate_standard_repn
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

from promotwin.optimization.types import FloatArray, IntArray, LaneKind, NetworkStructure

BALANCE = "balance"


def build_sku_model(net: NetworkStructure, supplier: int) -> pyo.ConcreteModel:
    """The one-SKU LP for an SKU of ``supplier``, with mutable placeholder data (all ones)."""
    m = pyo.ConcreteModel(name=f"replenishment_sku_supplier{supplier}")
    define_sets(m, net, supplier)
    define_parameters(m, net)
    define_variables(m)
    define_inventory_balance_constraints(m, net, supplier)
    define_dc_throughput_constraints(m, net)
    define_lane_capacity_constraints(m, net)
    define_supplier_capacity_constraints(m, net, supplier)
    define_objective(m, net)
    return m


def define_sets(m: pyo.ConcreteModel, net: NetworkStructure, supplier: int) -> None:
    """Locations, days and the decision epochs whose arrivals land inside the horizon."""
    T = net.horizon
    lead = int(net.lead_time[supplier])
    exp_lead = int(net.expedite_lead_time[supplier])
    m.LOC = pyo.Set(initialize=range(net.n_locations), ordered=True)
    m.DC = pyo.Set(initialize=range(net.n_dcs), ordered=True)
    m.DIRECT = pyo.Set(initialize=[int(j) for j in net.direct_stores], ordered=True)
    m.K = pyo.Set(initialize=range(T + 1), ordered=True)  # inventory days 0..T
    m.H = pyo.Set(initialize=range(T), ordered=True)  # demand days day+1..day+T
    m.E = pyo.Set(initialize=range(T), ordered=True)  # dispatch epochs
    m.ORDER_E = pyo.Set(initialize=[e for e in range(T) if e + lead <= T], ordered=True)
    expedite = [e for e in range(T) if exp_lead < lead and e + exp_lead <= T]
    m.EXPEDITE_E = pyo.Set(initialize=expedite, ordered=True)
    moves = [
        (a, e)
        for a in range(net.n_lanes)
        for e in range(T)
        if e + int(net.lane_transit[a]) <= T
        and (net.lane_kind[a] != LaneKind.TRANSFER or e < net.transfer_epochs)
    ]
    m.MOVE = pyo.Set(initialize=moves, dimen=2, ordered=True)
    m.LIMITED_LANE = pyo.Set(
        initialize=[a for a in range(net.n_lanes) if net.lane_limited[a]], ordered=True
    )


def define_parameters(m: pyo.ConcreteModel, net: NetworkStructure) -> None:
    """Mutable data (placeholders): the fast path overwrites them in the solver directly."""
    mutable = {"mutable": True, "initialize": 1.0}
    m.demand = pyo.Param(m.LOC, m.H, **mutable)  # units
    m.supply = pyo.Param(m.LOC, m.K, **mutable)  # k=0 on hand, k>=1 pipeline arrivals (units)
    m.throughput = pyo.Param(m.DC, m.E, **mutable)  # units per day
    m.lane_capacity = pyo.Param(m.LIMITED_LANE, m.E, **mutable)  # units per day
    m.supplier_capacity = pyo.Param(m.E, **mutable)  # units per day
    m.lost_sale_cost = pyo.Param(**mutable)  # currency per unit
    m.holding_cost = pyo.Param(**mutable)  # currency per unit per day
    m.expedite_premium = pyo.Param(**mutable)  # currency per unit
    m.order_cost = pyo.Param(**mutable)  # currency per unit (tie-breaker)
    m.store_holding_factor = pyo.Param(**mutable)
    m.lane_cost = pyo.Param(range(net.n_lanes), **mutable)  # currency per unit


def define_variables(m: pyo.ConcreteModel) -> None:
    """Stock, sales and the decisions (orders into DCs and direct into stores, expedites,
    moves), all non-negative units."""
    nonneg = pyo.NonNegativeReals
    m.inv = pyo.Var(m.LOC, m.K, domain=nonneg)
    m.sales = pyo.Var(m.LOC, m.H, bounds=lambda m, loc, h: (0, m.demand[loc, h]))
    m.order = pyo.Var(m.DC, m.ORDER_E, domain=nonneg)
    m.direct = pyo.Var(m.DIRECT, m.ORDER_E, domain=nonneg)
    m.expedite = pyo.Var(m.DC, m.EXPEDITE_E, domain=nonneg)
    m.move = pyo.Var(m.MOVE, domain=nonneg)


def define_inventory_balance_constraints(
    m: pyo.ConcreteModel, net: NetworkStructure, supplier: int
) -> None:
    """Stock flow per location and day (units).

    ``inv[l,0] + sum_{a: o(a)=l} move[a,0] = supply[l,0]`` (today's on hand), and for k = 1..T:
    ``inv[l,k] = inv[l,k-1] + supply[l,k] + f*order[l,k-lead] + f*expedite[l,k-lead_x]
    + sum_{a: d(a)=l} move[a,k-transit(a)] - sales[l,k-1] - sum_{a: o(a)=l} move[a,k]``
    where ``f`` is the supplier's fill rate and ``supply[l,k]`` the arrivals already planned;
    at a store supplied directly ``f*direct[l,k-lead]`` takes the place of the order term.
    Non-negative ``inv`` makes every dispatch come from stock on hand after that day's demand.
    """
    lead = int(net.lead_time[supplier])
    exp_lead = int(net.expedite_lead_time[supplier])
    fill = float(net.fill_rate[supplier])
    out_of: dict[tuple[int, int], list[int]] = {}
    into: dict[tuple[int, int], list[int]] = {}
    for a, e in m.MOVE:
        out_of.setdefault((int(net.lane_o[a]), e), []).append(a)
        into.setdefault((int(net.lane_d[a]), e + int(net.lane_transit[a])), []).append(a)

    def rule(m: pyo.ConcreteModel, loc: int, k: int) -> object:
        outflow = sum(m.move[a, k] for a in out_of.get((loc, k), ()))
        if k == 0:
            return m.inv[loc, 0] + outflow == m.supply[loc, 0]
        inflow = sum(m.move[a, k - int(net.lane_transit[a])] for a in into.get((loc, k), ()))
        if loc < net.n_dcs:
            if k - lead in m.ORDER_E:
                inflow += fill * m.order[loc, k - lead]
            if k - exp_lead in m.EXPEDITE_E:
                inflow += fill * m.expedite[loc, k - exp_lead]
        elif loc in m.DIRECT and k - lead in m.ORDER_E:
            inflow += fill * m.direct[loc, k - lead]
        stock_change = m.inv[loc, k] - m.inv[loc, k - 1]
        return stock_change - inflow + m.sales[loc, k - 1] + outflow == m.supply[loc, k]

    m.balance = pyo.Constraint(m.LOC, m.K, rule=rule)


def define_dc_throughput_constraints(m: pyo.ConcreteModel, net: NetworkStructure) -> None:
    """DC outbound handling per day, shared by all SKUs (units).

    ``sum_{a: o(a)=d} move[a,e] <= throughput[d,e]`` (store shipments and transfers out of DC d).
    """
    out_of: dict[tuple[int, int], list[int]] = {}
    for a, e in m.MOVE:
        if net.lane_o[a] < net.n_dcs:
            out_of.setdefault((int(net.lane_o[a]), e), []).append(a)

    def rule(m: pyo.ConcreteModel, d: int, e: int) -> object:
        lanes = out_of.get((d, e))
        if not lanes:
            return pyo.Constraint.Skip
        return sum(m.move[a, e] for a in lanes) <= m.throughput[d, e]

    m.throughput_limit = pyo.Constraint(m.DC, m.E, rule=rule)


def define_lane_capacity_constraints(m: pyo.ConcreteModel, net: NetworkStructure) -> None:
    """Lane capacity per day, shared by all SKUs, for lanes with a finite capacity (units).

    ``move[a,e] <= lane_capacity[a,e]``
    """

    def rule(m: pyo.ConcreteModel, a: int, e: int) -> object:
        if (a, e) not in m.MOVE:
            return pyo.Constraint.Skip
        return m.move[a, e] <= m.lane_capacity[a, e]

    m.lane_limit = pyo.Constraint(m.LIMITED_LANE, m.E, rule=rule)


def define_supplier_capacity_constraints(
    m: pyo.ConcreteModel, net: NetworkStructure, supplier: int
) -> None:
    """Supplier capacity per order day, shared by the supplier's SKUs (units).

    ``sum_d order[d,e] + expedite[d,e] + sum_j direct[j,e] <= supplier_capacity[e]``
    """
    if not net.supplier_limited[supplier]:
        return

    def rule(m: pyo.ConcreteModel, e: int) -> object:
        terms = [m.order[d, e] for d in m.DC if e in m.ORDER_E]
        terms += [m.expedite[d, e] for d in m.DC if e in m.EXPEDITE_E]
        terms += [m.direct[j, e] for j in m.DIRECT if e in m.ORDER_E]
        if not terms:
            return pyo.Constraint.Skip
        return sum(terms) <= m.supplier_capacity[e]

    m.supplier_limit = pyo.Constraint(m.E, rule=rule)


def define_objective(m: pyo.ConcreteModel, net: NetworkStructure) -> None:
    """Total cost over the horizon (currency), up to the constant ``lost_sale_cost * sum(demand)``.

    ``min sum_{l,h} -lost_sale_cost*sales[l,h] + sum_{l,k>=1} holding*w_l*inv[l,k]
    + sum_{a,e} lane_cost[a]*move[a,e] + sum_{d,e} expedite_premium*expedite[d,e]
    + order_cost*(order + direct + expedite)``, ``w_l`` = 1 at DCs and ``store_holding_factor``
    at stores.

    End-of-horizon valuation: purchases are not charged and sales not credited (the lost-sale
    penalty carries the margin), which values stock left at the horizon's end at its cost, so the
    plan has no reason to run shelves down before the end; the safety-stock increments in
    ``demand`` keep a buffer at the day each decision can first affect.
    """
    D = net.n_dcs

    def w(loc: int) -> object:
        return 1.0 if loc < D else m.store_holding_factor

    expr = (
        -m.lost_sale_cost * sum(m.sales[i, h] for i in m.LOC for h in m.H)
        + m.holding_cost * sum(w(i) * m.inv[i, k] for i in m.LOC for k in m.K if k >= 1)
        + sum(m.lane_cost[a] * m.move[a, e] for a, e in m.MOVE)
        + (m.expedite_premium + m.order_cost) * sum(m.expedite[d, e] for d, e in m.expedite)
        + m.order_cost * sum(m.order[d, e] for d, e in m.order)
    )
    if len(m.DIRECT):
        expr += m.order_cost * sum(m.direct[j, e] for j, e in m.direct)
    m.cost = pyo.Objective(expr=expr, sense=pyo.minimize)


@dataclass(frozen=True)
class SkuTemplate:
    """A compiled one-SKU LP: sparse rows, column/row index maps (-1 = absent), cost weights.

    Local rows (the balance) belong to one SKU; coupling rows (throughput, lane and supplier
    capacity) are shared across the SKUs of a subproblem and are keyed for merging.
    """

    supplier: int
    n_cols: int
    local: sp.coo_array  # [n_local_rows, n_cols]
    coupling: sp.coo_array  # [n_coupling_rows, n_cols]
    coupling_keys: tuple[tuple[str, int, int], ...]  # (family, index, epoch)
    col_inv: IntArray  # [L, T+1]
    col_sales: IntArray  # [L, T]
    col_order: IntArray  # [D, T]
    col_expedite: IntArray  # [D, T]
    col_move: IntArray  # [A, T]
    col_direct: IntArray  # [L, T] (-1 but at stores supplied directly)
    row_balance: IntArray  # [L, T+1] local row index
    w_lost: FloatArray  # [n_cols] objective weight of lost_sale_cost
    w_hold: FloatArray  # [n_cols] weight of holding_cost (DC stock)
    w_hold_store: FloatArray  # [n_cols] weight of holding_cost * store_holding_factor
    w_premium: FloatArray  # [n_cols] weight of expedite_premium
    w_order: FloatArray  # [n_cols] weight of order_cost
    w_lane: sp.csr_array  # [n_cols, A] weight of each lane cost

    @property
    def n_local_rows(self) -> int:
        return int(self.local.shape[0])


def compile_sku_template(net: NetworkStructure, supplier: int) -> SkuTemplate:
    """Build the one-SKU Pyomo model and compile it to arrays with index maps."""
    m = build_sku_model(net, supplier)
    L, D, T, A = net.n_locations, net.n_dcs, net.horizon, net.n_lanes
    columns = [m.inv[i] for i in m.inv] + [m.sales[i] for i in m.sales]
    columns += [m.order[i] for i in m.order] + [m.expedite[i] for i in m.expedite]
    columns += [m.move[i] for i in m.move] + [m.direct[i] for i in m.direct]
    info = LinearStandardFormCompiler().write(m, mixed_form=True, column_order=columns)
    col_of = {id(v): j for j, v in enumerate(info.columns)}
    n = len(info.columns)

    def index_map(var: pyo.Var, shape: tuple[int, int]) -> IntArray:
        out = np.full(shape, -1, np.int64)
        for idx in var:
            j = col_of.get(id(var[idx]))
            if j is not None:
                out[idx] = j
        return out

    col_inv = index_map(m.inv, (L, T + 1))
    col_sales = index_map(m.sales, (L, T))
    col_order = index_map(m.order, (D, T))
    col_expedite = index_map(m.expedite, (D, T))
    col_move = index_map(m.move, (A, T))
    col_direct = index_map(m.direct, (L, T))
    if (col_inv < 0).any() or (col_sales < 0).any():
        raise RuntimeError("compiled template lost stock or sales columns; check the model")

    A_csr = sp.csr_array(info.A)
    local_rows: list[int] = []
    coupling_rows: list[int] = []
    keys: list[tuple[str, int, int]] = []
    row_balance = np.full((L, T + 1), -1, np.int64)
    for r, (con, mult) in enumerate(info.rows):
        name = con.parent_component().local_name
        idx = con.index()
        if name == BALANCE:
            if mult != 0:
                raise RuntimeError("balance rows must compile as equalities")
            row_balance[idx] = len(local_rows)
            local_rows.append(r)
        else:
            if mult != 1:
                raise RuntimeError(f"{name} rows must compile as <= rows")
            if name == "throughput_limit":
                keys.append(("throughput", int(idx[0]), int(idx[1])))
            elif name == "lane_limit":
                keys.append(("lane", int(idx[0]), int(idx[1])))
            else:
                keys.append(("supplier", supplier, int(idx)))
            coupling_rows.append(r)

    lane_idx, _ = np.nonzero(col_move >= 0)
    lane_cols = col_move[col_move >= 0]
    lane_of_col = np.full(n, -1, np.int64)
    lane_of_col[lane_cols] = lane_idx
    weights = objective_weights(m, col_of, lane_of_col)
    w_lane = sp.csr_array((weights["lane"][lane_cols], (lane_cols, lane_idx)), shape=(n, A))
    return SkuTemplate(
        supplier=supplier,
        n_cols=n,
        local=sp.coo_array(A_csr[local_rows]),
        coupling=sp.coo_array(A_csr[coupling_rows]) if coupling_rows else sp.coo_array((0, n)),
        coupling_keys=tuple(keys),
        col_inv=col_inv,
        col_sales=col_sales,
        col_order=col_order,
        col_expedite=col_expedite,
        col_move=col_move,
        col_direct=col_direct,
        row_balance=row_balance,
        w_lost=weights["lost"],
        w_hold=weights["hold"],
        w_hold_store=weights["hold_store"],
        w_premium=weights["premium"],
        w_order=weights["order"],
        w_lane=w_lane,
    )


COST_PARAMETERS = (
    "lost_sale_cost",
    "holding_cost",
    "store_holding_factor",
    "expedite_premium",
    "order_cost",
)


def objective_weights(
    m: pyo.ConcreteModel, col_of: dict[int, int], lane_of_col: IntArray
) -> dict[str, FloatArray]:
    """Per column, the weight of each cost parameter in ``m.cost``, read from the model so the
    objective is written once (:func:`define_objective`).

    The solver prices column ``j`` as ``lost_sale_cost*lost + holding_cost*(hold +
    store_holding_factor*hold_store) + expedite_premium*premium + order_cost*order +
    lane_cost[lane_of_col[j]]*lane``. Each weight is the objective's coefficients with its
    parameter at 1 and the others at 0; one probe at distinct values then checks that this
    formula reproduces the objective, so a cost term the solver does not price fails here.
    The parameters are left at their placeholder 1.
    """
    n = len(lane_of_col)
    n_lanes = len(m.lane_cost)

    def coefficients(values: dict[str, float], lane: FloatArray) -> FloatArray:
        for name in COST_PARAMETERS:
            getattr(m, name).set_value(values.get(name, 0.0))
        m.lane_cost.store_values(dict(enumerate(lane.tolist())))
        repn = generate_standard_repn(m.cost.expr, compute_values=True, quadratic=False)
        c = np.zeros(n)
        for var, coef in zip(repn.linear_vars, repn.linear_coefs, strict=True):
            c[col_of[id(var)]] += coef
        return c

    no_lane = np.zeros(n_lanes)
    hold = coefficients({"holding_cost": 1.0}, no_lane)
    weights = {
        "lost": coefficients({"lost_sale_cost": 1.0}, no_lane),
        "hold": hold,
        "hold_store": coefficients({"holding_cost": 1.0, "store_holding_factor": 1.0}, no_lane)
        - hold,
        "premium": coefficients({"expedite_premium": 1.0}, no_lane),
        "order": coefficients({"order_cost": 1.0}, no_lane),
        "lane": coefficients({}, np.ones(n_lanes)),
    }
    probe = dict(zip(COST_PARAMETERS, (2.0, 3.0, 5.0, 7.0, 11.0), strict=True))
    lane_probe = 13.0 + np.arange(n_lanes, dtype=np.float64)
    lane_price = np.append(lane_probe, 0.0)[lane_of_col]  # -1 (not a move) picks the 0
    priced = (
        probe["lost_sale_cost"] * weights["lost"]
        + probe["holding_cost"]
        * (weights["hold"] + probe["store_holding_factor"] * weights["hold_store"])
        + probe["expedite_premium"] * weights["premium"]
        + probe["order_cost"] * weights["order"]
        + lane_price * weights["lane"]
    )
    actual = coefficients(probe, lane_probe)
    for name in COST_PARAMETERS:
        getattr(m, name).set_value(1.0)
    m.lane_cost.store_values(1.0)
    if not np.allclose(actual, priced, rtol=1e-12, atol=1e-12):
        bad = int(np.argmax(np.abs(actual - priced)))
        raise RuntimeError(
            f"the objective prices column {bad} at {actual[bad]:g} but the solver's cost formula "
            f"gives {priced[bad]:g}: update objective_weights() for the new cost term"
        )
    return weights
