"""``twin serve`` against a real uvicorn process on 127.0.0.1 with a real HTTP client: keys and
roles, problem bodies, idempotent replays, promotions (created, revised mid-campaign, older
versions refused), events, exceptions decided under the approval store's rules, webhooks.

One server for the module (its start loads the twin in two processes); each test makes its own
keys, so no test depends on another's requests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from promotwin.scenarios import Scenario, load_scenario
from promotwin.service.db import ServiceStore
from promotwin.testing.service import Server, start_server
from promotwin.workflow.store import Store

SECRET = "test-webhook-secret"
FAILS_FIRST = 2  # the receiver answers 500 to the first attempts of each message
ATTEMPTS = FAILS_FIRST + 1  # a message is abandoned after this many failed attempts


class Receiver:
    """A local webhook receiver that fails the first ``fails_first`` attempts of each message."""

    def __init__(self, fails_first: int = FAILS_FIRST) -> None:
        self.fails_first = fails_first
        self.attempts: dict[str, int] = {}
        self.accepted: list[tuple[dict[str, Any], str]] = []  # body, signature header
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                n = receiver.attempts.get(body["message_id"], 0) + 1
                receiver.attempts[body["message_id"]] = n
                ok = n > receiver.fails_first
                if ok:
                    receiver.accepted.append((body, self.headers["X-Promotwin-Signature"]))
                    receiver.raw[body["message_id"]] = raw
                self.send_response(200 if ok else 500)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self.raw: dict[str, bytes] = {}
        self.http = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/hook"

    def close(self) -> None:
        self.http.shutdown()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def dead_receiver() -> Iterator[Receiver]:
    """Refuses every attempt (until a test lets it take messages)."""
    r = Receiver(fails_first=10**9)
    yield r
    r.close()


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario("appliance_promo")


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver, dead_receiver: Receiver
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("serve")
    # shipments above 2 units go to store operations: the plan raises exceptions to decide
    rules = folder / "rules.yaml"
    rules.write_text("name: strict\nthresholds:\n  shipment: {max_qty: 2}\n")
    # most settings from serve.yaml, the rest (scenario, store, port) on the command line
    config = folder / "serve.yaml"
    config.write_text(
        f"governance: {rules}\n"
        f"webhooks:\n  urls: [{receiver.url}, {dead_receiver.url}]\n"
        f"  secret_env: TEST_HOOK_SECRET\n  max_attempts: {ATTEMPTS}\n"
        "thresholds: {replan_lines: 0}\n"
        "limits: {rate_per_second: 20, max_body_bytes: 400000}\n"
    )
    server = start_server(
        folder / "service.sqlite",
        "appliance_promo",
        "--config",
        str(config),
        env={"TEST_HOOK_SECRET": SECRET},
    )
    yield server
    server.stop()


def store_of(server: Server) -> str:
    command = server.process.args
    assert isinstance(command, list)
    return str(command[command.index("--store") + 1])


def new_key(server: Server, role: str, name: str | None = None, **limits: float) -> str:
    store = ServiceStore(store_of(server))
    try:
        return store.create_key(name or f"{role}-{uuid.uuid4().hex[:6]}", role, limits, "test")[1]
    finally:
        store.close()


def post(
    server: Server, path: str, key: str | None, body: Any, idem: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": idem or uuid.uuid4().hex}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=120)


def get(server: Server, path: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(f"{server.url}{path}", headers=headers, timeout=60)


def event(scenario: Scenario, version: int, **changes: Any) -> dict[str, Any]:
    p = scenario.promotions[0]
    return {**p.model_dump(mode="json"), **changes, "version": version}


def sales_lines(n: int, date: str = "2026-05-10", prefix: str = "") -> list[dict[str, Any]]:
    stores = ["N01", "N02", "C01", "S01"]
    return [
        {
            "event_id": f"{prefix or uuid.uuid4().hex}-{i}",
            "date": date,
            "location": stores[i % 4],
            "sku": f"FAN-{i % 12 + 1:02d}",
            "channel": "walk_in",
            "units": 1 + i % 3,
        }
        for i in range(n)
    ]


def test_health_docs_and_openapi_need_no_key(served: Server) -> None:
    assert get(served, "/v1/health", None).json()["status"] == "ok"
    spec = get(served, "/v1/openapi.json", None).json()
    assert {"/v1/promotions", "/v1/events/sales", "/v1/exceptions/{exception_id}/approve"} <= set(
        spec["paths"]
    )
    assert "swagger" in get(served, "/v1/docs", None).text.lower()


@pytest.mark.parametrize("token", [None, "nonsense", "ptk_000000000000_wrong"])
def test_no_valid_key_is_401_with_a_problem_body_that_leaks_nothing(
    served: Server, token: str | None
) -> None:
    r = get(served, "/v1/recommendations", token)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    body = r.json()
    assert body["status"] == 401 and body["instance"] == "/v1/recommendations"
    assert token is None or token not in r.text


def test_a_revoked_key_is_refused(served: Server) -> None:
    token = new_key(served, "viewer")
    assert get(served, "/v1/recommendations", token).status_code == 200
    store = ServiceStore(store_of(served))
    store.revoke_key(token.split("_")[1], "test")
    store.close()
    assert get(served, "/v1/recommendations", token).status_code == 401


def test_keys_are_stored_hashed(served: Server) -> None:
    token = new_key(served, "viewer")
    secret = token.split("_", 2)[2]
    store = ServiceStore(store_of(served))
    rows = store.list_keys()
    store.close()
    assert rows and all(secret not in json.dumps(r) for r in rows)
    files = [Path(store_of(served)), Path(store_of(served) + "-wal")]
    raw = b"".join(f.read_bytes() for f in files if f.exists())
    assert secret.encode() not in raw
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in raw


# each role's allowed (2xx or a domain answer) and refused (403) calls
CALLS = {
    "read": ("GET", "/v1/recommendations"),
    "propose": ("POST", "/v1/promotions"),
    "ingest": ("POST", "/v1/events/sales"),
    "decide": ("POST", "/v1/exceptions/999999/approve"),
}
ALLOWED = {
    "viewer": {"read"},
    "planner": {"read", "propose"},
    "integrator": {"read", "propose", "ingest"},
    "approver": {"read", "propose", "decide"},
    "admin": {"read", "propose", "ingest", "decide"},
}


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_each_role_allowed_and_refused_calls(served: Server, role: str) -> None:
    token = new_key(served, role)
    for call, (method, path) in CALLS.items():
        if method == "GET":
            r = get(served, path, token)
        else:
            # an invalid body: an allowed role gets past the role check to the 422
            r = post(served, path, token, {"invalid": True})
        if call in ALLOWED[role]:
            assert r.status_code in (200, 422), (role, call, r.text)
        else:
            assert r.status_code == 403, (role, call, r.text)
            assert role in r.json()["detail"]


def test_invalid_promotion_names_every_field_and_writes_nothing(
    served: Server, scenario: Scenario
) -> None:
    token = new_key(served, "planner")
    before = ServiceStore(store_of(served)).counts()
    bad = event(scenario, 1, depth=1.5, start="someday", colour="red")
    del bad["id"]
    r = post(served, "/v1/promotions", token, bad)
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"body.id", "body.depth", "body.start", "body.colour"}
    unknown = event(scenario, 1, id="NEW", skus=["FAN-01", "NOPE"], locations={"regions": ["X"]})
    r = post(served, "/v1/promotions", token, unknown)
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"body.skus.1", "body.locations.regions.0"}
    assert "NOPE" in r.text
    assert ServiceStore(store_of(served)).counts() == before


def test_missing_idempotency_key_is_named(served: Server) -> None:
    token = new_key(served, "integrator")
    r = httpx.post(
        f"{served.url}/v1/events/sales",
        json={"lines": sales_lines(1)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["header.Idempotency-Key"]


def test_sales_are_deduplicated_and_replays_return_the_first_response(served: Server) -> None:
    token = new_key(served, "integrator")
    lines = sales_lines(500)
    first = post(served, "/v1/events/sales", token, {"lines": lines}, idem="batch-1")
    assert first.json() == {"accepted": 500, "duplicates": 0}
    again = post(served, "/v1/events/sales", token, {"lines": lines}, idem="batch-1")
    assert again.status_code == 200 and again.content == first.content
    assert again.headers["idempotent-replay"] == "1"
    overlap = lines[250:] + sales_lines(100)
    r = post(served, "/v1/events/sales", token, {"lines": overlap}, idem="batch-2")
    assert r.json() == {"accepted": 100, "duplicates": 250}
    reused = post(served, "/v1/events/sales", token, {"lines": sales_lines(3)}, idem="batch-2")
    assert reused.status_code == 422
    assert reused.json()["errors"][0]["field"] == "header.Idempotency-Key"


def test_unknown_ids_in_events_are_named(served: Server) -> None:
    token = new_key(served, "integrator")
    lines = sales_lines(3)
    lines[1] |= {"sku": "NOPE", "location": "DC-NORTH"}  # a DC sells ecommerce only
    lines[2] |= {"date": "2031-01-01"}
    r = post(served, "/v1/events/sales", token, {"lines": lines})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {
        "body.lines.1.sku",
        "body.lines.1.channel",
        "body.lines.2.date",
    }
    stock = [{"event_id": "s1", "date": "2026-05-10", "location": "Z9", "sku": "FAN-01"}]
    r = post(served, "/v1/events/inventory", token, {"lines": stock})
    assert {e["field"] for e in r.json()["errors"]} == {"body.lines.0.on_hand"}


def test_a_body_above_the_limit_is_413(served: Server) -> None:
    token = new_key(served, "integrator")
    r = post(served, "/v1/events/sales", token, {"lines": sales_lines(4000)})
    assert r.status_code == 413
    assert r.json()["status"] == 413


def test_rate_limit_per_key_from_a_config_file(tmp_path: Path) -> None:
    # its own server at 1 request/s (bursts of 2), set in serve.yaml: six requests in a row
    # cannot all fit, however slowly a loaded machine answers them
    config = tmp_path / "serve.yaml"
    config.write_text("scenario: appliance_promo\nlimits: {rate_per_second: 1, rate_burst: 2}\n")
    server = start_server(tmp_path / "rate.sqlite", None, "--config", str(config))
    try:
        token, other = new_key(server, "viewer"), new_key(server, "viewer")
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
            answers = [client.get(f"{server.url}/v1/exceptions") for _ in range(6)]
        codes = [a.status_code for a in answers]
        assert codes[0] == 200 and 429 in codes, codes
        limited = next(a for a in answers if a.status_code == 429)
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) >= 1
        assert get(server, "/v1/exceptions", other).status_code == 200  # not another key
    finally:
        server.stop()


def test_promotion_created_replayed_revised_mid_campaign_and_older_refused(
    served: Server, scenario: Scenario, receiver: Receiver
) -> None:
    planner = new_key(served, "planner", name="ana")
    first = post(served, "/v1/promotions", planner, event(scenario, 1), idem="promo-1")
    assert first.status_code == 201, first.text
    plan = first.json()
    assert 0 <= plan["readiness"]["score"] <= 100 and plan["readiness"]["reasons"]
    assert plan["readiness"]["mitigations"]
    groups = {(r["by"], r["group"]) for r in plan["projected_stockouts"]["lost_units"]}
    assert {("region", "North"), ("cluster", "urban")} <= groups
    assert {"walk_in", "pickup", "ecommerce"} <= set(plan["projected_stockouts"]["lost_units"][0])
    decisions = {a["decision"] for a in plan["actions"]}
    assert decisions == {"auto_approved", "routed"}
    assert all(a["exception_id"] is not None for a in plan["actions"] if a["decision"] == "routed")
    replay = post(served, "/v1/promotions", planner, event(scenario, 1), idem="promo-1")
    assert replay.content == first.content
    assert post(served, "/v1/promotions", planner, event(scenario, 1)).status_code == 409

    # mid-campaign: POS lines of the first days, then a revision at a shallower depth
    integrator = new_key(served, "integrator")
    start = scenario.promotions[0].start
    for day in range(3):
        date = start.fromordinal(start.toordinal() + day).isoformat()
        r = post(served, "/v1/events/sales", integrator, {"lines": sales_lines(400, date)})
        assert r.status_code == 200
    revised = post(served, "/v1/promotions", planner, event(scenario, 2, depth=0.15))
    assert revised.status_code == 201, revised.text
    assert revised.json()["as_of"] == start.fromordinal(start.toordinal() + 2).isoformat()
    assert revised.json()["sensing"]  # the POS lines moved the sensed uplift
    assert post(served, "/v1/promotions", planner, event(scenario, 1)).status_code == 409
    viewer = new_key(served, "viewer")
    ready = get(served, f"/v1/promotions/{scenario.promotions[0].id}/readiness", viewer).json()
    assert ready["version"] == 2 and ready["readiness"] == revised.json()["readiness"]
    assert get(served, "/v1/promotions/NOPE/readiness", viewer).status_code == 404

    feed = get(served, "/v1/recommendations?since=0&limit=5000", viewer).json()
    assert {i["version"] for i in feed["items"]} >= {1, 2}
    later = get(served, f"/v1/recommendations?since={feed['next']}", viewer).json()
    assert later["items"] == [] and later["next"] == feed["next"]


def _routed(server: Server, key: str, proposer: str) -> list[dict[str, Any]]:
    items = get(server, "/v1/exceptions", key).json()["items"]
    return [e for e in items if e["proposed_by"] == proposer and e["owner"] == "store_ops"]


def test_exceptions_decided_under_the_approval_rules_and_published(
    served: Server, scenario: Scenario, receiver: Receiver
) -> None:
    planner = new_key(served, "planner", name="cy")
    p = event(scenario, 1, id="SPRING-FANS", skus=["FAN-01", "FAN-02"], depth=0.2)
    assert post(served, "/v1/promotions", planner, p).status_code == 201
    viewer = new_key(served, "viewer")
    open_ = _routed(served, viewer, "cy")
    assert len(open_) >= 3
    first, second, third = open_[:3]

    same_person = new_key(served, "approver", name="cy", store_ops=1e9)
    low_limit = new_key(served, "approver", name="dee", store_ops=0.5)
    other_queue = new_key(served, "approver", name="eve", finance=1e9)
    bo = new_key(served, "approver", name="bo", store_ops=1e9)
    path = f"/v1/exceptions/{first['id']}/approve"
    for refused, why in ((same_person, "proposed"), (low_limit, "limit"), (other_queue, "queues")):
        r = post(served, path, refused, {"note": "try"})
        assert r.status_code == 403 and why in r.json()["detail"], r.text
    integrator = new_key(served, "integrator")
    assert post(served, path, integrator, {}).status_code == 403

    ok = post(served, path, bo, {"note": "display space confirmed"}, idem="decide-1")
    assert ok.status_code == 200 and ok.json()["status"] == "approved"
    assert post(served, path, bo, {"note": "display space confirmed"}, idem="decide-1").content == (
        ok.content
    )
    assert post(served, path, bo, {}).status_code == 409  # decided already
    rejected = post(served, f"/v1/exceptions/{second['id']}/reject", bo, {"note": "no"})
    assert rejected.json()["status"] == "rejected"
    assert post(served, "/v1/exceptions/999999/approve", bo, {}).status_code == 404

    audit = Store(store_of(served), create=False).audit_frame()
    mine = audit[audit["exception_id"] == first["id"]]
    assert list(mine["event"]) == ["approved"] and list(mine["actor"]) == ["bo"]
    assert "API key" in mine["detail"].iloc[0] and "display space" in mine["detail"].iloc[0]
    assert (audit["event"] == "promotion").any() and set(
        audit.loc[audit["event"] == "promotion", "actor"]
    ) >= {"cy"}
    assert third["status"] == "open"

    # the approved action reaches the webhook, signed, after the receiver failed twice
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        hits = [
            b for b, _ in receiver.accepted if b["actions"][0].get("exception_id") == first["id"]
        ]
        if hits:
            break
        time.sleep(0.2)
    assert hits, "the approved action was not delivered"
    body = hits[0]
    signature = dict((b["message_id"], s) for b, s in receiver.accepted)[body["message_id"]]
    raw = receiver.raw[body["message_id"]]
    assert signature == "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert receiver.attempts[body["message_id"]] == FAILS_FIRST + 1
    assert body["actions"][0]["decided_by"] == "bo"


def _outbox_row(server: Server, url: str, promotion: str) -> dict[str, Any] | None:
    from sqlalchemy import select

    from promotwin.service import db

    store = ServiceStore(store_of(server))
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(select(db.outbox).where(db.outbox.c.url == url)).mappings()
            mine = [dict(r) for r in rows if json.loads(r["body"])["promotion"] == promotion]
    finally:
        store.close()
    return mine[0] if mine else None


def _wait(check: Any, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    return check()


def test_a_delivery_refused_every_time_is_abandoned_kept_raised_and_resent_on_approval(
    served: Server, scenario: Scenario, dead_receiver: Receiver
) -> None:
    planner = new_key(served, "planner", name="fay")
    p = event(scenario, 1, id="DEAD-HOOK", skus=["FAN-03", "FAN-04"], depth=0.2)
    assert post(served, "/v1/promotions", planner, p).status_code == 201

    def abandoned() -> dict[str, Any] | None:
        row = _outbox_row(served, dead_receiver.url, "DEAD-HOOK")
        return row if row is not None and row["abandoned_at"] is not None else None

    row = _wait(abandoned)
    assert row is not None, "the refused message was not abandoned"
    message_id = json.loads(row["body"])["message_id"]
    assert row["attempts"] == ATTEMPTS and row["delivered_at"] is None
    assert "500" in row["last_error"]
    time.sleep(2.0)  # abandoned: no attempt after the last one
    assert dead_receiver.attempts[message_id] == ATTEMPTS

    integrator = new_key(served, "integrator")
    items = get(served, "/v1/exceptions", integrator).json()["items"]
    raised = [e for e in items if e["kind"] == "delivery" and e["destination"] == str(row["id"])]
    assert len(raised) == 1, items
    exc = raised[0]
    assert exc["owner"] == "integration" and exc["status"] == "open"
    assert dead_receiver.url in exc["reason"] and f"{ATTEMPTS} attempts" in exc["reason"]

    path = f"/v1/exceptions/{exc['id']}/approve"
    assert post(served, path, integrator, {}).status_code == 403  # integrators decide nothing
    other_queue = new_key(served, "approver", name="gil", store_ops=1e9)
    assert post(served, path, other_queue, {}).status_code == 403
    dead_receiver.fails_first = ATTEMPTS  # the receiver is fixed: the next attempt lands
    ops = new_key(served, "approver", name="hal", integration=0)
    assert post(served, path, ops, {"note": "receiver fixed"}).json()["status"] == "approved"

    def delivered() -> dict[str, Any] | None:
        again = _outbox_row(served, dead_receiver.url, "DEAD-HOOK")
        return again if again is not None and again["delivered_at"] is not None else None

    done = _wait(delivered)
    assert done is not None and done["attempts"] == 1 and done["abandoned_at"] is None
    assert dead_receiver.attempts[message_id] == ATTEMPTS + 1
    assert [b["message_id"] for b, _ in dead_receiver.accepted].count(message_id) == 1
    audit = Store(store_of(served), create=False).audit_frame()
    assert (audit["event"] == "delivery_abandoned").any()
    decided = audit[audit["exception_id"] == exc["id"]]
    assert list(decided["event"]) == ["approved"] and list(decided["actor"]) == ["hal"]
