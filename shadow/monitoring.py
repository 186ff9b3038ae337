"""Shadow-mode monitoring: the forecast's error against the ERP's actual sales, run by run, a
drift exception for the model owner when it crosses the governance config's thresholds, and the
integration's health per day.

Each run keeps the first ``FORECAST_DAYS`` days of its forecast (location x SKU x day, in the
shadow run store). A later run reads the ERP's sales up to its ``as_of`` and scores the week
ending there (``as_of - 6 .. as_of``): each day against the forecast of the latest earlier run
issued before that day (``as_of < day``), so every figure is an out-of-sample forecast. Two
levels, as planners judge a forecast:

- SKU x location x day: WAPE = sum |f - a| / sum a over the cells and days;
- SKU x region x week: the week's units summed per SKU and region first (a region is a DC and
  the stores it serves: the ERP has no region field), then WAPE over those sums.

Bias = (sum f - sum a) / sum a (positive: over-forecast) is the same at both levels.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from promotwin.policies.contract import PlanningSnapshot
from promotwin.workflow.config import GovernanceConfig, Monitoring

if TYPE_CHECKING:
    from promotwin.shadow.runner import ShadowResult
    from promotwin.shadow.store import RunStore
    from promotwin.workflow.store import Store

log = logging.getLogger("shadow")

FORECAST_DAYS = 7  # of each run's forecast kept: a later run scores at most the week before it
WINDOW_DAYS = 7  # the week each run scores, ending at its as_of
DRIFT_KIND = "forecast-drift"  # the exception's kind in the approval store
LEVELS = ("sku-location-day", "sku-region-week")

SCHEMA = """
CREATE TABLE IF NOT EXISTS monitor_forecasts (
    run_id TEXT NOT NULL, source TEXT NOT NULL, as_of TEXT NOT NULL, date TEXT NOT NULL,
    location TEXT NOT NULL, region TEXT NOT NULL, sku TEXT NOT NULL, units REAL NOT NULL,
    PRIMARY KEY (run_id, date, location, sku)
);
CREATE INDEX IF NOT EXISTS monitor_forecasts_by_date ON monitor_forecasts (source, date);
CREATE TABLE IF NOT EXISTS monitor_accuracy (
    run_id TEXT NOT NULL, source TEXT NOT NULL, as_of TEXT NOT NULL, level TEXT NOT NULL,
    first_day TEXT NOT NULL, last_day TEXT NOT NULL, days INTEGER NOT NULL,
    actual_units REAL NOT NULL, forecast_units REAL NOT NULL, abs_error REAL NOT NULL,
    wape REAL, bias REAL, PRIMARY KEY (run_id, level)
);
CREATE TABLE IF NOT EXISTS monitor_health (
    run_id TEXT PRIMARY KEY, read_seconds REAL, retries INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class Accuracy:
    """One run's score of the week to its ``as_of`` at one level (units, shares of actual)."""

    level: str
    first_day: dt.date
    last_day: dt.date
    days: int  # days of the week that had a forecast issued before them
    actual_units: float
    forecast_units: float
    abs_error: float

    @property
    def wape(self) -> float:
        return self.abs_error / self.actual_units if self.actual_units else float("nan")

    @property
    def bias(self) -> float:
        a = self.actual_units
        return (self.forecast_units - a) / a if a else float("nan")


@contextmanager
def _connect(store: RunStore) -> Iterator[sqlite3.Connection]:
    """One transaction on the run store's file (committed on exit), then closed."""
    con = sqlite3.connect(store.path, timeout=30)
    try:
        with con:
            con.executescript(SCHEMA)
            yield con
    finally:
        con.close()


def _regions(snap: PlanningSnapshot) -> np.ndarray:
    """Each location's region: a DC is its own, a store its serving DC's."""
    ids = np.asarray(snap.location_ids, dtype=object)
    own = np.arange(len(ids)) < snap.n_dcs
    return np.where(own, ids, ids[snap.serving_dc])


def forecast_rows(run_id: str, source: str, snap: PlanningSnapshot) -> pd.DataFrame:
    """The first ``FORECAST_DAYS`` days of the snapshot's forecast, nonzero cells only."""
    fc = snap.forecast_mean[:FORECAST_DAYS]
    h, loc, sku = np.nonzero(fc > 0)
    regions = _regions(snap)
    return pd.DataFrame(
        {
            "run_id": run_id,
            "source": source,
            "as_of": str(snap.date),
            "date": [str(snap.date + dt.timedelta(days=int(d) + 1)) for d in h],
            "location": np.asarray(snap.location_ids, dtype=object)[loc],
            "region": regions[loc],
            "sku": np.asarray(snap.sku_ids, dtype=object)[sku],
            "units": fc[h, loc, sku].astype(float),
        }
    )


def actual_sales(
    history: pd.DataFrame, snap: PlanningSnapshot, days: list[dt.date]
) -> pd.DataFrame:
    """Units sold per date x location x SKU on ``days``, as the snapshot plans them: store rows
    from store sales, a DC's rows from the ecommerce sales of the stores it serves."""
    index = {x: i for i, x in enumerate(snap.location_ids)}
    skus = set(snap.sku_ids)
    rows = history[
        history["date"].isin(days) & history["location"].isin(index) & history["sku"].isin(skus)
    ]
    loc = rows["location"].map(index).to_numpy(np.int64)
    loc = np.where((rows["channel"] == "ecommerce").to_numpy(), snap.serving_dc[loc], loc)
    ids = np.asarray(snap.location_ids, dtype=object)
    frame = pd.DataFrame(
        {
            "date": rows["date"].astype(str).to_numpy(object),
            "location": ids[loc],
            "region": _regions(snap)[loc],
            "sku": rows["sku"].to_numpy(object),
            "units": rows["units"].to_numpy(float),
        }
    )
    return frame.groupby(["date", "location", "region", "sku"], as_index=False)[["units"]].sum()


def issued_forecasts(con: sqlite3.Connection, source: str, days: list[dt.date]) -> pd.DataFrame:
    """For each of ``days``, the forecast of the latest run of ``source`` issued before it."""
    frame = pd.read_sql_query(
        "SELECT run_id, as_of, date, location, region, sku, units FROM monitor_forecasts "
        "WHERE source = ? AND date >= ? AND date <= ? AND as_of < date",
        con,
        params=(source, str(min(days)), str(max(days))),
    )
    if not len(frame):
        return frame
    # the latest as_of wins; among runs of one as_of the latest started (run ids begin with it)
    issue = frame["as_of"] + "|" + frame["run_id"]
    latest = issue.groupby(frame["date"]).transform("max")
    return frame[issue == latest].drop(columns=["run_id", "as_of"])


def score(forecast: pd.DataFrame, actual: pd.DataFrame, days: list[dt.date]) -> list[Accuracy]:
    """WAPE and bias of ``forecast`` against ``actual`` at both levels, over the days that had a
    forecast (an empty list when none had one)."""
    scored = sorted(set(forecast["date"])) if len(forecast) else []
    if not scored:
        return []
    keys = ["date", "location", "region", "sku"]
    both = forecast[[*keys, "units"]].merge(
        actual[actual["date"].isin(scored)], on=keys, how="outer", suffixes=("_f", "_a")
    )
    f, a = both["units_f"].fillna(0.0), both["units_a"].fillna(0.0)
    week = both.assign(f=f, a=a).groupby(["sku", "region"])[["f", "a"]].sum().reset_index()
    first, last = min(days), max(days)
    return [
        Accuracy(
            LEVELS[0],
            first,
            last,
            len(scored),
            float(a.sum()),
            float(f.sum()),
            float((f - a).abs().sum()),
        ),
        Accuracy(
            LEVELS[1],
            first,
            last,
            len(scored),
            float(week["a"].sum()),
            float(week["f"].sum()),
            float((week["f"] - week["a"]).abs().sum()),
        ),
    ]


class Monitor:
    """Called by the shadow runner after each run is stored (``record``): keeps the run's
    forecast, scores the week to its ``as_of``, raises a drift exception in ``approvals`` when
    the config's thresholds are crossed, and keeps the run's read time and retries."""

    def __init__(
        self,
        store: RunStore,
        config: GovernanceConfig | None = None,
        approvals: Store | None = None,
    ):
        self.store = store
        self.thresholds = config.monitoring if config is not None else Monitoring()
        self.expiry_days = config.routing.expiry_days if config is not None else 3
        self.approvals = approvals

    def record(self, result: ShadowResult) -> list[Accuracy]:
        """Everything monitoring keeps about one stored run; returns its scores."""
        run = result.run
        with _connect(self.store) as con:
            con.execute(
                "INSERT OR REPLACE INTO monitor_health VALUES (?, ?, ?)",
                (run.run_id, result.read_seconds, result.retries),
            )
        if result.built is None or run.as_of is None:
            return []
        snap, history = result.built.snapshot, result.built.history
        as_of = snap.date
        days = [as_of - dt.timedelta(days=d) for d in range(WINDOW_DAYS - 1, -1, -1)]
        with _connect(self.store) as con:
            issued = issued_forecasts(con, run.source, days)
            scores = score(issued, actual_sales(history, snap, days), days)
            con.executemany(
                "INSERT OR REPLACE INTO monitor_accuracy VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run.run_id,
                        run.source,
                        str(as_of),
                        s.level,
                        str(s.first_day),
                        str(s.last_day),
                        s.days,
                        s.actual_units,
                        s.forecast_units,
                        s.abs_error,
                        _or_none(s.wape),
                        _or_none(s.bias),
                    )
                    for s in scores
                ],
            )
            rows = forecast_rows(run.run_id, run.source, snap)
            con.executemany(
                "INSERT OR REPLACE INTO monitor_forecasts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows.itertuples(index=False, name=None),
            )
        crossed = drift(scores, self.thresholds)
        if crossed and self.approvals is not None:
            raise_drift_exception(
                self.approvals, result, crossed, self.thresholds, self.expiry_days
            )
        return scores


