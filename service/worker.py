"""What the planning process does: read the events and published promotions from the store,
run the twin, and write the plan (recommendations, exceptions, outbox messages, the promotion's
latest result, the audit record and the idempotency record) in one transaction of its own.

The API process only sends a small job and gets the response text back, so a re-plan costs it
neither the events' read nor the plan's JSON and inserts (~110 ms of CPU per plan on
appliance_promo with 40k POS lines stored, measured with ``time.process_time``), which would
otherwise compete with the ingest for the API process's GIL.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from promotwin import strict_json
from promotwin.scenarios.network import compile_network
from promotwin.service import db
from promotwin.service.outbox import Outbox
from promotwin.service.planning import (
    Job,
    SalesRow,
    Settings,
    StockRow,
    base_scenario,
    plan_promotion,
)
from promotwin.workflow.store import now

EXCEPTION_RUN = "serve-"  # run id prefix of the exceptions the service raises
PRIORITY_INDEX = {"low": 0, "medium": 1, "high": 2}


@dataclass(frozen=True)
class Target:
    """Where plans are written: the store and the webhook subscribers (picklable)."""

    store: str
    webhooks: tuple[str, ...] = ()
    secret: str = ""
    attempts: int = 20


@dataclass(frozen=True)
class Publish:
    """A promotion event to plan and record, with the request's key and idempotency record."""

    target: Target
    settings: Settings
    key_id: str
    key_name: str
    idem: str
    request_hash: str
    promotion_id: str
    version: int
    body: Mapping[str, Any]  # the event without ``version``


@dataclass(frozen=True)
class Outcome:
    """The response: status and JSON body (a 409's detail for a stale version)."""

    status: int
    text: str
    replay: bool = False


class StaleVersion(Exception):
    """A promotion event whose version is not newer than the one published."""


@functools.cache
def _opened(target: Target) -> tuple[db.ServiceStore, Outbox]:
    store = db.ServiceStore(target.store)
    return store, Outbox(store, target.webhooks, target.secret, max_attempts=target.attempts)


def warm(target: Target, scenario: str) -> None:
    """Load the scenario, the twin and the store once, before the first event."""
    compile_network(base_scenario(scenario))
    _opened(target)


def publish(job: Publish) -> Outcome:
    """Plan a new promotion or revision from the events so far and record it."""
    store, outbox = _opened(job.target)
    with store.engine.connect() as conn:
        stale = version_problem(conn, job.promotion_id, job.version)
        if stale:
            return Outcome(409, stale)
        published = published_events(conn)
        sales, stock = events(conn)
    promotions = {**published, job.promotion_id: job.body}
    result = plan_promotion(
        Job(job.settings, job.promotion_id, job.version, promotions, sales, stock)
    )

    def write(conn: Connection) -> str:
        stale = version_problem(conn, job.promotion_id, job.version)  # a newer one may have won
        if stale:
            raise StaleVersion(stale)
        table = db.promotions
        conn.execute(table.delete().where(table.c.id == job.promotion_id))
        record_plan(store, outbox, conn, result, job.key_name)
        text = db.compact_json(result)  # once: the stored result is the response
        conn.execute(
            table.insert().values(
                id=job.promotion_id,
                version=job.version,
                event=strict_json.dumps(job.body),
                proposed_by=job.key_name,
                received_at=now(),
                result=text,
            )
        )
        store.audit(
            conn,
            "promotion",
            job.key_name,
            f"{job.promotion_id} v{job.version}: readiness "
            f"{result['readiness']['score']:.1f}, {len(result['actions'])} actions",
        )
        return text

    try:
        return Outcome(*store.commit_once(job.key_id, job.idem, job.request_hash, 201, write))
    except StaleVersion as exc:
        return Outcome(409, str(exc))


