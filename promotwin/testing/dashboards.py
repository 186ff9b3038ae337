"""Helpers for the dashboard tests: real stores and result folders built through the packages'
own APIs, the appliance promotion's projections, and the logging filter for AppTest's "missing
ScriptRunContext" noise."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from promotwin.scenarios import load_scenario
from promotwin.shadow.compare import compare
from promotwin.shadow.store import RunRecord, RunStore
from promotwin.testing.scenarios import small_scenario
from promotwin.twin.outlook import (
    PlannerResult,
    PromoSettings,
    find_promotion,
    project,
    variant_yaml,
)
from promotwin.workflow.store import AuditEvent, Store

APP = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"
APPLIANCE_PROMO = "SUMMER-COOL"


@functools.cache
def appliance_projections() -> tuple[PlannerResult, PlannerResult]:
    """The appliance promotion as planned and at 40% off: one base-stock twin run each, seed 0
    (computed once per test session; treat the results as read-only)."""
    s = load_scenario("appliance_promo")
    current = project(s, APPLIANCE_PROMO, PromoSettings.of(find_promotion(s, APPLIANCE_PROMO)))
    deeper = project(s, APPLIANCE_PROMO, dataclasses.replace(current.settings, depth=0.4))
    return current, deeper


class _NoScriptRunContext(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "missing ScriptRunContext" not in record.getMessage()


def quiet_streamlit() -> None:
    """Drop the "missing ScriptRunContext" warnings AppTest triggers (a filter, because
    Streamlit resets its loggers' levels)."""
    f = _NoScriptRunContext()
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).addFilter(f)
    for handler in logging.getLogger("streamlit").handlers:
        handler.addFilter(f)


def small_scenario_file(folder: Path) -> Path:
    """The small generated scenario (one promotion) as an explicit YAML file."""
    s = small_scenario()
    path = folder / "small.yaml"
    path.write_text(variant_yaml(s))
    return path


def experiment_folder(folder: Path) -> Path:
    """A real `twin compare` output: two policies, a depth sweep, two replications."""
    from promotwin.experiments.runner import run_experiment
    from promotwin.experiments.spec import load_spec

    scenario = small_scenario_file(folder)
    spec = {
        "name": "tiny_sweep",
        "scenarios": [scenario.name],
        "policies": ["order-point", "base-stock"],
        "baseline": "order-point",
        "replications": 2,
        "base_seed": 3,
        "sweep": {"parameter": "depth", "values": [0.1, 0.4]},
    }
    spec_path = folder / "tiny_sweep.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = folder / "results" / "tiny_sweep"
    run_experiment(load_spec(spec_path), out, workers=1)
    return out


def _exception(run: str, i: int, owner: str) -> dict[str, Any]:
    return {
        "run_id": run,
        "owner": owner,
        "priority": i % 3,
        "created_day": i,
        "expires_day": i + 3,
        "policy": "base-stock",
        "kind": "purchase",
        "origin": "CoolAir",
        "destination": "DC-NORTH",
        "sku": f"FAN-0{i}",
        "qty": 100 + i,
        "unit_cost": 30.0,
        "confidence": 0.4,
        "value": 3000.0 + 30 * i,
        "value_at_risk": 1000.0 * (i + 1),
        "rules": "purchase.max_value",
        "reason": f"order value over the limit ({i})",
        "policy_reason": "below reorder point",
        "snapshot_hash": "abc",
    }


def approval_store(path: Path, n: int = 4) -> Store:
    """An approval store with ``n`` open exceptions routed to two owner queues."""
    store = Store(path)
    owners = ("supply_chain", "merchandising")
    with store.begin() as conn:
        ids = store.create_exceptions(conn, [_exception("r1", i, owners[i % 2]) for i in range(n)])
        store.append(
            conn,
            [AuditEvent("r1", "routed", "policy:base-stock", 0, exception_id=i) for i in ids],
        )
    return store


def shadow_store(path: Path) -> RunStore:
    """Three shadow runs: two ok with comparisons against the ERP, one failed with its reason."""
    store = RunStore(path)
    day = dt.date(2026, 3, 10)
    for i in range(2):
        as_of = day + dt.timedelta(days=i)
        policy = pd.DataFrame(
            {
                "sku": ["A", "B", "C"],
                "location": ["DC"] * 3,
                "qty": [100.0, 40.0 + 20 * i, 5.0],
                "due": [as_of + dt.timedelta(days=4)] * 3,
            }
        )
        erp = pd.DataFrame(
            {
                "sku": ["A", "B", "D"],
                "location": ["DC"] * 3,
                "qty": [100.0, 10.0, 8.0],
                "due": [as_of + dt.timedelta(days=5)] * 3,
            }
        )
        c = compare(policy, erp)
        recs = pd.DataFrame(
            {
                "line": range(3),
                "kind": ["purchase"] * 3,
                "origin": ["V"] * 3,
                "destination": ["DC"] * 3,
                "sku": ["A", "B", "C"],
                "qty": policy["qty"].astype(int),
                "unit_cost": [2.0, 50.0, 1.0],
                "confidence": [0.9] * 3,
                "reason": ["below reorder point"] * 3,
                "status": ["approved"] * 3,
                "due_date": [str(d) for d in policy["due"]],
                "erp_origin": ["7"] * 3,
                "erp_destination": ["1"] * 3,
                "erp_product": ["10", "11", "12"],
            }
        )
        run = RunRecord(
            f"run{i}",
            f"2026-03-{10 + i}T06:00:00+00:00",
            f"2026-03-{10 + i}T06:00:05+00:00",
            "ok",
            "",
            "folder:erp",
            "base-stock",
            str(as_of),
            "h",
            "d",
            3,
            1,
            0,
            5.0,
        )
        store.record(run, recs, {"same-day": (c.summary, c.lines)})
    failed = RunRecord(
        "run2",
        "2026-03-12T06:00:00+00:00",
        "2026-03-12T06:01:00+00:00",
        "failed",
        "ErpUnavailable: connection refused after 3 attempts",
        "folder:erp",
        "base-stock",
        None,
        None,
        None,
        0,
        3,
        0,
        60.0,
    )
    store.record(failed)
    return store
