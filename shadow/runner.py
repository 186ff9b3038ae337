"""The shadow runner: ERP snapshot -> the twin's own policy -> governance -> run store.

One run: read the ERP state (retried with backoff within a time limit), build the snapshot, run
``policy.decide`` and governance, translate the lines back to ERP ids, compare them with what the
ERP itself decided the same day (its order-point requests and purchases) and the previous run's
recommendations with what the ERP and planners did since, optionally write *draft* purchases for
approved lines, and record everything in one transaction. Faults are recorded as a failed run
with the reason; a run never raises into the scheduler loop and never writes half a result.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from promotwin.policies.contract import ActionKind, Plan, RunContext, start_run
from promotwin.policies.registry import make_policy
from promotwin.shadow.adapter import DraftLine, ErpAdapter, ErpError, ErpTimeout
from promotwin.shadow.compare import compare
from promotwin.shadow.erpdata import ErpActions
from promotwin.shadow.mapping import IdMapping
from promotwin.shadow.snapshot import BuiltSnapshot, SnapshotOptions, build_snapshot
from promotwin.shadow.store import RunRecord, RunStore
from promotwin.workflow.governance import AutoApprove, Governance

log = logging.getLogger("shadow")
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff on transient ERP faults, within ``time_limit`` seconds overall."""

    attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 8.0
    time_limit: float = 120.0


@dataclass
class Attempts:
    count: int = 0


