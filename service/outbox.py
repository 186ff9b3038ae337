"""Approved actions out to subscribers: an outbox table written in the transaction that approved
them, delivered by a background thread as webhooks with HMAC-SHA256 signed bodies, retried
with exponential backoff until the receiver answers 2xx. Nothing is lost across restarts (the
rows stay until delivered); a receiver may see a message twice (after a crash between its
answer and our commit) and deduplicates by ``message_id`` or the ``X-Promotwin-Delivery`` id.

After ``max_attempts`` failed attempts a message is abandoned: its row stays (with the last
error), and an exception in the ``integration`` queue says which receiver refused what and why.
Approving that exception re-sends the message (from the first attempt's backoff); rejecting it
leaves it abandoned, with the decision in the audit trail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update

from promotwin import strict_json
from promotwin.workflow.store import now

if TYPE_CHECKING:
    from promotwin.service.db import ServiceStore

SIGNATURE = "X-Promotwin-Signature"
MAX_BACKOFF = 60.0  # seconds between attempts, at most
MAX_ATTEMPTS = 20  # then abandoned: ~15 minutes of attempts with the default backoff
QUEUE = "integration"  # the exception queue of abandoned deliveries
DELIVERY_RUN = "serve-outbox"  # run id of those exceptions (the service's prefix, see app.py)
DELIVERY_KIND = "delivery"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Outbox:
    def __init__(
        self,
        store: ServiceStore,
        urls: Sequence[str],
        secret: str,
        backoff: float = 0.5,
        poll: float = 0.2,
        max_attempts: int = MAX_ATTEMPTS,
    ):
        if urls and not secret:
            raise ValueError(
                "webhooks need a signing secret: set TWIN_WEBHOOK_SECRET (receivers check "
                f"the {SIGNATURE} header with it)"
            )
        self.store, self.urls, self.secret = store, tuple(urls), secret
        self.backoff, self.poll, self.max_attempts = backoff, poll, max_attempts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def enqueue(
        self, conn: Connection, topic: str, promotion: str, actions: Sequence[dict[str, Any]]
    ) -> None:
        """One message per subscriber, in ``conn``'s transaction (nothing if none)."""
        from promotwin.service.db import outbox

        if not self.urls or not actions:
            return
        stamp = now()
        body = {
            "type": topic,
            "message_id": uuid.uuid4().hex,
            "created_at": stamp,
            "promotion": promotion,
            "actions": list(actions),
        }
        text = strict_json.dumps(body, separators=(",", ":"), sort_keys=True)
        rows = [
            {
                "created_at": stamp,
                "url": url,
                "body": text,
                "attempts": 0,
                "next_attempt": time.time(),
                "last_error": "",
            }
            for url in self.urls
        ]
        conn.execute(outbox.insert(), rows)

    def start(self) -> None:
        if self.urls:
            self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=5.0) as client:
            while not self._stop.is_set():
                if not self.deliver_due(client):
                    self._stop.wait(self.poll)

    def deliver_due(self, client: Any) -> int:
        """Attempt every message due now, oldest first; returns how many were attempted."""
        from promotwin.service.db import outbox

        with self.store.engine.connect() as conn:
            due = conn.execute(
                select(outbox)
                .where(
                    outbox.c.delivered_at.is_(None)
                    & outbox.c.abandoned_at.is_(None)
                    & (outbox.c.next_attempt <= time.time())
                )
                .order_by(outbox.c.id)
                .limit(50)
            ).all()
        for row in due:
            error = self._post(client, row.id, row.url, row.body.encode())
            attempts = row.attempts + 1
            values: dict[str, Any] = {"attempts": attempts}
            if error:
                wait = min(MAX_BACKOFF, self.backoff * 2**row.attempts)
                values |= {"next_attempt": time.time() + wait, "last_error": error}
            else:
                values |= {"delivered_at": now(), "last_error": ""}
            give_up = bool(error) and 0 < self.max_attempts <= attempts
            if give_up:
                values["abandoned_at"] = now()
            with self.store.begin() as conn:
                conn.execute(update(outbox).where(outbox.c.id == row.id).values(**values))
                if give_up:
                    self._raise_exception(conn, row, attempts, error)
        return len(due)

    def _raise_exception(self, conn: Connection, row: Any, attempts: int, error: str) -> None:
        """The abandoned message as an exception of the integration queue (in ``conn``)."""
        body = json.loads(row.body)
        actions = body.get("actions", [])
        reason = (
            f"delivery {row.id} to {row.url} abandoned after {attempts} attempts "
            f"(last: {error}); approve to send it again, reject to leave it undelivered"
        )
        (exception_id,) = self.store.workflow.create_exceptions(
            conn,
            [
                {
                    "run_id": DELIVERY_RUN,
                    "owner": QUEUE,
                    "priority": 2,  # high: approved actions are not reaching the integrator
                    "created_day": 0,
                    "expires_day": 0,
                    "policy": "webhook",
                    "kind": DELIVERY_KIND,
                    "origin": "outbox",
                    "destination": str(row.id),  # the outbox row, kept
                    "sku": "",
                    "qty": len(actions),
                    "unit_cost": 0.0,
                    "confidence": 1.0,
                    # the actions were approved already: re-sending them commits no money
                    # (value 0, any limit in the queue will do); what does not reach the
                    # integrator is what is at risk
                    "value": 0.0,
                    "value_at_risk": float(sum(a.get("value", 0.0) for a in actions)),
                    "rules": "webhook",
                    "reason": reason,
                    "policy_reason": f"{body.get('type', '')} {body.get('message_id', '')}",
                    "snapshot_hash": str(body.get("message_id", "")),
                    "proposed_by": "service",
                }
            ],
        )
        self.store.audit(conn, "delivery_abandoned", "service", reason)
        print(f"{reason} (exception {exception_id})", file=sys.stderr, flush=True)

    def redeliver(self, conn: Connection, outbox_id: int) -> None:
        """Send an abandoned message again, from its first attempt (in ``conn``)."""
        from promotwin.service.db import outbox

        conn.execute(
            update(outbox)
            .where(outbox.c.id == outbox_id)
            .values(attempts=0, next_attempt=time.time(), abandoned_at=None)
        )

    def _post(self, client: Any, delivery: int, url: str, body: bytes) -> str:
        """ "" if the receiver took it, else why not."""
        import httpx

        headers = {
            "Content-Type": "application/json",
            SIGNATURE: sign(self.secret, body),
            "X-Promotwin-Delivery": str(delivery),
        }
        try:
            answer = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= answer.status_code < 300:
            return ""
        return f"HTTP {answer.status_code}"
