"""Shadow-mode monitoring on an in-memory ERP whose sales are set by hand: forecast error run by
run against hand-computed sums, one drift exception per run in a real approval store, health."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from promotwin.shadow import ErpActions, ErpState, ErpUnavailable, RetryPolicy, RunStore
from promotwin.shadow.adapter import DraftOrder
from promotwin.shadow.monitoring import DRIFT_KIND, Monitor, accuracy_by_run, health_by_day
from promotwin.shadow.runner import ShadowResult, ShadowRunner
from promotwin.workflow.config import GovernanceConfigError, parse_config
from promotwin.workflow.store import Store

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


def runs(
    tmp_path: Path, sales: Sales, days: list[int], approvals: Store | None = None, config: str = ""
) -> tuple[RunStore, Monitor, list[ShadowResult]]:
    store = RunStore(tmp_path / "shadow.sqlite")
    governance = parse_config("name: t\n" + config) if config else parse_config("name: t")
    monitor = Monitor(store, governance, approvals)
    erp = HandErp(sales)
    runner = ShadowRunner(erp, store, "base-stock", monitor=monitor.record)
    return store, monitor, [runner.run_once(D0 + dt.timedelta(days=d)) for d in days]


def by_level(store: RunStore, run_id: str) -> dict[str, pd.Series]:
    acc = accuracy_by_run(store)
    return {r["level"]: r for _, r in acc[acc["run_id"] == run_id].iterrows()}


def test_a_week_scored_against_the_forecast_issued_before_it(tmp_path: Path) -> None:
    # S1 falls from 20 to 10 a day after D0, S2 stays at 20. The D0 run's trailing average
    # forecasts 20 a day at each store for the next week; the run a week later scores it:
    # f = 2 x 7 x 20 = 280, a = 7 x 10 + 7 x 20 = 210 at both levels (one SKU, one region)
    store, _, (first, last) = runs(tmp_path, step(10), [0, 7])
    assert by_level(store, first.run.run_id) == {}  # nothing issued before D0's week
    s = by_level(store, last.run.run_id)
    for level in ("sku-location-day", "sku-region-week"):
        assert s[level]["days"] == 7 and s[level]["actual_units"] == pytest.approx(210)
        assert s[level]["forecast_units"] == pytest.approx(280)
        assert s[level]["bias"] == pytest.approx(70 / 210)
    assert s["sku-location-day"]["wape"] == pytest.approx(70 / 210)


def test_region_week_nets_out_what_cell_day_counts(tmp_path: Path) -> None:
    # S1 falls to 10, S2 rises to 30: the region's week is forecast exactly (280 vs 280),
    # each store's days are 10 units off (WAPE 140 / 280)
    def up_down(code: str, d: dt.date) -> float:
        return 20.0 if d <= D0 else (10.0 if code == "S1" else 30.0)

    store, _, (_, last) = runs(tmp_path, up_down, [0, 7])
    s = by_level(store, last.run.run_id)
    assert s["sku-region-week"]["wape"] == pytest.approx(0) and s["sku-region-week"]["bias"] == 0
    assert s["sku-location-day"]["wape"] == pytest.approx(0.5)
    assert s["sku-location-day"]["bias"] == pytest.approx(0)


def test_each_day_is_scored_against_the_latest_run_before_it(tmp_path: Path) -> None:
    # daily runs: day D0+1+k is forecast by the run of D0+k, whose 28-day average holds k days
    # at 10 at S1: f = 20 - 10k/28. Week to D0+7: S1 f = 140 - 10 x 21/28 = 132.5, a = 70;
    # S2 f = a = 140
    store, _, results = runs(tmp_path, step(10), list(range(8)))
    s = by_level(store, results[-1].run.run_id)["sku-region-week"]
    assert s["forecast_units"] == pytest.approx(272.5) and s["actual_units"] == 210
    assert s["bias"] == pytest.approx(62.5 / 210)


def test_bias_past_the_threshold_raises_exactly_one_drift_exception(tmp_path: Path) -> None:
    approvals = Store(tmp_path / "approvals.sqlite")
    store, monitor, (_, last) = runs(tmp_path, step(10), [0, 7], approvals)
    found = approvals.list_exceptions(status=None)
    assert [(r["kind"], r["owner"], r["run_id"]) for r in found] == [
        (DRIFT_KIND, "merchandising", last.run.run_id)
    ]
    assert "bias +33.3% beyond ±20%" in found[0]["reason"]
    monitor.record(last)  # the same run told twice (a retry): still one exception
    assert len(approvals.list_exceptions(status=None)) == 1
    trail = approvals.audit_frame(last.run.run_id)
    assert trail["event"].tolist() == ["routed"] and trail["exception_id"].iloc[0] == found[0]["id"]
    assert approvals.verify().ok


def test_bias_below_the_threshold_raises_none(tmp_path: Path) -> None:
    # S1 to 18: f 280, a 266, bias +5.3%, WAPE 5.3% at SKU x region x week
    approvals = Store(tmp_path / "approvals.sqlite")
    store, _, (_, last) = runs(tmp_path, step(18), [0, 7], approvals)
    assert by_level(store, last.run.run_id)["sku-region-week"]["bias"] == pytest.approx(14 / 266)
    assert approvals.list_exceptions(status=None) == []
    # the same week with a tighter limit from the config crosses it
    approvals2 = Store(tmp_path / "approvals2.sqlite")
    _, _, _ = runs(
        tmp_path / "b", step(18), [0, 7], approvals2, "monitoring: {max_abs_bias: 0.05}\n"
    )
    assert len(approvals2.list_exceptions(status=None)) == 1


def test_monitoring_thresholds_validated_in_the_governance_config() -> None:
    with pytest.raises(GovernanceConfigError) as err:
        parse_config("name: t\nmonitoring: {max_abs_bias: 0, level: weekly, owner: models}\n")
    text = str(err.value)
    assert "monitoring.max_abs_bias" in text and "monitoring.level" in text
    assert "monitoring.owner" in text
    assert parse_config("name: t").monitoring.max_abs_bias == 0.2


def test_integration_health_per_day(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "shadow.sqlite")
    monitor = Monitor(store)
    flaky = HandErp(step(20), failures=2)
    retry = RetryPolicy(attempts=5, initial_delay=0.01, time_limit=10)
    ShadowRunner(flaky, store, "base-stock", retry=retry, monitor=monitor.record).run_once(D0)
    down = HandErp(step(20), failures=9)
    once = RetryPolicy(attempts=1, initial_delay=0.01, time_limit=10)
    ShadowRunner(down, store, "base-stock", retry=once, monitor=monitor.record).run_once(D0)
    health = health_by_day(store)
    assert len(health) == 1
    day = health.iloc[0]
    assert (day["runs"], day["ok"], day["failed"], day["retries"]) == (2, 1, 1, 2)
    assert 0 < day["read_seconds_max"] < 10
