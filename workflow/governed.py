"""``GovernedWorkflow``: rules, exception queue, approvals and the audit trail, as a
``Governance`` for the twin (``simulate(..., governance=...)``) and, later, for live runs.

One review (one simulated or real day), in this order, each step committed before the next:

1. exceptions open past their expiry day expire;
2. simulated planners (twin only) approve or reject what they get to;
3. exceptions approved since the last review are released, the new plan is evaluated, the
   cumulative hard limits are applied to everything about to execute, new exceptions are
   created, and every proposal and decision is written to the audit trail — one transaction,
   committed before the twin executes anything;
4. after execution (``Review.executed``) the executed units are written.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from promotwin.policies.contract import ActionKind, IntArray, Plan, PlanningSnapshot
from promotwin.workflow.audit_anchor import audit_key, make_anchor
from promotwin.workflow.config import KINDS, GovernanceConfig
from promotwin.workflow.governance import Review
from promotwin.workflow.kpis import governance_kpis
from promotwin.workflow.planners import SimulatedPlanners
from promotwin.workflow.rules import AUTO, PRIORITIES, REJECT, ROUTE, Spend, cumulative_limits
from promotwin.workflow.rules import evaluate as evaluate_rules
from promotwin.workflow.store import EVENT_FIELDS, Store, StoreError, exception_event

ObjArray = npt.NDArray[np.object_]
_COLUMNS = ("kind", "origin", "destination", "sku", "qty", "unit_cost", "confidence", "reason")


def snapshot_hash(s: PlanningSnapshot) -> str:
    """sha256 of the state a decision was made from (day, stock positions, forecast)."""
    h = hashlib.sha256(f"{s.day}|{s.date}|{s.seed}".encode())
    for a in (s.on_hand, s.in_transit, s.on_order, s.forecast_mean, s.history_mean):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def concat_plans(policy: str, *plans: Plan) -> Plan:
    """Lines of several plans in order, with one merged reasons table."""
    reasons: list[str] = []
    cols: dict[str, list[npt.NDArray[Any]]] = {c: [] for c in _COLUMNS}
    for p in plans:
        for c in _COLUMNS:
            cols[c].append(getattr(p, c) + (len(reasons) if c == "reason" else 0))
        reasons += p.reasons
    joined = {c: np.concatenate(v) for c, v in cols.items()}
    return Plan(policy=policy, reasons=tuple(reasons), **joined)


class _Ids:
    """Readable ids for plan lines (supplier ids for purchases/expedites)."""

    def __init__(self, s: PlanningSnapshot):
        self.loc = np.asarray(s.location_ids, dtype=object)
        self.sup = np.asarray(s.supplier_ids, dtype=object)
        self.sku = np.asarray(s.sku_ids, dtype=object)
        self.loc_index = {x: i for i, x in enumerate(s.location_ids)}
        self.sup_index = {x: i for i, x in enumerate(s.supplier_ids)}
        self.sku_index = {x: i for i, x in enumerate(s.sku_ids)}

    def of(self, plan: Plan) -> tuple[ObjArray, ObjArray, ObjArray, ObjArray]:
        supply = (plan.kind == ActionKind.PURCHASE) | (plan.kind == ActionKind.EXPEDITE)
        origin = np.empty(len(plan), dtype=object)
        if len(self.sup):
            origin[supply] = self.sup[plan.origin[supply]]
        origin[~supply] = self.loc[plan.origin[~supply]]
        kind = np.asarray(KINDS, dtype=object)[plan.kind]
        return kind, origin, self.loc[plan.destination], self.sku[plan.sku]


class GovernedWorkflow:
    """Governance by a config, with an exception queue and audit trail in ``store``.

    ``simulate_planners``: in the twin, simulated planners decide exceptions; in live runs,
    people do, through ``twin exceptions approve|reject``. ``readiness`` (promotion id -> score)
    overrides the config's scores until readiness is computed upstream. ``proposed_by``: the
    signed-in user who started the run, recorded on its exceptions (they cannot approve them).
    """

    def __init__(
        self,
        config: GovernanceConfig,
        store: Store | None = None,
        *,
        simulate_planners: bool = True,
        readiness: Mapping[str, float] | None = None,
        run_id: str | None = None,
        proposed_by: str = "",
    ):
        if readiness is not None:
            risk = config.risk.model_copy(update={"readiness": dict(readiness)})
            config = config.model_copy(update={"risk": risk})
        self.config = config
        self.store = store if store is not None else Store()
        self.planners = SimulatedPlanners(config.planners) if simulate_planners else None
        self.run_id = run_id or f"adhoc-{uuid.uuid4().hex[:12]}"
        self.spend = Spend()
        self.proposed_by = proposed_by

    def fingerprint(self) -> str:
        return f"{self.config.fingerprint()}:{'sim' if self.planners else 'live'}"

    def begin_run(self, run_id: str) -> None:
        """Start recording under ``run_id``; refuses a run id the store already holds."""
        if self.store.has_run(run_id):
            raise StoreError(
                f"the store already holds run {run_id}: use another store (or seed/days) "
                "so every run's audit trail stays separate"
            )
        self.run_id = run_id
        self.spend = Spend()
        if self.planners is not None:
            self.planners.rng = None

    def audit_anchor(self) -> dict[str, Any]:
        """The store's audit head now (seq, hash, signed with TWIN_AUDIT_KEY if set): a run's
        manifest keeps it, so `twin audit verify --manifest` notices if the log is cut short."""
        seq, head = self.store.head()
        return make_anchor(seq, head, self.run_id, audit_key()).record()

    def kpis(self, days: int, warmup_days: int = 0) -> dict[str, float]:
        cols = ("event", "sim_day", "exception_id", "actor", "value", "rules")
        return governance_kpis(self.store.audit_frame(self.run_id, cols), days, warmup_days)

    # -- the review --------------------------------------------------------------------------

    def review(self, plan: Plan, snapshot: PlanningSnapshot) -> Review:
        run, day, store = self.run_id, snapshot.day, self.store
        date = snapshot.date.isoformat()
        snap = snapshot_hash(snapshot)
        with store.begin() as conn:
            expired = store.transition(conn, run, "open", "expired", expires_by=day)
            store.append(
                conn,
                [exception_event(r, "expired", "governance", day, "no decision") for r in expired],
            )
        if self.planners is not None:
            self.planners.act(store, run, day, snapshot.seed)

        ids = _Ids(snapshot)
        ev = evaluate_rules(plan, snapshot, self.config)
        kind, origin, dest, sku = ids.of(plan)
        policy_reason = np.asarray(plan.reasons + ("",), dtype=object)[plan.reason]
        actor = f"policy:{plan.policy}"
        with store.begin() as conn:
            released = store.transition(conn, run, "approved", "released")
            rel_plan, rel_rows, unknown = self._released_plan(released, ids, plan.policy)
            auto_mask = ev.decision == AUTO
            candidate = concat_plans(plan.policy, rel_plan, plan.select(auto_mask))
            limited, lim_rules, lim_reason = cumulative_limits(
                candidate, snapshot, self.config, self.spend
            )
            n_rel = len(rel_plan)
            blocked = [(r, "hard.unknown_item", _GONE) for r in released if r["id"] in unknown]
            blocked += [
                (r, lim_rules[j], lim_reason[j]) for j, r in enumerate(rel_rows) if limited[j]
            ]
            store.transition(
                conn, run, "released", "blocked", ids=[int(r["id"]) for r, _, _ in blocked]
            )
            decision = ev.decision.copy()
            rules, reason = ev.rules.copy(), ev.reason.copy()
            for j, i in enumerate(np.nonzero(auto_mask)[0].tolist()):
                if limited[n_rel + j]:
                    decision[i] = REJECT
                    rules[i] = _join(rules[i], lim_rules[n_rel + j], ",")
                    reason[i] = _join(reason[i], lim_reason[n_rel + j], "; ")

            routed = np.nonzero(decision == ROUTE)[0]
            expires = day + self.config.routing.expiry_days
            exc_ids = store.create_exceptions(
                conn,
                [
                    {
                        "run_id": run,
                        "owner": ev.owner[i],
                        "priority": int(ev.priority[i]),
                        "created_day": day,
                        "expires_day": expires,
                        "policy": plan.policy,
                        "kind": kind[i],
                        "origin": origin[i],
                        "destination": dest[i],
                        "sku": sku[i],
                        "qty": int(plan.qty[i]),
                        "unit_cost": float(plan.unit_cost[i]),
                        "confidence": float(plan.confidence[i]),
                        "value": float(ev.value[i]),
                        "value_at_risk": float(ev.value_at_risk[i]),
                        "rules": rules[i],
                        "reason": reason[i],
                        "policy_reason": policy_reason[i],
                        "snapshot_hash": snap,
                        "proposed_by": self.proposed_by,
                    }
                    for i in routed.tolist()
                ],
            )
            exc_of = np.full(len(plan), None, dtype=object)
            exc_of[routed] = exc_ids

            events: list[dict[str, Any]] = [
                asdict(
                    replace(
                        exception_event(r, "rejected", "governance", day, f"blocked: {why}"),
                        rules=rule,
                    )
                )
                for r, rule, why in blocked
            ]
            base = {"run_id": run, "sim_day": day, "sim_date": date, "snapshot_hash": snap}
            names = np.asarray(["auto_approved", "routed", "rejected"], dtype=object)[decision]
            prio = np.asarray(PRIORITIES, dtype=object)[ev.priority]
            for i in range(len(plan)):
                line = {
                    **base,
                    "kind": kind[i],
                    "origin": origin[i],
                    "destination": dest[i],
                    "sku": sku[i],
                    "qty": int(plan.qty[i]),
                    "value": float(ev.value[i]),
                }
                events.append(
                    {
                        **line,
                        "event": "proposed",
                        "actor": actor,
                        "exception_id": None,
                        "rules": "",
                        "detail": f"{policy_reason[i]} (confidence {plan.confidence[i]:.2f})",
                    }
                )
                detail = reason[i]
                if decision[i] == ROUTE:
                    detail = f"to {ev.owner[i]}, {prio[i]} priority: {detail}"
                events.append(
                    {
                        **line,
                        "event": names[i],
                        "actor": actor,
                        "exception_id": exc_of[i],
                        "rules": rules[i],
                        "detail": detail,
                    }
                )
            store.append(conn, events)

        keep_rel = ~limited[:n_rel]
        approved = candidate.select(~limited)
        approved_exc: list[int | None] = [
            int(r["id"]) for r, k in zip(rel_rows, keep_rel, strict=True) if k
        ]
        approved_exc += [None] * (len(approved) - len(approved_exc))
        a_kind, a_origin, a_dest, a_sku = ids.of(approved)
        a_value = approved.qty * snapshot.unit_cost[approved.sku]

        def on_executed(qty: IntArray) -> None:
            done = [e for e in approved_exc if e is not None]
            if not len(approved):
                return
            rows: list[dict[str, Any]] = []
            for i in range(len(approved)):
                q, asked = int(qty[i]), int(approved.qty[i])
                unit = float(a_value[i]) / asked if asked else 0.0
                rows.append(
                    {
                        **base,
                        "event": "executed",
                        "actor": "twin" if self.planners is not None else "execution",
                        "exception_id": approved_exc[i],
                        "rules": "",
                        "kind": a_kind[i],
                        "origin": a_origin[i],
                        "destination": a_dest[i],
                        "sku": a_sku[i],
                        "qty": q,
                        "value": q * unit,
                        "detail": "" if q == asked else f"{q} of {asked} units (stock or capacity)",
                    }
                )
            with store.begin() as conn:
                store.transition(conn, run, "released", "executed", ids=done)
                store.append(conn, rows)

        return Review(
            approved=approved,
            routed=plan.select(decision == ROUTE),
            rejected=plan.select(decision == REJECT),
            on_executed=on_executed,
        )

    def _released_plan(
        self, rows: list[dict[str, Any]], ids: _Ids, policy: str
    ) -> tuple[Plan, list[dict[str, Any]], set[int]]:
        """Approved exceptions back as plan lines (ids mapped to today's indices); rows whose
        ids the snapshot no longer has are returned in ``unknown``."""
        ok, unknown = [], set()
        for r in rows:
            k = KINDS.index(r["kind"])
            supply = k in (ActionKind.PURCHASE, ActionKind.EXPEDITE)
            o = (ids.sup_index if supply else ids.loc_index).get(r["origin"])
            d, s = ids.loc_index.get(r["destination"]), ids.sku_index.get(r["sku"])
            if o is None or d is None or s is None:
                unknown.add(int(r["id"]))
            else:
                ok.append((r, k, o, d, s))
        texts = sorted({f"approved exception: {r['policy_reason']}" for r, *_ in ok})
        code = {t: i for i, t in enumerate(texts)}
        plan = Plan(
            policy=policy,
            kind=np.array([k for _, k, *_ in ok], np.int64),
            origin=np.array([o for _, _, o, _, _ in ok], np.int64),
            destination=np.array([d for *_, d, _ in ok], np.int64),
            sku=np.array([s for *_, s in ok], np.int64),
            qty=np.array([r["qty"] for r, *_ in ok], np.int64),
            unit_cost=np.array([r["unit_cost"] for r, *_ in ok], np.float64),
            confidence=np.array([r["confidence"] for r, *_ in ok], np.float64),
            reason=np.array(
                [code[f"approved exception: {r['policy_reason']}"] for r, *_ in ok], np.int64
            ),
            reasons=tuple(texts),
        )
        return plan, [r for r, *_ in ok], unknown


_GONE = "its location, supplier or SKU is no longer in the snapshot"


def _join(a: str, b: str, sep: str) -> str:
    return f"{a}{sep}{b}" if a else b


__all__ = ["EVENT_FIELDS", "GovernedWorkflow", "concat_plans", "snapshot_hash"]
