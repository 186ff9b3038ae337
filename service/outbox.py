"""Approved actions out to subscribers: an outbox table written in the transaction that approved
them, delivered by a background thread as webhooks with HMAC-SHA256 signed bodies, retried
with exponential backoff until the receiver answers 2xx. Nothing is lost across restarts (the
rows stay until delivered); a receiver may see a message twice (after a crash between its
answer and our commit) and deduplicates by ``message_id`` or the ``X-Promotwin-Delivery`` id.
"""

from __future__ import annotations

import hashlib
import hmac
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
    ):
        if urls and not secret:
            raise ValueError(
                "webhooks need a signing secret: set TWIN_WEBHOOK_SECRET (receivers check "
                f"the {SIGNATURE} header with it)"
            )
        self.store, self.urls, self.secret = store, tuple(urls), secret
        self.backoff, self.poll = backoff, poll
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
                .where(outbox.c.delivered_at.is_(None) & (outbox.c.next_attempt <= time.time()))
                .order_by(outbox.c.id)
                .limit(50)
            ).all()
        for row in due:
            error = self._post(client, row.id, row.url, row.body.encode())
            values: dict[str, Any] = {"attempts": row.attempts + 1}
            if error:
                wait = min(MAX_BACKOFF, self.backoff * 2**row.attempts)
                values |= {"next_attempt": time.time() + wait, "last_error": error}
            else:
                values |= {"delivered_at": now(), "last_error": ""}
            with self.store.begin() as conn:
                conn.execute(update(outbox).where(outbox.c.id == row.id).values(**values))
        return len(due)

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