def _or_none(v: float) -> float | None:
    return None if v != v else v


def drift(scores: list[Accuracy], limits: Monitoring) -> list[str]:
    """The thresholds the scores cross at the config's level, each in plain words."""
    s = next((x for x in scores if x.level == limits.level), None)
    if s is None or s.actual_units < limits.min_actual_units:
        return []
    out = []
    if limits.max_abs_bias is not None and abs(s.bias) > limits.max_abs_bias:
        out.append(f"bias {s.bias:+.1%} beyond ±{limits.max_abs_bias:.0%}")
    if limits.max_wape is not None and s.wape > limits.max_wape:
        out.append(f"WAPE {s.wape:.1%} above {limits.max_wape:.0%}")
    return out


def raise_drift_exception(
    approvals: Store,
    result: ShadowResult,
    crossed: list[str],
    limits: Monitoring,
    expiry_days: int,
) -> int | None:
    """One open exception for the model owner per run (none if the run already has one),
    with its audit record; returns its id (None: it existed)."""
    from sqlalchemy import select

    from promotwin.workflow.store import AuditEvent, exceptions

    run = result.run
    model = result.built.model_file if result.built is not None else None
    level = limits.level.replace("-", " x ").replace("sku", "SKU")
    reason = (
        f"forecast {'; '.join(crossed)} at {level}, week to {run.as_of}: check the model "
        f"({model or 'trailing average of ERP sales'}) against recent sales, refit it, or change "
        "the limits in the governance config's monitoring section"
    )
    with approvals.begin() as conn:
        found = conn.execute(
            select(exceptions.c.id).where(
                (exceptions.c.run_id == run.run_id) & (exceptions.c.kind == DRIFT_KIND)
            )
        ).first()
        if found is not None:
            return None
        (exc_id,) = approvals.create_exceptions(
            conn,
            [
                {
                    "run_id": run.run_id,
                    "owner": limits.owner,
                    "priority": 2,
                    "created_day": 0,
                    "expires_day": expiry_days,
                    "policy": run.policy,
                    "kind": DRIFT_KIND,
                    "origin": "forecast",
                    "destination": "",
                    "sku": "",
                    "qty": 0,
                    "unit_cost": 0.0,
                    "confidence": 0.0,
                    "value": 0.0,
                    "value_at_risk": 0.0,
                    "rules": DRIFT_KIND,
                    "reason": reason,
                    "policy_reason": model or "average",
                    "snapshot_hash": run.snapshot_hash or "",
                    "proposed_by": "monitoring",
                }
            ],
        )
        approvals.append(
            conn,
            [
                AuditEvent(
                    run_id=run.run_id,
                    event="routed",
                    actor="monitoring",
                    sim_date=run.as_of,
                    exception_id=exc_id,
                    rules=DRIFT_KIND,
                    kind=DRIFT_KIND,
                    origin="forecast",
                    snapshot_hash=run.snapshot_hash or "",
                    detail=reason,
                )
            ],
        )
    log.warning("shadow run %s: %s (exception %d)", run.run_id, reason, exc_id)
    return exc_id


