"""The shadow runner: ERP snapshot -> the twin's own policy -> governance -> run store.

One run: read the ERP state (retried with backoff within a time limit), build the snapshot, run
``policy.decide`` and governance, translate the lines back to ERP ids, compare them with what the
ERP itself decided the same day (its order-point requests and purchases) and the previous run's
recommendations with what the ERP and planners did since, optionally write *draft* purchases for
approved lines, and record everything in one transaction. Faults are recorded as a failed run
with the reason; a run never raises into the scheduler loop and never writes half a result.
"""

from __future__ import annotations

import dataclasses
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
from promotwin.shadow.adapter import DraftLine, ErpAdapter, ErpError, ErpTimeout, draft_orders
from promotwin.shadow.compare import compare
from promotwin.shadow.erpdata import ErpActions, ErpState
from promotwin.shadow.layout import apply as apply_layout
from promotwin.shadow.layout import rechannel
from promotwin.shadow.layout import to_layout as layout_of
from promotwin.shadow.mapping import IdMapping
from promotwin.shadow.snapshot import BuiltSnapshot, DataWarning, SnapshotOptions, build_snapshot
from promotwin.shadow.store import DRAFT_COLUMNS, RunRecord, RunStore
from promotwin.workflow.governance import AutoApprove, Governance

log = logging.getLogger("shadow")
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff on transient ERP faults, within ``time_limit`` seconds overall;
    ``attempts`` caps the tries too (None: as many as the time limit allows)."""

    attempts: int | None = None
    initial_delay: float = 0.5
    max_delay: float = 8.0
    time_limit: float = 120.0


@dataclass
class Attempts:
    count: int = 0
    retries: int = 0  # calls repeated after a transient fault (monitoring's health figure)


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
            if not exc.transient or (
                retry.attempts is not None and attempts.count >= retry.attempts
            ):
                raise
            if left <= delay:
                raise ErpTimeout(
                    f"gave up after {attempts.count} attempt(s) within the "
                    f"{retry.time_limit:g} s time limit; last error: {exc}"
                ) from None
            log.warning("ERP fault (%s); retrying in %.1f s", exc, delay)
            attempts.retries += 1
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
    read_seconds: float | None = None  # reading the ERP state, retries included
    retries: int = 0


def run_status(warnings: list[DataWarning]) -> str:
    """``degraded`` when the inputs make the recommendations meaningless, ``partial`` when
    something was left out or not done, else ``ok``."""
    if any(w.degrading for w in warnings):
        return "degraded"
    return "partial" if warnings else "ok"


def default_as_of(adapter: ErpAdapter) -> dt.date:
    """The date a run reads when none is given: the adapter's own (a snapshot folder's), else
    today."""
    as_of = getattr(adapter, "as_of", None)
    return as_of if isinstance(as_of, dt.date) else dt.date.today()


def apply_kept_layout(
    store: RunStore, state: ErpState
) -> tuple[ErpState, pd.DataFrame, list[DataWarning]]:
    """The state with the location roles kept in the run store for its source, the layout to
    keep, and notes; without a kept layout, the adapter's proposal (ambiguous warehouses stay
    without a role until given one). Sales channels follow the kept roles (``rechannel``)."""
    kept = store.load_layout(state.source)
    if kept is None:
        return state, layout_of(state["locations"]), []
    locations, notes = apply_layout(state["locations"], kept)
    added = layout_of(locations[~locations["code"].isin(set(kept["erp_code"]))])
    layout = pd.concat([kept, added], ignore_index=True)
    sales = rechannel(state["sales"], state["locations"], locations)
    tables = {**state.tables, "locations": locations, "sales": sales}
    return (
        dataclasses.replace(state, tables=tables),
        layout,
        [DataWarning("layout-note", n) for n in notes],
    )


def read_erp(func: Callable[[], T], time_limit: float) -> T:
    """One read outside a shadow run (export, counterfactual), retried like a run's reads."""
    return with_retries(
        func, RetryPolicy(time_limit=time_limit), Attempts(), time.monotonic() + time_limit
    )


