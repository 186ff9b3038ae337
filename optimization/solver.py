"""Subproblem assembly, persistent HiGHS instances, in-place updates and extraction.

Pipeline per tick: (built once) templates -> groups -> HiGHS instances; each tick:
capacity shares -> push bounds/costs -> solve (warm-started) -> extract day-0 decisions.

Groups are solved on a thread pool (HiGHS releases the GIL while it solves); every group has
its own HiGHS instance and the results are merged in group order, so plans do not depend on
the number of workers or on scheduling. A group without a basis (the first tick, or after a
failed solve) starts from a crash basis: every SKU of a supplier has the same LP structure, so
the optimal basis of one representative SKU, copied into every SKU block of the group, is a
valid starting basis close to each SKU's optimum (measured: a third of the cold solve's time).

Decomposition: SKUs are split into groups (by supplier, at most ``max_cells`` location x SKU
cells each). Groups only interact through shared capacities (DC throughput, lane and supplier
capacity per day). Coordination: every group is first solved with shared capacities relaxed
(together a lower bound on the monolithic optimum); if no capacity is exceeded in total, that is
the optimum of the whole. Otherwise each capacity is split among the groups in proportion to
what they used of it and the groups are re-solved (warm-started), so every group's plan is
feasible for the whole; a group whose relaxed plan already fits inside its share keeps it (it is
optimal for the restricted LP too). One group of all SKUs is the monolithic model.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import highspy
import numpy as np
import scipy.sparse as sp

from promotwin.optimization.model import SkuTemplate, compile_sku_template
from promotwin.optimization.types import (
    FloatArray,
    GroupResult,
    IntArray,
    NetworkStructure,
    SolveResult,
    TerminationStatus,
    TickInputs,
)

INF = highspy.kHighsInf
BASIC = highspy.HighsBasisStatus.kBasic
_T = TypeVar("_T")
_R = TypeVar("_R")
_STATUS = {
    highspy.HighsModelStatus.kOptimal: TerminationStatus.OPTIMAL,
    highspy.HighsModelStatus.kModelEmpty: TerminationStatus.OPTIMAL,
    highspy.HighsModelStatus.kInfeasible: TerminationStatus.INFEASIBLE,
    highspy.HighsModelStatus.kUnboundedOrInfeasible: TerminationStatus.INFEASIBLE,
    highspy.HighsModelStatus.kUnbounded: TerminationStatus.UNBOUNDED,
    highspy.HighsModelStatus.kTimeLimit: TerminationStatus.TIME_LIMIT,
    highspy.HighsModelStatus.kIterationLimit: TerminationStatus.ITERATION_LIMIT,
    highspy.HighsModelStatus.kUnknown: TerminationStatus.NUMERICAL,
}


def quiet_highs() -> highspy.Highs:
    """A silent HiGHS instance.

    HiGHS prints its banner from C++ on the first construction in a process, before any option
    can be set; it would corrupt progress bars and anything piped from stdout, so the process's
    stdout file descriptor points at /dev/null while the instance is built.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
    h.setOptionValue("output_flag", False)
    return h


