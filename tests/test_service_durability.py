"""Durability: a real ``twin serve`` killed with SIGKILL while a stream of event batches arrives,
restarted on the same store, the client retrying the batch in flight with its
``Idempotency-Key``; compared with an uninterrupted run of the same stream: every accepted
line is there once, every batch got the same answer, the audit trail has one record per batch
and its chain is intact."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from promotwin.service import db
from promotwin.testing.service import start_server
from promotwin.workflow.store import Store

BATCHES = 30
LINES = 200
STORES = ["N01", "N02", "N03", "C01", "C02", "S01", "S02"]


def batch(i: int) -> tuple[str, dict[str, Any]]:
    """Batch ``i``: new lines and, after the first, 20 lines of the one before (resent)."""
    rng = random.Random(i)

    def line(j: int, k: int) -> dict[str, Any]:
        return {
            "event_id": f"pos-{j}-{k}",
            "date": f"2026-05-{5 + j % 20:02d}",
            "location": STORES[(j + k) % len(STORES)],
            "sku": f"FAN-{k % 12 + 1:02d}",
            "channel": "walk_in",
            "units": random.Random(j * 1000 + k).randint(0, 5),
        }

    lines = [line(i, k) for k in range(LINES)]
    if i:
        lines += [line(i - 1, k) for k in rng.sample(range(LINES), 20)]
    if i % 5 == 4:  # every fifth is a stock batch
        stock = [
            {"event_id": f"stk-{i}-{k}", "date": "2026-05-20", "location": "N01"}
            | {"sku": f"FAN-{k:02d}", "on_hand": k + i}
            for k in range(1, 13)
        ]
        return "/v1/events/inventory", {"lines": stock}
    return "/v1/events/sales", {"lines": lines}


def stream(store: Path, token: str, kill_after: set[int]) -> tuple[list[Any], int]:
    """Send every batch in order; kill -9 the server while batch k+1 is in flight for each k in
    ``kill_after``, restart it and retry. Returns the answers and how many kills hit."""
    server = start_server(store, "appliance_promo", "--replan-lines", "0")
    answers: list[Any] = []
    kills = 0
    try:
        for i in range(BATCHES):
            path, body = batch(i)
            killer = None
            if i - 1 in kill_after:
                # kill while this batch is being sent, validated or committed
                killer = threading.Timer(random.Random(i).uniform(0.0, 0.05), server.kill)
                killer.start()
            while True:
                try:
                    r = httpx.post(
                        f"{server.url}{path}",
                        json=body,
                        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"b{i}"},
                        timeout=30,
                    )
                    if killer is not None:
                        killer.join()
                        if server.process.poll() is not None:  # killed after it answered
                            kills += 1
                            server = start_server(store, "appliance_promo", "--replan-lines", "0")
                    break
                except httpx.TransportError:
                    if killer is not None:
                        killer.join()
                        killer = None
                    kills += 1
                    server.kill()
                    server = start_server(store, "appliance_promo", "--replan-lines", "0")
            assert r.status_code == 200, r.text[:300]
            answers.append(r.json())
    finally:
        server.stop()
    return answers, kills


def _contents(store: Path) -> dict[str, Any]:
    s = db.ServiceStore(store, create=False)
    with s.engine.connect() as conn:
        sales = sorted(map(tuple, conn.execute(select(db.sales)).all()))
        stock = sorted(map(tuple, conn.execute(select(db.stock)).all()))
        replies = sorted(
            conn.execute(select(db.idempotency.c.idempotency_key, db.idempotency.c.body)).all()
        )
    s.close()
    audit = Store(store, create=False).audit_frame()
    return {"sales": sales, "stock": stock, "replies": replies, "audit": audit}


def _key(store: Path) -> str:
    s = db.ServiceStore(store)
    token = s.create_key("middleware", "integrator", {}, "test")[1]
    s.close()
    return token


@pytest.mark.slow  # four server starts, ~2 min on 2 shared cores: `make test-slow`
def test_kill_9_during_a_stream_loses_nothing_and_applies_nothing_twice(tmp_path: Path) -> None:
    calm, crashed = tmp_path / "calm.sqlite", tmp_path / "crashed.sqlite"
    expected, _ = stream(calm, _key(calm), set())
    answers, kills = stream(crashed, _key(crashed), {8, 19})
    assert kills == 2, "the server was not killed during the stream"
    assert answers == expected  # every batch answered as if nothing happened
    a, b = _contents(calm), _contents(crashed)
    assert a["sales"] == b["sales"] and a["stock"] == b["stock"]
    sent = {x["event_id"] for i in range(BATCHES) for x in batch(i)[1]["lines"]}
    assert len(b["sales"]) + len(b["stock"]) == len(sent)  # the resent lines once only
    assert a["replies"] == b["replies"]
    for audit in (a["audit"], b["audit"]):
        events = audit[audit["event"].isin(["sales", "inventory"])]
        assert len(events) == BATCHES  # one record per batch: none applied twice
        assert int(events["qty"].sum()) == len(b["sales"]) + len(b["stock"])
    assert Store(crashed, create=False).verify().ok