# -- what the shadow page and `twin shadow monitor` show ------------------------------------------


def accuracy_by_run(store: RunStore, level: str | None = None) -> pd.DataFrame:
    """Every scored run's WAPE and bias (one row per run and level), oldest first."""
    with _connect(store) as con:
        frame = pd.read_sql_query(
            "SELECT * FROM monitor_accuracy ORDER BY as_of, run_id, level", con
        )
    return frame[frame["level"] == level] if level is not None else frame


def health_by_day(store: RunStore) -> pd.DataFrame:
    """Integration health per day a run started: runs, ok / degraded / partial / failed, ERP
    read time (median and max, seconds), retries and data warnings."""
    runs = store.runs()
    columns = [
        "day",
        "runs",
        "ok",
        "degraded",
        "partial",
        "failed",
        "read_seconds_median",
        "read_seconds_max",
        "retries",
        "data_warnings",
    ]
    if not len(runs):
        return pd.DataFrame(columns=columns)
    with _connect(store) as con:
        extra = pd.read_sql_query("SELECT * FROM monitor_health", con)
        warned = pd.read_sql_query(
            "SELECT run_id, COUNT(*) AS data_warnings FROM warnings GROUP BY run_id", con
        )
    runs = runs.merge(extra, on="run_id", how="left").merge(warned, on="run_id", how="left")
    runs["day"] = runs["started"].str[:10]
    status = pd.crosstab(runs["day"], runs["status"])
    agg: Any = runs.groupby("day").agg(
        runs=("run_id", "size"),
        read_seconds_median=("read_seconds", "median"),
        read_seconds_max=("read_seconds", "max"),
        retries=("retries", "sum"),
        data_warnings=("data_warnings", "sum"),
    )
    for name in ("ok", "degraded", "partial", "failed"):
        agg[name] = status.get(name, 0)
    agg = agg.reset_index()
    agg[["retries", "data_warnings"]] = agg[["retries", "data_warnings"]].fillna(0).astype(int)
    return agg[columns]