def with_retries(
    func: Callable[[], T],
    retry: RetryPolicy,
    attempts: Attempts,
    deadline: float,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``func``; retry transient ``ErpError``s with backoff until attempts or time run out."""
    delay = retry.initial_delay
    while True:
        attempts.count += 1
        try:
            return func()
        except ErpError as exc:
            left = deadline - time.monotonic()
            if not exc.transient or attempts.count >= retry.attempts:
                raise
            if left <= delay:
                raise ErpTimeout(
                    f"gave up after {attempts.count} attempt(s) within the "
                    f"{retry.time_limit:g} s time limit; last error: {exc}"
                ) from None
            log.warning("ERP fault (%s); retrying in %.1f s", exc, delay)
            sleep(delay)
            delay = min(delay * 2, retry.max_delay)


@dataclass
class ShadowResult:
    run: RunRecord
    recommendations: pd.DataFrame = field(default_factory=pd.DataFrame)
    comparisons: dict[str, tuple[dict[str, Any], pd.DataFrame]] = field(default_factory=dict)
    drafts: pd.DataFrame = field(default_factory=pd.DataFrame)
    built: BuiltSnapshot | None = None
    issues: tuple[str, ...] = ()


def recommendation_frame(plan: Plan, status: str, built: BuiltSnapshot) -> pd.DataFrame:
    """Plan lines with twin ids, ERP ids and due dates."""
    s = built.snapshot
    frame = plan.to_frame(s)
    frame["status"] = status
    supply = (plan.kind == ActionKind.PURCHASE) | (plan.kind == ActionKind.EXPEDITE)
    lead = np.where(
        plan.kind == ActionKind.EXPEDITE,
        s.expedite_lead_time[np.where(supply, plan.origin, 0)] if len(s.supplier_ids) else 0,
        np.rint(s.lead_time_mean[np.where(supply, plan.origin, 0)]) if len(s.supplier_ids) else 0,
    )
    transit = {
        (int(o), int(d)): int(t)
        for o, d, t in zip(s.lanes["o"], s.lanes["d"], s.lanes["transit_days"], strict=True)
    }
    days = [
        int(lead[i])
        if supply[i]
        else transit.get((int(plan.origin[i]), int(plan.destination[i])), 1)
        for i in range(len(plan))
    ]
    frame["due_date"] = [s.date + dt.timedelta(days=d) for d in days]
    frame["erp_origin"] = [
        built.supplier_erp[o] if supply[i] else built.location_erp[o]
        for i, o in enumerate(plan.origin)
    ]
    frame["erp_destination"] = [built.location_erp[d] for d in plan.destination]
    frame["erp_product"] = [built.sku_erp[k] for k in plan.sku]
    return frame


def erp_orders(actions: ErpActions, mapping: IdMapping, sources: tuple[str, ...]) -> pd.DataFrame:
    """The ERP side for ``compare``: purchases (planner/order-point) and draft requests."""
    parts = []
    if "purchases" in sources:
        parts.append(actions["purchases"])
    if "requests" in sources:
        req = actions["requests"]
        parts.append(req[~req["state"].isin(["cancelled", "exception"])])
    if not parts:
        return pd.DataFrame({"sku": [], "location": [], "qty": [], "due": []})
    frame = pd.concat(parts, ignore_index=True)
    return pd.DataFrame(
        {
            "sku": frame["product"].map(lambda e: mapping.twin_id("product", e)),
            "location": frame["destination"].map(lambda e: mapping.twin_id("location", e)),
            "qty": frame["qty"].astype(float),
            "due": frame["delivery_date"],
        }
    ).dropna(subset=["sku", "location"])


def policy_orders(recs: pd.DataFrame) -> pd.DataFrame:
    buy = recs[recs["kind"].isin(["purchase", "expedite"]) & (recs["status"] == "approved")]
    return pd.DataFrame(
        {
            "sku": buy["sku"],
            "location": buy["destination"],
            "qty": buy["qty"].astype(float),
            "due": [
                d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)[:10])
                for d in buy["due_date"]
            ],
        }
    )


class ShadowRunner:
    def __init__(
        self,
        adapter: ErpAdapter,
        store: RunStore,
        policy: str,
        governance: Governance | None = None,
        retry: RetryPolicy | None = None,
        options: SnapshotOptions | None = None,
        write_drafts: bool = False,
        add_new: bool = False,
    ):
        make_policy(policy)  # fail fast on an unknown name
        self.adapter = adapter
        self.store = store
        self.policy = policy
        self.governance: Governance = governance or AutoApprove()
        self.retry = retry or RetryPolicy()
        self.options = options or SnapshotOptions()
        self.write_drafts = write_drafts
        self.add_new = add_new

    def run_once(self, as_of: dt.date | None = None) -> ShadowResult:
        """One shadow run; always returns (a failed run is recorded with its reason)."""
        started = dt.datetime.now(dt.UTC)
        t0 = time.monotonic()
        deadline = t0 + self.retry.time_limit
        attempts = Attempts()
        run_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        source = self.adapter.name

        def record(status: str, reason: str, **kw: Any) -> RunRecord:
            return RunRecord(
                run_id=run_id,
                started=started.isoformat(timespec="seconds"),
                finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                status=status,
                reason=reason,
                source=source,
                policy=self.policy,
                as_of=kw.get("as_of"),
                snapshot_hash=kw.get("snapshot_hash"),
                state_digest=kw.get("state_digest"),
                n_recommendations=int(kw.get("n", 0)),
                attempts=attempts.count,
                write_drafts=int(self.write_drafts),
                seconds=round(time.monotonic() - t0, 3),
            )

        try:
            state = with_retries(
                lambda: self.adapter.read_state(as_of), self.retry, attempts, deadline
            )
            mapping = self.store.load_mapping(source)
            built = build_snapshot(state, mapping, self.options, self.add_new)
            snap = built.snapshot
            policy = make_policy(self.policy)
            start_run(policy, RunContext(snap.seed, days=1, start_date=snap.date))
            plan = policy.decide(snap)
            issues = list(built.issues)
            if built.no_supplier.any():  # nobody to order from: drop those purchases
                supply = (plan.kind == ActionKind.PURCHASE) | (plan.kind == ActionKind.EXPEDITE)
                drop = supply & built.no_supplier[plan.sku]
                plan = plan.select(~drop)
            review = self.governance.review(plan, snap)
            recs = pd.concat(
                [
                    recommendation_frame(review.approved, "approved", built),
                    recommendation_frame(review.routed, "routed", built),
                ],
                ignore_index=True,
            )
            recs.insert(0, "line", np.arange(len(recs), dtype=np.int64))

            comparisons = {}
            today_actions = with_retries(
                lambda: self.adapter.read_actions(state.as_of, state.as_of),
                self.retry,
                attempts,
                deadline,
            )
            same_day = compare(
                policy_orders(recs), erp_orders(today_actions, mapping, ("requests", "purchases"))
            )
            comparisons["same-day"] = (same_day.summary, same_day.lines)
            prev = self.store.previous(source, self.policy, state.as_of)
            if prev is not None and prev.as_of:
                start = dt.date.fromisoformat(prev.as_of) + dt.timedelta(days=1)
                did = with_retries(
                    lambda: self.adapter.read_actions(start, state.as_of),
                    self.retry,
                    attempts,
                    deadline,
                )
                prev_recs = self.store.recommendations(prev.run_id)
                period = compare(policy_orders(prev_recs), erp_orders(did, mapping, ("purchases",)))
                comparisons[f"previous:{prev.run_id}"] = (period.summary, period.lines)

            drafts = pd.DataFrame()
            if self.write_drafts:
                drafts, issue = self._drafts(recs, run_id)
                if issue:
                    issues.append(issue)
            status = "partial" if issues else "ok"
            run = record(
                status,
                "; ".join(issues),
                as_of=str(state.as_of),
                snapshot_hash=built.digest,
                state_digest=state.digest(),
                n=len(recs),
            )
            self.store.record(run, recs, comparisons, drafts, (source, mapping))
            log.info("shadow run %s: %s, %d recommendation(s)", run_id, status, len(recs))
            return ShadowResult(run, recs, comparisons, drafts, built, tuple(issues))
        except ErpError as exc:
            reason = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - recorded, the scheduler loop carries on
            log.exception("shadow run %s failed", run_id)
            reason = f"internal error: {type(exc).__name__}: {exc}"
        run = record("failed", reason, as_of=str(as_of) if as_of else None)
        self.store.record(run)
        log.warning("shadow run %s failed: %s", run_id, reason)
        return ShadowResult(run)

    def _drafts(self, recs: pd.DataFrame, run_id: str) -> tuple[pd.DataFrame, str]:
        """Draft purchases for approved supply lines; never retried (a retry could duplicate)."""
        buy = recs[recs["kind"].isin(["purchase", "expedite"]) & (recs["status"] == "approved")]
        lines = [
            DraftLine(
                supplier=str(r["erp_origin"]),
                destination=str(r["erp_destination"]),
                product=str(r["erp_product"]),
                qty=float(r["qty"]),
                unit_price=float(r["unit_cost"]),
                delivery_date=r["due_date"],
            )
            for r in buy.to_dict("records")
            if r["erp_origin"]
        ]
        if not lines:
            return pd.DataFrame(), ""
        try:
            return self.adapter.write_drafts(lines, f"promotwin shadow {run_id}"), ""
        except ErpError as exc:
            created = getattr(exc, "created", pd.DataFrame())
            return created, f"draft writing stopped after {len(created)} line(s): {exc}"

    def run_every(
        self,
        every: dt.timedelta,
        max_runs: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_run: Callable[[ShadowResult], None] | None = None,
    ) -> list[ShadowResult]:
        """Run now and then every ``every``; a failed run is recorded and the loop goes on."""
        results: list[ShadowResult] = []
        while max_runs is None or len(results) < max_runs:
            began = time.monotonic()
            result = self.run_once(None)
            results.append(result)
            if on_run is not None:
                on_run(result)
            if max_runs is not None and len(results) >= max_runs:
                break
            sleep(max(every.total_seconds() - (time.monotonic() - began), 0.0))
        return results


def parse_every(text: str) -> dt.timedelta:
    """``30s``, ``15m``, ``6h``, ``1d`` -> timedelta."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].replace(".", "", 1).isdigit():
        raise ValueError(f"--every {text!r}: use a number and a unit, e.g. 30s, 15m, 6h or 1d")
    value = float(text[:-1])
    if value <= 0:
        raise ValueError("--every must be positive")
    return dt.timedelta(**{units[text[-1]]: value})
