"""A hand-set in-memory ERP for shadow-monitoring tests and the shadow page's: one DC serving
stores S1 and S2 (one region), product A, daily sales from a function."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from promotwin.shadow import ErpActions, ErpState, ErpUnavailable
from promotwin.shadow.adapter import DraftOrder

if TYPE_CHECKING:
    from promotwin.shadow import RunStore

D0 = dt.date(2026, 5, 1)
Sales = Callable[[str, dt.date], float]  # store code, day -> units of product A sold


class HandErp:
    """One DC serving stores S1 and S2 (one region), product A; sales from ``sales``; the
    first ``failures`` state reads fail as if the ERP were down."""

    name = "hand-erp"

    def __init__(self, sales: Sales, failures: int = 0):
        self.sales = sales
        self.failures = failures

    def read_state(self, as_of: dt.date | None = None, history_days: int = 28) -> ErpState:
        if self.failures:
            self.failures -= 1
            raise ErpUnavailable("connection refused")
        assert as_of is not None
        days = [as_of - dt.timedelta(days=d) for d in range(history_days)]
        return ErpState.build(
            as_of,
            self.name,
            history_days,
            locations=pd.DataFrame(
                {
                    "erp_id": ["1", "2", "3"],
                    "code": ["DC", "S1", "S2"],
                    "name": ["dc", "s1", "s2"],
                    "kind": ["dc", "store", "store"],
                    "serving_dc": ["", "1", "1"],
                }
            ),
            products=pd.DataFrame(
                {
                    "erp_id": ["10"],
                    "code": ["A"],
                    "name": ["a"],
                    "category": ["c"],
                    "price": [10.0],
                    "unit_cost": [6.0],
                }
            ),
            suppliers=pd.DataFrame({"erp_id": ["7"], "code": ["V"], "name": ["v"]}),
            product_suppliers=pd.DataFrame(
                {"product": ["10"], "supplier": ["7"], "lead_time_days": [4.0], "sequence": [1]}
            ),
            stock=pd.DataFrame(
                {
                    "location": ["1", "2", "3"],
                    "product": ["10"] * 3,
                    "on_hand": [500.0, 40.0, 40.0],
                    "forecast": [float("nan")] * 3,
                }
            ),
            sales=pd.DataFrame(
                [
                    {
                        "date": d,
                        "location": erp,
                        "product": "10",
                        "channel": "walk_in",
                        "units": self.sales(code, d),
                    }
                    for d in days
                    for erp, code in (("2", "S1"), ("3", "S2"))
                ]
            ),
        )

    def read_actions(self, start: dt.date, end: dt.date) -> ErpActions:
        return ErpActions.build(start, end)

    def read_sales(self, start: dt.date, end: dt.date) -> pd.DataFrame:
        raise NotImplementedError

    def find_draft(self, key: str) -> str | None:
        return None

    def create_draft(self, order: DraftOrder, description: str) -> str:
        raise NotImplementedError

    def close(self) -> None:
        pass


def step(after: float) -> Sales:
    """Each store sells 20 units a day; S1 sells ``after`` from D0 + 1 on."""

    def sales(code: str, d: dt.date) -> float:
        return after if code == "S1" and d > D0 else 20.0

    return sales


def monitored_store(path: Path, approvals: Path | None = None) -> RunStore:
    """A shadow run store with runs on D0 and D0 + 7 (S1 falls to 10 a day after D0: the
    second run scores +33.3% bias at SKU x region x week) and a failed run in between."""
    from promotwin.shadow import RetryPolicy, RunStore, ShadowRunner
    from promotwin.shadow.monitoring import Monitor
    from promotwin.workflow.config import load_config
    from promotwin.workflow.store import Store

    store = RunStore(path)
    monitor = Monitor(store, load_config("default"), Store(approvals) if approvals else None)
    runner = ShadowRunner(HandErp(step(10)), store, "base-stock", monitor=monitor.record)
    runner.run_once(D0)
    erp_down = HandErp(step(10), failures=1)
    once = RetryPolicy(attempts=1)
    down = ShadowRunner(erp_down, store, "base-stock", retry=once, monitor=monitor.record)
    down.run_once(D0 + dt.timedelta(days=3))
    runner.run_once(D0 + dt.timedelta(days=7))
    return store
