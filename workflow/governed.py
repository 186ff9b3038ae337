"""``GovernedWorkflow``: rules, exception queue, approvals and the audit trail, as a
``Governance`` for the twin (``simulate(..., governance=...)``) and, later, for live runs.

One review (one simulated or real day), in this order, each step committed before the next:

1. exceptions open past their expiry day expire;
2. simulated planners (twin only) approve or reject what they get to;
3. exceptions approved since the last review are released, the new plan is evaluated, the
   cumulative hard limits are applied to everything about to execute, new exceptions are
   created, and every proposal and decision is written to the audit trail — one transaction,
   committed before the twin executes anything;
4. after execution, ``record_execution(day, approved, executed)`` writes the executed units.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from promotwin.arrays import ObjArray
from promotwin.policies.contract import (
    ActionKind,
    BoolArray,
    FloatArray,
    IntArray,
    Plan,
    PlanningSnapshot,
)
from promotwin.workflow.audit_anchor import audit_key, make_anchor
from promotwin.workflow.config import KINDS, GovernanceConfig
from promotwin.workflow.governance import Review
from promotwin.workflow.kpis import governance_kpis
from promotwin.workflow.planners import SimulatedPlanners
from promotwin.workflow.rules import (
    AUTO,
    PRIORITIES,
    REJECT,
    ROUTE,
    Evaluation,
    Spend,
    cumulative_limits,
)
from promotwin.workflow.rules import evaluate as evaluate_rules
from promotwin.workflow.store import EVENT_FIELDS, Store, StoreError, exception_event

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


def snapshot_hash(s: PlanningSnapshot) -> str:
    """sha256 of the state a decision was made from (day, stock positions, forecast)."""
    h = hashlib.sha256(f"{s.day}|{s.date}|{s.seed}".encode())
    for a in (s.on_hand, s.in_transit, s.on_order, s.forecast_mean, s.history_mean):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


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
        self._approved: _Approved | None = None
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

    # -- the review: named steps, in this order --------------------------------------------------

    def review(self, plan: Plan, snapshot: PlanningSnapshot) -> Review:
        """Expire, let simulated planners act, then decide the plan in one transaction."""
        day = snapshot.day
        self._expire(day)
        if self.planners is not None:
            self.planners.act(self.store, self.run_id, day, snapshot.seed)
        ids = _Ids(snapshot)
        ev = evaluate_rules(plan, snapshot, self.config)
        lines = _Lines.of(plan, ids)
        base = {
            "run_id": self.run_id,
            "sim_day": day,
            "sim_date": snapshot.date.isoformat(),
            "snapshot_hash": snapshot_hash(snapshot),
        }
        with self.store.begin() as conn:
            released = self.store.transition(conn, self.run_id, "approved", "released")
            rel_plan, rel_rows, unknown = self._released_plan(released, ids, plan.policy)
            auto = ev.decision == AUTO
            candidate = Plan.concat(plan.policy, rel_plan, plan.select(auto))
            limited, lim_rules, lim_reason = cumulative_limits(
                candidate, snapshot, self.config, self.spend
            )
            n_rel = len(rel_plan)
            blocked = [(r, "hard.unknown_item", _GONE) for r in released if r["id"] in unknown]
            blocked += [
                (r, lim_rules[j], lim_reason[j]) for j, r in enumerate(rel_rows) if limited[j]
            ]
            self._block(conn, blocked)
            verdict = _reject_over_limits(
                ev, auto, limited[n_rel:], lim_rules[n_rel:], lim_reason[n_rel:]
            )
            exception_ids = self._raise_exceptions(conn, plan, ev, verdict, lines, base)
            events = _blocked_events(blocked, day)
            events += _decision_events(plan, ev, verdict, lines, exception_ids, base)
            self.store.append(conn, events)

        approved = candidate.select(~limited)
        released_ids: list[int | None] = [
            int(r["id"]) for r, k in zip(rel_rows, ~limited[:n_rel], strict=True) if k
        ]
        released_ids += [None] * (len(approved) - len(released_ids))
        self._approved = _Approved(
            approved, released_ids, base, snapshot.unit_cost, ids.of(approved)
        )
        return Review(
            approved=approved,
            routed=plan.select(verdict.decision == ROUTE),
            rejected=plan.select(verdict.decision == REJECT),
        )

    def record_execution(self, day: int, approved: Plan, executed: IntArray) -> None:
        """Write what execution carried out of the last review's approved lines; released
        exceptions become executed."""
        kept = self._approved
        if kept is None or kept.base["sim_day"] != day or kept.plan is not approved:
            raise ValueError(
                f"record_execution(day {day}) must follow the review that approved the lines "
                "(call review(), execute its approved plan, then record_execution)"
            )
        self._approved = None
        if not len(approved):
            return
        kind, origin, dest, sku = kept.lines
        value = approved.qty * kept.unit_cost[approved.sku]
        actor = "twin" if self.planners is not None else "execution"
        rows: list[dict[str, Any]] = []
        for i in range(len(approved)):
            q, asked = int(executed[i]), int(approved.qty[i])
            unit = float(value[i]) / asked if asked else 0.0
            rows.append(
                {
                    **kept.base,
                    "event": "executed",
                    "actor": actor,
                    "exception_id": kept.exception_ids[i],
                    "rules": "",
                    "kind": kind[i],
                    "origin": origin[i],
                    "destination": dest[i],
                    "sku": sku[i],
                    "qty": q,
                    "value": q * unit,
                    "detail": "" if q == asked else f"{q} of {asked} units (stock or capacity)",
                }
            )
        done = [e for e in kept.exception_ids if e is not None]
        with self.store.begin() as conn:
            self.store.transition(conn, self.run_id, "released", "executed", ids=done)
            self.store.append(conn, rows)

    def _expire(self, day: int) -> None:
        """Exceptions open past their expiry day expire (committed on their own)."""
        with self.store.begin() as conn:
            expired = self.store.transition(conn, self.run_id, "open", "expired", expires_by=day)
            self.store.append(
                conn,
                [exception_event(r, "expired", "governance", day, "no decision") for r in expired],
            )

    def _block(self, conn: Connection, blocked: list[tuple[dict[str, Any], str, str]]) -> None:
        """Released exceptions that cannot execute (gone from the snapshot, over a hard limit)."""
        ids = [int(r["id"]) for r, _, _ in blocked]
        self.store.transition(conn, self.run_id, "released", "blocked", ids=ids)

    def _raise_exceptions(
        self,
        conn: Connection,
        plan: Plan,
        ev: Evaluation,
        verdict: _Verdict,
        lines: _Lines,
        base: dict[str, Any],
    ) -> ObjArray:
        """Create an exception per routed line; returns each line's exception id (or None)."""
        routed = np.nonzero(verdict.decision == ROUTE)[0]
        day = int(base["sim_day"])
        expires = day + self.config.routing.expiry_days
        exc_ids = self.store.create_exceptions(
            conn,
            [
                {
                    "run_id": self.run_id,
                    "owner": ev.owner[i],
                    "priority": int(ev.priority[i]),
                    "created_day": day,
                    "expires_day": expires,
                    "policy": plan.policy,
                    "kind": lines.kind[i],
                    "origin": lines.origin[i],
                    "destination": lines.destination[i],
                    "sku": lines.sku[i],
                    "qty": int(plan.qty[i]),
                    "unit_cost": float(plan.unit_cost[i]),
                    "confidence": float(plan.confidence[i]),
                    "value": float(ev.value[i]),
                    "value_at_risk": float(ev.value_at_risk[i]),
                    "rules": verdict.rules[i],
                    "reason": verdict.reason[i],
                    "policy_reason": lines.policy_reason[i],
                    "snapshot_hash": base["snapshot_hash"],
                    "proposed_by": self.proposed_by,
                }
                for i in routed.tolist()
            ],
        )
        exc_of = np.full(len(plan), None, dtype=object)
        exc_of[routed] = exc_ids
        return exc_of

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