def make_sku_groups(sku_supplier: IntArray, n_locations: int, max_cells: int) -> list[IntArray]:
    """SKUs split by supplier into balanced chunks of at most ``max_cells // n_locations`` SKUs."""
    per = max(1, int(max_cells) // max(1, n_locations))
    groups: list[IntArray] = []
    for v in np.unique(sku_supplier):
        skus = np.flatnonzero(sku_supplier == v).astype(np.int64)
        n_chunks = int(np.ceil(len(skus) / per))
        groups.extend(np.array_split(skus, n_chunks))
    return groups


@dataclass(frozen=True)
class _Chunk:
    """SKUs of one template laid out contiguously inside a group."""

    template: SkuTemplate
    skus: IntArray  # global SKU indices
    col_start: int
    row_start: int

    @property
    def n(self) -> int:
        return len(self.skus)

    def cols(self, local: IntArray) -> IntArray:
        """Group column index of template column ``local`` for each SKU: [n, *local.shape]."""
        off = self.col_start + np.arange(self.n) * self.template.n_cols
        return off.reshape((-1,) + (1,) * local.ndim) + local[None]


class SubProblem:
    """One group's LP in a persistent HiGHS instance, updated in place every tick."""

    def __init__(
        self,
        skus: IntArray,
        templates: dict[int, SkuTemplate],
        sku_supplier: IntArray,
        net: NetworkStructure,
        time_limit: float,
    ):
        order = np.argsort(sku_supplier[skus], kind="stable")
        skus = np.asarray(skus, np.int64)[order]
        self.skus = skus
        self.net = net
        chunks: list[_Chunk] = []
        col = row = 0
        for v in np.unique(sku_supplier[skus]):
            t = templates[int(v)]
            part = skus[sku_supplier[skus] == v]
            chunks.append(_Chunk(t, part, col, row))
            col += len(part) * t.n_cols
            row += len(part) * t.n_local_rows
        self.chunks = chunks
        self.n_cols = col
        self.n_local = row
        keys: dict[tuple[str, int, int], int] = {}
        for c in chunks:
            for k in c.template.coupling_keys:
                keys.setdefault(k, len(keys))
        self.coupling_keys = tuple(keys)
        self.n_rows = row + len(keys)
        fam = np.array([k[0] for k in self.coupling_keys], dtype=object)
        self._key_family = fam
        self._key_index = np.array([k[1] for k in self.coupling_keys], np.int64)
        self._key_epoch = np.array([k[2] for k in self.coupling_keys], np.int64)

        rows, cols, vals = [], [], []
        for c in chunks:
            t = c.template
            n = c.n
            roff = c.row_start + np.arange(n)[:, None] * t.n_local_rows
            coff = c.col_start + np.arange(n)[:, None] * t.n_cols
            rows.append((roff + t.local.row[None]).ravel())
            cols.append((coff + t.local.col[None]).ravel())
            vals.append(np.broadcast_to(t.local.data, (n, t.local.nnz)).ravel())
            if t.coupling.nnz:
                remap = np.array([keys[k] for k in t.coupling_keys], np.int64) + self.n_local
                rows.append(np.broadcast_to(remap[t.coupling.row], (n, t.coupling.nnz)).ravel())
                cols.append((coff + t.coupling.col[None]).ravel())
                vals.append(np.broadcast_to(t.coupling.data, (n, t.coupling.nnz)).ravel())
        A = sp.csc_array(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(self.n_rows, self.n_cols),
        )
        A.sort_indices()
        self._sales_cols = np.concatenate([c.cols(c.template.col_sales).ravel() for c in chunks])
        self._balance_rows = np.concatenate(
            [
                (
                    c.row_start
                    + np.arange(c.n)[:, None, None] * c.template.n_local_rows
                    + c.template.row_balance[None]
                ).ravel()
                for c in chunks
            ]
        )

        self.time_limit = float(time_limit)  # seconds per solve
        h = quiet_highs()
        h.setOptionValue("solver", "simplex")
        h.setOptionValue("simplex_strategy", 1)  # dual simplex: warm starts after bound changes
        h.setOptionValue("threads", 1)  # the model runs groups in parallel, one thread each
        lp = highspy.HighsLp()
        lp.num_col_ = self.n_cols
        lp.num_row_ = self.n_rows
        lp.col_cost_ = np.zeros(self.n_cols)
        lp.col_lower_ = np.zeros(self.n_cols)
        lp.col_upper_ = np.full(self.n_cols, INF)
        lp.row_lower_ = np.concatenate([np.zeros(self.n_local), np.full(len(keys), -INF)])
        lp.row_upper_ = np.concatenate([np.zeros(self.n_local), np.full(len(keys), INF)])
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = A.indptr.astype(np.int32)
        lp.a_matrix_.index_ = A.indices.astype(np.int32)
        lp.a_matrix_.value_ = A.data
        h.passModel(lp)
        self.highs = h
        self._all_cols = np.arange(self.n_cols, dtype=np.int32)
        self._all_rows = np.arange(self.n_rows, dtype=np.int32)
        self._constant = 0.0
        self._costs: FloatArray | None = None  # last pushed, to push only when they change
        self.has_basis = False  # a basis from an earlier solve (or a crash basis) is loaded

    @property
    def suppliers(self) -> list[int]:
        return [c.template.supplier for c in self.chunks]

    def set_time_limit(self, seconds: float) -> None:
        self.time_limit = float(seconds)

    def push(self, x: TickInputs) -> None:
        """Write this tick's data into the HiGHS instance (bounds, right-hand sides, costs)."""
        sk = self.skus
        # sales <= planned demand, per SKU block: demand[h, l, s] -> [s, l, h]
        demand = np.concatenate(
            [x.demand[:, :, c.skus].transpose(2, 1, 0).ravel() for c in self.chunks]
        )
        self.highs.changeColsBounds(
            len(self._sales_cols),
            self._sales_cols.astype(np.int32),
            np.zeros(len(self._sales_cols)),
            demand,
        )
        supply = np.concatenate(
            [x.supply[:, :, c.skus].transpose(2, 1, 0).ravel() for c in self.chunks]
        )
        row_lo = np.empty(self.n_rows)
        row_hi = np.empty(self.n_rows)
        row_lo[self._balance_rows] = supply
        row_hi[self._balance_rows] = supply
        row_lo[self.n_local :] = -INF
        row_hi[self.n_local :] = INF  # shared capacities relaxed; see set_shared_capacity
        self.highs.changeRowsBounds(self.n_rows, self._all_rows, row_lo, row_hi)  # type: ignore[attr-defined]
        lane_w = np.zeros(0)
        costs = []
        for c in self.chunks:
            t = c.template
            lane_w = t.w_lane @ x.lane_cost
            s = c.skus
            cost = (
                x.lost_sale_cost[s, None] * t.w_lost[None]
                + x.holding_cost[s, None]
                * (t.w_hold + x.store_holding_factor * t.w_hold_store)[None]
                + x.expedite_premium[s, None] * t.w_premium[None]
                + (x.order_cost * t.w_order + lane_w)[None]
            )
            costs.append(cost.ravel())
        new_costs = np.concatenate(costs)
        if self._costs is None or not np.array_equal(new_costs, self._costs):
            self.highs.changeColsCost(self.n_cols, self._all_cols, new_costs)
            self._costs = new_costs
        self._constant = float((x.lost_sale_cost[sk] * x.demand[:, :, sk].sum(axis=(0, 1))).sum())

    def shared_capacity(self, x: TickInputs) -> FloatArray:
        """Whole-network capacity of each shared row (units per day)."""
        fam, idx, ep = self._key_family, self._key_index, self._key_epoch
        cap = np.full(len(fam), INF)
        for name, table in (
            ("throughput", x.dc_throughput),
            ("lane", x.lane_capacity),
            ("supplier", x.supplier_capacity),
        ):
            m = fam == name
            if m.any():
                cap[m] = table[idx[m], ep[m]]
        return cap

    def set_shared_capacity(self, rhs: FloatArray) -> None:
        """This group's share of each shared row (units per day)."""
        n = len(rhs)
        if n:
            rows = np.arange(self.n_local, self.n_rows, dtype=np.int32)
            self.highs.changeRowsBounds(  # type: ignore[attr-defined]
                n, rows, np.full(n, -INF), np.asarray(rhs, np.float64)
            )

    def shared_usage(self) -> FloatArray:
        """What the current solution uses of each shared row (units per day)."""
        if self.n_rows == self.n_local:
            return np.zeros(0)
        return np.asarray(self.highs.getSolution().row_value)[self.n_local :]

    def fits(self, rhs: FloatArray) -> bool:
        """Whether the current solution uses at most ``rhs`` of every shared row."""
        return bool((self.shared_usage() <= rhs * (1 + 1e-9) + 1e-6).all())

    def run(self) -> tuple[TerminationStatus, float, int, float]:
        """Solve; returns status, objective (with constant), simplex iterations, seconds."""
        t0 = time.perf_counter()
        # HiGHS measures its time limit on a clock that runs across every solve of the
        # instance: the limit is set past the time already spent, so it applies per solve
        self.highs.setOptionValue("time_limit", self.highs.getRunTime() + self.time_limit)
        try:
            self.highs.run()
            status = _STATUS.get(self.highs.getModelStatus(), TerminationStatus.ERROR)
        except Exception:  # noqa: BLE001 - a solver crash is a failure like any other
            status = TerminationStatus.ERROR
        seconds = time.perf_counter() - t0
        info = self.highs.getInfo()
        objective = float(info.objective_function_value) + self._constant
        self.has_basis = status.ok
        if not status.ok:
            self.highs.clearSolver()  # next tick starts afresh rather than from a broken basis
            objective = float("nan")
        return status, objective, int(info.simplex_iteration_count), seconds

    def sku_basis(self) -> tuple[list[highspy.HighsBasisStatus], list[highspy.HighsBasisStatus]]:
        """The solved basis of a one-SKU subproblem: column and balance-row statuses."""
        if len(self.skus) != 1:
            raise ValueError("sku_basis() is for one-SKU subproblems")
        basis = self.highs.getBasis()
        return list(basis.col_status), list(basis.row_status)[: self.n_local]

    def set_crash_basis(
        self,
        sku_bases: dict[int, tuple[list[highspy.HighsBasisStatus], list[highspy.HighsBasisStatus]]],
    ) -> None:
        """Start from each supplier's one-SKU basis copied into every SKU block, shared rows'
        slacks basic: as many basic variables as rows and block-triangular, so a valid basis."""
        cols: list[highspy.HighsBasisStatus] = []
        rows: list[highspy.HighsBasisStatus] = []
        for c in self.chunks:
            col, row = sku_bases[c.template.supplier]
            cols += col * c.n
            rows += row * c.n
        basis = highspy.HighsBasis()
        basis.col_status = cols
        basis.row_status = rows + [BASIC] * (self.n_rows - self.n_local)
        basis.valid = True
        self.has_basis = self.highs.setBasis(basis) == highspy.HighsStatus.kOk

    def extract(self, out: dict[str, FloatArray]) -> None:
        """Add today's decisions and planned lost sales of this group into ``out`` arrays."""
        x = np.asarray(self.highs.getSolution().col_value)
        for c in self.chunks:
            t = c.template
            for name, local in (
                ("order", t.col_order[:, 0]),
                ("expedite", t.col_expedite[:, 0]),
                ("move", t.col_move[:, 0]),
                ("direct", t.col_direct[:, 0]),
            ):
                present = local >= 0
                if present.any():
                    cols = c.cols(local[present])  # [n, k]
                    out[name][np.ix_(np.flatnonzero(present), c.skus)] = x[cols].T
            sales = x[c.cols(t.col_sales)]  # [n, L, T]
            demand_cols = sales.sum(axis=2)
            out["sales"][:, c.skus] = demand_cols.T


class ReplenishmentModel:
    """The whole tick model: templates built once, groups in persistent HiGHS instances.

    ``groups=None`` means one monolithic subproblem over all SKUs. ``workers`` threads solve the
    groups (1: in the calling thread); the plans are the same for any number of workers.
    ``crash_start``: a group without a basis starts from its suppliers' one-SKU bases.
    """

    def __init__(
        self,
        net: NetworkStructure,
        sku_supplier: IntArray,
        groups: list[IntArray] | None = None,
        *,
        time_limit: float = 30.0,
        workers: int = 1,
        crash_start: bool = True,
    ):
        t0 = time.perf_counter()
        self.net = net
        self.sku_supplier = np.asarray(sku_supplier, np.int64)
        n_skus = len(self.sku_supplier)
        if groups is None:
            groups = [np.arange(n_skus, dtype=np.int64)]
        covered = np.sort(np.concatenate(groups)) if groups else np.zeros(0, np.int64)
        if not np.array_equal(covered, np.arange(n_skus)):
            raise ValueError("groups must partition the SKUs: every SKU exactly once")
        self.templates = {
            int(v): compile_sku_template(net, int(v)) for v in np.unique(self.sku_supplier)
        }
        self.subproblems = [
            SubProblem(g, self.templates, self.sku_supplier, net, time_limit) for g in groups
        ]
        self.time_limit = float(time_limit)
        self.workers = max(1, int(workers))
        self.crash_start = crash_start
        self._pool: ThreadPoolExecutor | None = None
        self.build_seconds = time.perf_counter() - t0
        self._unreported_build = self.build_seconds

    def set_time_limit(self, seconds: float) -> None:
        self.time_limit = float(seconds)
        for p in self.subproblems:
            p.set_time_limit(seconds)

    def close(self) -> None:
        """Stop the worker threads (a closed model still solves, in the calling thread)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.workers = 1

    def _map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``fn`` over ``items`` on the worker threads, results in the items' order."""
        if self.workers == 1 or len(items) < 2:
            return [fn(i) for i in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="highs")
        return list(self._pool.map(fn, items))

    def solve(self, x: TickInputs) -> SolveResult:
        """Push this tick's data, solve every group (coordinating shared capacity), extract."""
        net = self.net
        S = len(self.sku_supplier)
        t0 = time.perf_counter()
        self._map(lambda p: p.push(x), self.subproblems)
        if len(self.subproblems) == 1:  # monolithic: the whole capacity, one solve
            only = self.subproblems[0]
            only.set_shared_capacity(only.shared_capacity(x))
        if self.crash_start and not all(p.has_basis for p in self.subproblems):
            self._crash_basis(x)
        t1 = time.perf_counter()
        results = self._run_all()
        solve_seconds = sum(r.solve_seconds for r in results)
        if len(self.subproblems) > 1 and all(r.status.ok for r in results):
            binding, rhs = self._split_shared_capacity(x)
            if binding:
                # a group whose relaxed plan fits inside its share keeps it: that plan is optimal
                # for the relaxed LP and feasible for the restricted one, so optimal there too
                # (a re-solve would stop at it after 0 iterations); its rows stay relaxed
                over = [
                    i
                    for i, (p, share) in enumerate(zip(self.subproblems, rhs, strict=True))
                    if not p.fits(share)
                ]
                for i in over:
                    self.subproblems[i].set_shared_capacity(rhs[i])
                again = self._run_all([self.subproblems[i] for i in over])
                for i, r in zip(over, again, strict=True):
                    results[i] = r
                solve_seconds += sum(r.solve_seconds for r in again)
        t2 = time.perf_counter()
        out = {
            "order": np.zeros((net.n_dcs, S)),
            "expedite": np.zeros((net.n_dcs, S)),
            "move": np.zeros((net.n_lanes, S)),
            "direct": np.zeros((net.n_locations, S)),
            "sales": np.zeros((net.n_locations, S)),
        }
        failed = [r for r in results if not r.status.ok]
        for p, r in zip(self.subproblems, results, strict=True):
            if r.status.ok:
                p.extract(out)
        failed_skus = (
            np.sort(np.concatenate([r.skus for r in failed])) if failed else np.zeros(0, np.int64)
        )
        for name in ("order", "expedite", "move", "direct"):
            out[name][:, failed_skus] = 0.0
            np.maximum(out[name], 0.0, out=out[name])
        planned_lost = np.maximum(x.demand.sum(axis=0) - out["sales"], 0.0)
        planned_lost[:, failed_skus] = 0.0
        t3 = time.perf_counter()
        build, self._unreported_build = self._unreported_build, 0.0
        status = failed[0].status if failed else TerminationStatus.OPTIMAL
        message = (
            f"{len(failed)} of {len(results)} subproblems failed ({status.value}); "
            f"{len(failed_skus)} SKUs affected"
            if failed
            else ""
        )
        return SolveResult(
            status=status,
            objective=float(sum(r.objective for r in results)),
            gap=0.0 if not failed else float("nan"),
            build_seconds=build,
            update_seconds=t1 - t0,
            solve_seconds=solve_seconds,
            extract_seconds=t3 - t2,
            order=out["order"],
            expedite=out["expedite"],
            move=out["move"],
            planned_lost=planned_lost,
            direct=out["direct"] if len(net.direct_stores) else None,
            groups=tuple(results),
            failed_skus=failed_skus,
            message=message,
        )

    def _run_all(self, subproblems: list[SubProblem] | None = None) -> list[GroupResult]:
        def run(p: SubProblem) -> GroupResult:
            status, obj, iters, sec = p.run()
            return GroupResult(p.skus, status, obj, sec, iters, p.n_cols, p.n_rows)

        return self._map(run, self.subproblems if subproblems is None else subproblems)

    def _crash_basis(self, x: TickInputs) -> None:
        """Load a crash basis into every group that has none (see the module docstring).

        Each supplier's representative is its SKU of median planned demand, solved alone with
        shared capacities relaxed (the first pass relaxes them too).
        """
        cold = [p for p in self.subproblems if not p.has_basis]
        suppliers = sorted({v for p in cold for v in p.suppliers})
        demand = x.demand.sum(axis=(0, 1))

        def representative_basis(
            v: int,
        ) -> tuple[list[highspy.HighsBasisStatus], list[highspy.HighsBasisStatus]] | None:
            skus = np.flatnonzero(self.sku_supplier == v)
            rep = skus[np.argsort(demand[skus], kind="stable")[len(skus) // 2]]
            one = SubProblem(
                np.array([rep]), self.templates, self.sku_supplier, self.net, self.time_limit
            )
            one.push(x)
            status, *_ = one.run()
            return one.sku_basis() if status.ok else None

        found = dict(zip(suppliers, self._map(representative_basis, suppliers), strict=True))
        bases = {v: b for v, b in found.items() if b is not None}
        for p in cold:
            if all(v in bases for v in p.suppliers):
                p.set_crash_basis(bases)

    def _split_shared_capacity(self, x: TickInputs) -> tuple[bool, list[FloatArray]]:
        """Split each shared capacity in proportion to the groups' relaxed usage of it.

        Shares are per resource (a DC, a lane, a supplier) over the whole horizon, not per day:
        a relaxed plan front-loads dispatches, so per-day usage would starve later days.
        Returns whether any capacity was exceeded in total, and each group's right-hand sides.
        """
        used: dict[tuple[str, int, int], float] = {}
        per_resource: dict[tuple[str, int], float] = {}
        usage = [np.maximum(p.shared_usage(), 0.0) for p in self.subproblems]
        group_resource: list[dict[tuple[str, int], float]] = []
        for p, u in zip(self.subproblems, usage, strict=True):
            mine: dict[tuple[str, int], float] = {}
            for k, v in zip(p.coupling_keys, u.tolist(), strict=True):
                used[k] = used.get(k, 0.0) + v
                r = (k[0], k[1])
                mine[r] = mine.get(r, 0.0) + v
                per_resource[r] = per_resource.get(r, 0.0) + v
            group_resource.append(mine)
        binding = False
        rhs = []
        for p, mine in zip(self.subproblems, group_resource, strict=True):
            cap = p.shared_capacity(x)
            tot = np.array([used[k] for k in p.coupling_keys])
            binding |= bool((tot > cap * (1 + 1e-9) + 1e-6).any())
            share = np.array(
                [
                    mine.get((k[0], k[1]), 0.0) / max(per_resource[(k[0], k[1])], 1e-12)
                    for k in p.coupling_keys
                ]
            )
            rhs.append(cap * share)
        return binding, rhs
