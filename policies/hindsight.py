"""The perfect-information bound: an LP that knows the realised demand of the whole horizon.

No policy can do better, because the LP is a relaxation of what any policy can do in the twin:

- suppliers deliver any quantity to a DC from the earliest day any order could have landed
  (the shortest realised lead time or the expedite lead time), free and in full: ordering,
  expedite premiums and short deliveries are left out (they only add cost to a policy);
- shared capacities (DC throughput, lanes, suppliers) are dropped, so the LP splits by SKU;
- the rest is the twin's day: receipts, then demand (store walk-in + pickup from the store,
  ecommerce from the DC or its ship-from-store stores), then stock is held (holding cost on
  the stock after sales, before dispatch, as the twin books it), then dispatch on the lanes
  (lane cost per unit, arriving ``transit_days`` later);
- costs count from ``warmup_days`` on, as the KPIs do; a lost unit costs the margin at the
  day's selling price (promotion depth included) plus the goodwill penalty.

Objective per SKU ``s``: ``min sum_t [t >= w] (h_s sum_l x_tl + sum_a c_a y_ta
+ sum_l lc_tl (D_tl - sold_tl))`` subject to the stock balance
``e_tl = e_(t-1)l + arrivals_tl - sold_tl - sfs_tl - out_tl >= 0``, ``x_tl = e_tl + out_tl``.
Solved with HiGHS (scipy's interface to it, sparse arrays: see RECIPES, the fastest layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from promotwin.policies.contract import FloatArray, IntArray


@dataclass(frozen=True)
class HindsightInputs:
    """Everything the bound needs, as arrays (units, currency, days)."""

    demand: IntArray  # [T, L, S] realised demand served from each location (DC rows: ecommerce)
    opening: IntArray  # [L, S] on hand at the start of day 0
    n_dcs: int
    serving_dc: IntArray  # [L] the DC of each store
    ship_from_store: np.ndarray  # [L] bool: the store may fill its DC's ecommerce
    lane_o: IntArray  # [A]
    lane_d: IntArray  # [A]
    lane_transit: IntArray  # [A] days
    lane_cost: FloatArray  # [A] currency per unit
    first_arrival: IntArray  # [S] first day a supplier delivery can land at a DC
    holding_cost: FloatArray  # [S] currency per unit per day
    lost_sale_cost: FloatArray  # [T, L, S] currency per unit of demand lost
    warmup_days: int = 0


@dataclass(frozen=True)
class HindsightBound:
    total_cost: float
    holding_cost: float
    transport_cost: float
    lost_sale_cost: float
    lost_sales_units: float

    def kpis(self) -> dict[str, float]:
        return {
            "total_cost": self.total_cost,
            "holding_cost": self.holding_cost,
            "transport_cost": self.transport_cost,
            "lost_sale_cost": self.lost_sale_cost,
            "lost_sales_units": self.lost_sales_units,
        }


class HindsightError(RuntimeError):
    """HiGHS did not solve the bound's LP (it is always feasible: losing all demand is)."""


def hindsight_bound(inp: HindsightInputs) -> HindsightBound:
    """The bound, one LP per SKU, summed."""
    parts = [_solve_sku(inp, s) for s in range(inp.demand.shape[2])]
    holding, transport, lost_cost, lost = (float(sum(p[i] for p in parts)) for i in range(4))
    return HindsightBound(holding + transport + lost_cost, holding, transport, lost_cost, lost)