@dataclass(frozen=True)
class _Lines:
    """A plan's lines with readable ids, and each line's reason from the policy."""

    kind: ObjArray
    origin: ObjArray
    destination: ObjArray
    sku: ObjArray
    policy_reason: ObjArray

    @classmethod
    def of(cls, plan: Plan, ids: _Ids) -> _Lines:
        kind, origin, dest, sku = ids.of(plan)
        reason = np.asarray(plan.reasons + ("",), dtype=object)[plan.reason]
        return cls(kind, origin, dest, sku, reason)


@dataclass(frozen=True)
class _Verdict:
    """The review's decision per line of the policy's plan, with the rules and reasons."""

    decision: npt.NDArray[np.int8]  # AUTO | ROUTE | REJECT
    rules: ObjArray
    reason: ObjArray


@dataclass(frozen=True)
class _Approved:
    """What a review approved, kept until ``record_execution`` writes what was carried out."""

    plan: Plan
    exception_ids: list[int | None]  # the released exception of each line (None: new today)
    base: dict[str, Any]  # the audit fields of the review (run, day, date, snapshot hash)
    unit_cost: FloatArray
    lines: tuple[ObjArray, ObjArray, ObjArray, ObjArray]


def _reject_over_limits(
    ev: Evaluation, auto: BoolArray, limited: BoolArray, rules: ObjArray, reason: ObjArray
) -> _Verdict:
    """Auto-approved lines a cumulative hard limit stopped become rejections."""
    decision = ev.decision.copy()
    all_rules, all_reason = ev.rules.copy(), ev.reason.copy()
    for j, i in enumerate(np.nonzero(auto)[0].tolist()):
        if limited[j]:
            decision[i] = REJECT
            all_rules[i] = _join(all_rules[i], rules[j], ",")
            all_reason[i] = _join(all_reason[i], reason[j], "; ")
    return _Verdict(decision, all_rules, all_reason)


