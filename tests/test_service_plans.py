"""The plans behind the API: the recommended actions are exactly what ``twin run`` decides on
the planning day for the same scenario, policy, forecaster and seed; POS lines past the
re-plan threshold trigger a re-plan from the sensed uplift (real server, real client)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from promotwin.scenarios import compile_network, load_scenario
from promotwin.service.db import ServiceStore
from promotwin.testing.service import Server, start_server
from promotwin.workflow.config import KINDS
from promotwin.workflow.store import Store

SCENARIO = "appliance_promo"


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Server, str, Path]]:
    store = tmp_path / "service.sqlite"
    s = ServiceStore(store)
    token = s.create_key("middleware", "integrator", {}, "test")[1]
    s.close()
    args = getattr(request, "param", ("--replan-lines", "0"))
    running = start_server(store, SCENARIO, *args)
    yield running, token, store
    running.stop()


def _post(server: Server, token: str, path: str, body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=120)


def _event(version: int = 1) -> dict[str, Any]:
    p = load_scenario(SCENARIO).promotions[0]
    return {**p.model_dump(mode="json"), "version": version}


def _twin_run_lines(out: Path, day: int) -> list[tuple[str, str, str, str, int]]:
    """The plan lines ``twin run`` records for ``day``, with ids."""
    subprocess.run(
        [sys.executable, "-m", "promotwin.cli.main", "run", SCENARIO, "--out", str(out)]
        + ["--forecast", "plan", "--sensing", "--seed", "0"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    d = pd.read_parquet(out / "decisions.parquet")
    d = d[d["day"] == day]
    net = compile_network(load_scenario(SCENARIO))
    locs, skus = list(net.locations.index), list(net.skus.index)
    suppliers = list(net.suppliers.index)
    return sorted(
        (
            KINDS[k],
            suppliers[o] if KINDS[k] in ("purchase", "expedite") else locs[o],
            locs[t],
            skus[s],
            int(q),
        )
        for k, o, t, s, q in zip(
            d["kind"], d["origin"], d["destination"], d["sku"], d["proposed"], strict=True
        )
    )


def test_recommendations_are_what_twin_run_decides(
    server: tuple[Server, str, Path], tmp_path: Path
) -> None:
    running, token, _ = server
    r = _post(running, token, "/v1/promotions", _event())
    assert r.status_code == 201, r.text
    plan = r.json()
    api = sorted(
        (a["kind"], a["origin"], a["destination"], a["sku"], a["qty"]) for a in plan["actions"]
    )
    assert api, "the plan of the planning day is empty"
    assert api == _twin_run_lines(tmp_path / "run", plan["as_of_day"])
    feed = httpx.get(
        f"{running.url}/v1/recommendations?limit=5000",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    fed = sorted(
        (i["kind"], i["origin"], i["destination"], i["sku"], i["qty"]) for i in feed["items"]
    )
    assert fed == api


@pytest.mark.parametrize(
    "server",
    [("--replan-lines", "300"), ("--replan-lines", "0", "--replan-seconds", "2")],
    ids=["threshold", "schedule"],
    indirect=True,
)
def test_pos_lines_trigger_a_replan_past_the_threshold_or_on_schedule(
    server: tuple[Server, str, Path],
) -> None:
    running, token, store = server
    first = _post(running, token, "/v1/promotions", _event()).json()
    start = load_scenario(SCENARIO).promotions[0].start
    day2 = start.fromordinal(start.toordinal() + 1).isoformat()
    lines = [
        {
            "event_id": f"pos-{i}",
            "date": day2,
            "location": ["N01", "N02", "S01"][i % 3],
            "sku": f"FAN-{i % 12 + 1:02d}",
            "units": 6,  # far above a store's usual day: the sensed uplift rises
        }
        for i in range(300)
    ]
    assert _post(running, token, "/v1/events/sales", {"lines": lines}).status_code == 200
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        audit = Store(store, create=False).audit_frame(columns=["event", "actor", "detail"])
        if (audit["event"] == "replan").any():
            break
        time.sleep(0.5)
    replans = audit[audit["event"] == "replan"]
    assert len(replans) == 1 and replans["actor"].iloc[0] == "service"
    ready = httpx.get(
        f"{running.url}/v1/promotions/{first['promotion']}/readiness",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert ready["as_of"] == day2 and first["as_of"] < day2
    assert any("sensed uplift +" in note for note in ready["sensing"])