def _as_date(value: object) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _draft_price(built: BuiltSnapshot, sku: int, unit_cost: float) -> float:
    """The supplier's price list for the SKU, else its unit cost (currency per unit)."""
    price = float(built.supplier_price[sku])
    return price if np.isfinite(price) and price > 0 else unit_cost


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
        allow_degraded: bool = False,
        history_days: int = 28,
        monitor: Callable[[ShadowResult], object] | None = None,
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
        self.allow_degraded = allow_degraded  # write drafts even when the run is degraded
        self.history_days = history_days  # of ERP sales read: the average's window, the fit's
        self.monitor = monitor  # told each stored run (``shadow.monitoring.Monitor.record``)

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
                lambda: self.adapter.read_state(as_of, self.history_days),
                self.retry,
                attempts,
                deadline,
            )
            read_seconds = time.monotonic() - t0
            state, layout, layout_notes = apply_kept_layout(self.store, state)
            mapping = self.store.load_mapping(source)
            built = build_snapshot(state, mapping, self._options(run_id), self.add_new)
            snap = built.snapshot
            policy = make_policy(self.policy)
            start_run(policy, RunContext(snap.seed, days=1, start_date=snap.date))
            plan = policy.decide(snap)
            warnings = [*layout_notes, *built.warnings]
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
            if self.write_drafts and run_status(warnings) == "degraded" and not self.allow_degraded:
                warnings.append(
                    DataWarning(
                        "drafts-not-written",
                        "no drafts written: the run is degraded (allow it with --allow-degraded)",
                    )
                )
            elif self.write_drafts:
                drafts, problems = self._drafts(recs, built, run_id, attempts, deadline)
                warnings += problems
            status = run_status(warnings)
            run = record(
                status,
                "; ".join(w.message for w in sorted(warnings, key=lambda w: not w.degrading)),
                as_of=str(state.as_of),
                snapshot_hash=built.digest,
                state_digest=state.digest(),
                n=len(recs),
            )
            self.store.record(
                run,
                recs,
                comparisons,
                drafts,
                (source, mapping),
                [(w.code, w.degrading, w.message) for w in warnings],
                (self.options.forecast, built.model_file),
            )
            self.store.save_layout(source, layout)
            log.info("shadow run %s: %s, %d recommendation(s)", run_id, status, len(recs))
            issues = tuple(w.message for w in warnings)
            return self._monitored(
                ShadowResult(
                    run, recs, comparisons, drafts, built, issues, read_seconds, attempts.retries
                )
            )
        except ErpError as exc:
            reason = f"{type(exc).__name__}: {exc}"
        except ValueError as exc:  # the ERP's data cannot be planned with (said, not a crash)
            reason = f"cannot plan on this data: {exc}"
        except Exception as exc:  # noqa: BLE001 - recorded, the scheduler loop carries on
            log.exception("shadow run %s failed", run_id)
            reason = f"internal error: {type(exc).__name__}: {exc}"
        run = record("failed", reason, as_of=str(as_of or default_as_of(self.adapter)))
        self.store.record(run)
        log.warning("shadow run %s failed: %s", run_id, reason)
        return self._monitored(ShadowResult(run, retries=attempts.retries))

    def _monitored(self, result: ShadowResult) -> ShadowResult:
        """Tell the monitor about a stored run; its fault is logged, never the run's."""
        if self.monitor is not None:
            try:
                self.monitor(result)
            except Exception:  # noqa: BLE001 - the run is stored; monitoring must not undo it
                log.exception("monitoring of shadow run %s failed", result.run.run_id)
        return result

    def _options(self, run_id: str) -> SnapshotOptions:
        """The snapshot options; a model forecast without ``--model`` is fitted into a file
        next to the run store, named after the run."""
        opt = self.options
        if opt.forecast == "average" or opt.model_file is not None:
            return opt
        folder = self.store.path.parent / "models"
        return dataclasses.replace(opt, model_file=str(folder / f"{run_id}-{opt.forecast}.json"))

    def _drafts(
        self,
        recs: pd.DataFrame,
        built: BuiltSnapshot,
        run_id: str,
        attempts: Attempts,
        deadline: float,
    ) -> tuple[pd.DataFrame, list[DataWarning]]:
        """Draft purchases for approved supply lines, each written at most once.

        Per draft: its idempotency key is recorded in the run store first; the ERP is asked for
        the key (a read, retried); only if absent is the draft created, in one call that nothing
        retries; after a fault the key is looked up again (reconciled): the ERP may have saved
        the draft before the connection dropped."""
        buy = recs[recs["kind"].isin(["purchase", "expedite"]) & (recs["status"] == "approved")]
        sku_index = {k: i for i, k in enumerate(built.snapshot.sku_ids)}
        lines = [
            DraftLine(
                supplier=str(r["erp_origin"]),
                destination=str(r["erp_destination"]),
                product=str(r["erp_product"]),
                qty=float(r["qty"]),
                unit_price=_draft_price(built, sku_index[r["sku"]], float(r["unit_cost"])),
                delivery_date=_as_date(r["due_date"]),
            )
            for r in buy.to_dict("records")
            if r["erp_origin"]
        ]
        source, model = self.adapter.name, getattr(self.adapter, "draft_model", "purchase.purchase")
        rows: list[dict[str, object]] = []
        warnings: list[DataWarning] = []
        existing = 0
        for order in draft_orders(lines):
            self.store.intend_draft(source, run_id, order)

            def find(key: str = order.key) -> str | None:
                return self.adapter.find_draft(key)

            try:
                erp_id = with_retries(find, self.retry, attempts, deadline)
                if erp_id is not None:
                    existing += 1
                    self.store.settle_draft(order.key, "existing", erp_id)
                    continue
                try:
                    erp_id = self.adapter.create_draft(order, f"promotwin shadow {run_id}")
                except ErpError as exc:
                    erp_id = with_retries(find, self.retry, attempts, deadline)
                    if erp_id is None:
                        raise
                    log.warning("draft %s reconciled after a fault (%s)", order.key, exc)
            except ErpError as exc:
                self.store.settle_draft(order.key, "not-created", None)
                warnings.append(
                    DataWarning("drafts-stopped", f"draft writing stopped at {order.key}: {exc}")
                )
                break
            self.store.settle_draft(order.key, "created", erp_id)
            rows += [
                {
                    "erp_model": model,
                    "erp_id": erp_id,
                    "supplier": x.supplier,
                    "destination": x.destination,
                    "product": x.product,
                    "qty": x.qty,
                }
                for x in order.lines
            ]
        if existing:
            log.info("%d draft(s) already in the ERP under their keys: not written again", existing)
        return pd.DataFrame(rows, columns=DRAFT_COLUMNS), warnings

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