def _solve_sku(inp: HindsightInputs, s: int) -> tuple[float, float, float, float]:
    """(holding, transport, lost-sale cost, lost units) of SKU ``s``'s optimum."""
    demand = inp.demand[:, :, s].astype(np.float64)
    n_t, n_l = demand.shape
    nd = inp.n_dcs
    sfs = np.flatnonzero(inp.ship_from_store[nd:]) + nd
    n_a = len(inp.lane_o)
    counted = (np.arange(n_t) >= inp.warmup_days).astype(np.float64)
    # variable blocks, each [T, width]: end stock e, sales sold, ship-from-store f, lanes y,
    # supplier arrivals z (DC rows)
    widths = {"e": n_l, "sold": n_l, "f": len(sfs), "y": n_a, "z": nd}
    start, offset = {}, 0
    for name, w in widths.items():
        start[name] = offset
        offset += n_t * w

    def var(name: str, t: IntArray | int, j: IntArray | int) -> IntArray:
        return np.asarray(start[name] + np.asarray(t) * widths[name] + np.asarray(j))

    t_idx = np.arange(n_t)
    tt, ll = np.meshgrid(t_idx, np.arange(n_l), indexing="ij")
    cost = np.zeros(offset)
    upper = np.full(offset, np.inf)
    h = inp.holding_cost[s]
    lc = inp.lost_sale_cost[:, :, s]
    # holding on x = e + out: h on e, and h on each lane's units at its origin
    cost[var("e", tt, ll).ravel()] = (h * counted[:, None] * np.ones(n_l)).ravel()
    cost[var("sold", tt, ll).ravel()] = (-lc * counted[:, None]).ravel()
    upper[var("sold", tt, ll).ravel()] = demand.ravel()
    if len(sfs):
        ts, js = np.meshgrid(t_idx, np.arange(len(sfs)), indexing="ij")
        # a ship-from-store unit saves the DC row's lost-sale cost
        dc_of = inp.serving_dc[sfs]
        cost[var("f", ts, js).ravel()] = (-lc[:, dc_of] * counted[:, None]).ravel()
    ta, aa = np.meshgrid(t_idx, np.arange(n_a), indexing="ij")
    cost[var("y", ta, aa).ravel()] = ((inp.lane_cost + h) * counted[:, None]).ravel()
    tz, dz = np.meshgrid(t_idx, np.arange(nd), indexing="ij")
    upper[var("z", tz, dz).ravel()] = np.where(tz >= inp.first_arrival[s], np.inf, 0.0).ravel()

    rows: list[IntArray] = []
    cols: list[IntArray] = []
    vals: list[FloatArray] = []

    def add(r: IntArray, c: IntArray, v: float) -> None:
        rows.append(np.asarray(r).ravel())
        cols.append(np.asarray(c).ravel())
        vals.append(np.full(np.asarray(r).size, v))

    # balance row (t, l): e_tl - e_(t-1)l + sold_tl + f_tl + out_tl - in_tl - z_tl = 0 (+ opening)
    bal = tt * n_l + ll
    add(bal, var("e", tt, ll), 1.0)
    add(bal[1:], var("e", tt[:-1], ll[:-1]), -1.0)
    add(bal, var("sold", tt, ll), 1.0)
    if len(sfs):
        add(ts * n_l + sfs[js], var("f", ts, js), 1.0)
    add(ta * n_l + inp.lane_o[aa], var("y", ta, aa), 1.0)
    arrive = ta + inp.lane_transit[aa]
    ok = arrive < n_t
    add(arrive[ok] * n_l + inp.lane_d[aa][ok], var("y", ta[ok], aa[ok]), -1.0)
    add(tz * n_l + dz, var("z", tz, dz), -1.0)
    b_eq = np.zeros(n_t * n_l)
    b_eq[:n_l] = inp.opening[:, s]
    a_eq = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_t * n_l, offset),
    )
    # ecommerce: the DC's sales and its stores' ship-from-store together meet at most its demand
    a_ub = b_ub = None
    if len(sfs):
        r_dc = tz * nd + dz
        ub_rows = [r_dc.ravel(), (ts * nd + inp.serving_dc[sfs][js]).ravel()]
        ub_cols = [var("sold", tz, dz).ravel(), var("f", ts, js).ravel()]
        a_ub = sparse.csr_matrix(
            (
                np.ones(sum(len(r) for r in ub_rows)),
                (np.concatenate(ub_rows), np.concatenate(ub_cols)),
            ),
            shape=(n_t * nd, offset),
        )
        b_ub = demand[:, :nd].ravel()
    res = linprog(
        cost,
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=a_eq,
        b_eq=b_eq,
        bounds=np.column_stack([np.zeros(offset), upper]),
        method="highs",
    )
    if res.status != 0:
        raise HindsightError(f"HiGHS did not solve SKU {s}'s hindsight LP: {res.message}")
    x = res.x
    w = counted[:, None]
    e = x[var("e", tt, ll)]
    y = x[var("y", ta, aa)]
    sold = x[var("sold", tt, ll)]
    served = sold.copy()
    if len(sfs):
        f = x[var("f", ts, js)]
        np.add.at(served, (ts, inp.serving_dc[sfs][js]), f)
    lost = demand - served
    holding = float(h * ((e * w).sum() + (y * w).sum()))
    transport = float((y * inp.lane_cost[None, :] * w).sum())
    lost_cost = float((lost * lc * w).sum())
    return holding, transport, lost_cost, float((lost * w).sum())