def _blocked_events(
    blocked: list[tuple[dict[str, Any], str, str]], day: int
) -> list[dict[str, Any]]:
    """A rejection event per released exception that was blocked."""
    return [
        asdict(
            replace(
                exception_event(r, "rejected", "governance", day, f"blocked: {why}"), rules=rule
            )
        )
        for r, rule, why in blocked
    ]


def _decision_events(
    plan: Plan,
    ev: Evaluation,
    verdict: _Verdict,
    lines: _Lines,
    exception_ids: ObjArray,
    base: dict[str, Any],
) -> list[dict[str, Any]]:
    """Per line of the plan: the proposal, then the decision (with its rules and reason)."""
    actor = f"policy:{plan.policy}"
    names = np.asarray(["auto_approved", "routed", "rejected"], dtype=object)[verdict.decision]
    prio = np.asarray(PRIORITIES, dtype=object)[ev.priority]
    events: list[dict[str, Any]] = []
    for i in range(len(plan)):
        line = {
            **base,
            "kind": lines.kind[i],
            "origin": lines.origin[i],
            "destination": lines.destination[i],
            "sku": lines.sku[i],
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
                "detail": f"{lines.policy_reason[i]} (confidence {plan.confidence[i]:.2f})",
            }
        )
        detail = verdict.reason[i]
        if verdict.decision[i] == ROUTE:
            detail = f"to {ev.owner[i]}, {prio[i]} priority: {detail}"
        events.append(
            {
                **line,
                "event": names[i],
                "actor": actor,
                "exception_id": exception_ids[i],
                "rules": verdict.rules[i],
                "detail": detail,
            }
        )
    return events


_GONE = "its location, supplier or SKU is no longer in the snapshot"


def _join(a: str, b: str, sep: str) -> str:
    return f"{a}{sep}{b}" if a else b


__all__ = ["EVENT_FIELDS", "GovernedWorkflow", "snapshot_hash"]