def replan_all(target: Target, settings: Settings) -> int:
    """Re-plan every published promotion from the events stored so far; how many."""
    store, outbox = _opened(target)
    with store.engine.connect() as conn:
        rows = conn.execute(select(db.promotions)).all()
        published = {r.id: json.loads(r.event) for r in rows}
        sales, stock = events(conn)
    for r in rows:
        result = plan_promotion(Job(settings, r.id, r.version, published, sales, stock))
        with store.begin() as conn:
            record_plan(store, outbox, conn, result, "service")
            conn.execute(
                db.promotions.update()
                .where(db.promotions.c.id == result["promotion"])
                .values(result=strict_json.dumps(result))
            )
            store.audit(
                conn,
                "replan",
                "service",
                f"{result['promotion']} v{result['version']} as of {result['as_of']}: "
                f"readiness {result['readiness']['score']:.1f}",
            )
    return len(rows)


def published_events(conn: Connection) -> dict[str, dict[str, Any]]:
    rows = conn.execute(select(db.promotions.c.id, db.promotions.c.event)).all()
    return {r.id: json.loads(r.event) for r in rows}


def version_problem(conn: Connection, promotion_id: str, version: int) -> str:
    """Why ``version`` cannot be published ("" if it can)."""
    row = conn.execute(
        select(db.promotions.c.version).where(db.promotions.c.id == promotion_id)
    ).first()
    if row is not None and row.version >= version:
        return (
            f"promotion {promotion_id} is at version {row.version}: version {version} is not "
            "newer; publish a revision with a higher version"
        )
    return ""


def events(conn: Connection) -> tuple[list[SalesRow], list[StockRow]]:
    """POS units per day x location x SKU x channel, and each day's lowest stock position."""
    s, k = db.sales, db.stock
    sales = conn.execute(
        select(s.c.date, s.c.location, s.c.sku, s.c.channel, func.sum(s.c.units))
        .group_by(s.c.date, s.c.location, s.c.sku, s.c.channel)
        .order_by(s.c.date, s.c.location, s.c.sku, s.c.channel)
    ).all()
    # the lowest position reported for a day: a sell-out during the day counts
    stock = conn.execute(
        select(k.c.date, k.c.location, k.c.sku, func.min(k.c.on_hand))
        .group_by(k.c.date, k.c.location, k.c.sku)
        .order_by(k.c.date, k.c.location, k.c.sku)
    ).all()
    return [(a, b, c, d, int(e)) for a, b, c, d, e in sales], [
        (a, b, c, int(d)) for a, b, c, d in stock
    ]


def record_plan(
    store: db.ServiceStore,
    outbox: Outbox,
    conn: Connection,
    result: dict[str, Any],
    actor: str,
) -> dict[str, Any]:
    """Recommendations, exceptions (routed lines, proposed by ``actor``) and outbox messages
    of a plan, in ``conn``'s transaction; returns ``result`` with the exception ids."""
    stamp = now()
    routed = [a for a in result["actions"] if a["decision"] == "routed"]
    ids = store.workflow.create_exceptions(conn, [_exception_row(result, a, actor) for a in routed])
    for a, exc_id in zip(routed, ids, strict=True):
        a["exception_id"] = exc_id
    rows = [
        {
            "created_at": stamp,
            "promotion_id": result["promotion"],
            "version": result["version"],
            "status": a["decision"],
            "exception_id": a.get("exception_id"),
            "action": db.compact_json(a),
        }
        for a in result["actions"]
    ]
    db.insert_many(conn, db.recommendations.insert(), rows)
    approved = [a for a in result["actions"] if a["decision"] == "auto_approved"]
    outbox.enqueue(conn, "actions.approved", result["promotion"], approved)
    return result


def _exception_row(result: Mapping[str, Any], a: Mapping[str, Any], actor: str) -> dict[str, Any]:
    return {
        "run_id": f"{EXCEPTION_RUN}{result['run_id']}",
        "owner": a["owner"],
        "priority": PRIORITY_INDEX[a["priority"]],
        "created_day": a["day"],
        "expires_day": a["expires_day"],
        "policy": result["policy"],
        "kind": a["kind"],
        "origin": a["origin"],
        "destination": a["destination"],
        "sku": a["sku"],
        "qty": a["qty"],
        "unit_cost": a["unit_cost"],
        "confidence": a["confidence"],
        "value": a["value"],
        "value_at_risk": a["value_at_risk"],
        "rules": a["rules"],
        "reason": a["governance_reason"],
        "policy_reason": a["reason"],
        "snapshot_hash": result["run_id"],
        "proposed_by": actor,
    }
