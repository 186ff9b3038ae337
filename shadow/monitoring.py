"""Shadow-mode monitoring: the forecast's error against the ERP's actual sales, run by run, a
drift exception for the model owner when it crosses the governance config's thresholds, and the
integration's health per day.

Each run keeps the first ``FORECAST_DAYS`` days of its forecast (location x SKU x day, one
compressed array per run in the shadow run store). A later run reads the ERP's sales up to its
``as_of`` and scores the week ending there (``as_of - 6 .. as_of``): each day against the
forecast of the latest earlier run issued before that day (``as_of < day``), so every figure is
an out-of-sample forecast. Two levels, as planners judge a forecast:

- SKU x location x day: WAPE = sum |f - a| / sum a over the cells and days;
- SKU x region x week: the week's units summed per SKU and region first (a region is a DC and
  the stores it serves: the ERP has no region field), then WAPE over those sums.

Bias = (sum f - sum a) / sum a (positive: over-forecast) is the same at both levels.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from promotwin import strict_json
from promotwin.policies.contract import FloatArray, IntArray, PlanningSnapshot
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
    run_id TEXT PRIMARY KEY, source TEXT NOT NULL, as_of TEXT NOT NULL, days INTEGER NOT NULL,
    locations TEXT NOT NULL, skus TEXT NOT NULL, mean BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS monitor_forecasts_by_as_of ON monitor_forecasts (source, as_of);
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


def _regions(snap: PlanningSnapshot) -> list[IntArray]:
    """The location rows of each region: a DC's own row and the rows of the stores it serves
    (a DC's ``serving_dc`` is itself)."""
    return [np.flatnonzero(snap.serving_dc == r) for r in np.unique(snap.serving_dc)]


def keep_forecast(
    con: sqlite3.Connection, run_id: str, source: str, snap: PlanningSnapshot
) -> None:
    """The first ``FORECAST_DAYS`` days of the snapshot's forecast, one compressed float32
    array per run (a row per cell would cost seconds per run on a large ERP)."""
    mean = np.ascontiguousarray(snap.forecast_mean[:FORECAST_DAYS], dtype=np.float32)
    con.execute(
        "INSERT OR REPLACE INTO monitor_forecasts VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            source,
            str(snap.date),
            len(mean),
            strict_json.dumps(list(snap.location_ids)),
            strict_json.dumps(list(snap.sku_ids)),
            zlib.compress(mean.tobytes(), 1),
        ),
    )


def _onto(ids: list[str], onto: tuple[str, ...]) -> tuple[IntArray, IntArray]:
    """Positions in ``ids`` and in ``onto`` of the ids both have."""
    where = {x: i for i, x in enumerate(onto)}
    pairs = [(i, where[x]) for i, x in enumerate(ids) if x in where]
    return np.asarray([i for i, _ in pairs], np.int64), np.asarray([j for _, j in pairs], np.int64)


def issued_forecasts(
    con: sqlite3.Connection, source: str, days: list[dt.date], snap: PlanningSnapshot
) -> tuple[list[int], FloatArray]:
    """For each of ``days``, the forecast of the latest run of ``source`` issued before it, on
    the snapshot's locations x SKUs: the positions of the days that had one, and ``[n, L, S]``."""
    earliest = min(days) - dt.timedelta(days=FORECAST_DAYS)
    rows = con.execute(
        "SELECT run_id, as_of, days, locations, skus, mean FROM monitor_forecasts "
        "WHERE source = ? AND as_of >= ? AND as_of < ? ORDER BY as_of, run_id",
        (source, str(earliest), str(max(days))),
    ).fetchall()
    latest: dict[dt.date, tuple[Any, ...]] = {}  # the latest issue before each day wins
    for row in rows:
        as_of = dt.date.fromisoformat(row[1])
        for h in range(int(row[2])):
            latest[as_of + dt.timedelta(days=h + 1)] = (*row, h)
    shape = (len(snap.location_ids), len(snap.sku_ids))
    onto: dict[str, FloatArray] = {}  # each run's forecast on today's locations x SKUs
    found, out = [], []
    for i, day in enumerate(days):
        if day not in latest:
            continue
        run_id, _, n, locations, skus, blob, h = latest[day]
        if run_id not in onto:
            loc_ids, sku_ids = json.loads(locations), json.loads(skus)
            li, lj = _onto(loc_ids, snap.location_ids)
            si, sj = _onto(sku_ids, snap.sku_ids)
            mean = np.frombuffer(zlib.decompress(blob), np.float32)
            mean = mean.reshape(int(n), len(loc_ids), len(sku_ids))
            mapped = np.zeros((int(n), *shape))
            mapped[:, lj[:, None], sj] = mean[:, li[:, None], si]
            onto[run_id] = mapped
        found.append(i)
        out.append(onto[run_id][h])
    return found, np.asarray(out).reshape(len(out), *shape)


def actual_sales(history: pd.DataFrame, snap: PlanningSnapshot, days: list[dt.date]) -> FloatArray:
    """Units sold ``[day, L, S]`` on ``days``, as the snapshot plans them: store rows from store
    sales, a DC's rows from the ecommerce sales of the stores it serves."""
    loc_index = {x: i for i, x in enumerate(snap.location_ids)}
    sku_index = {x: i for i, x in enumerate(snap.sku_ids)}
    day_index = {d: i for i, d in enumerate(days)}
    rows = history[
        history["date"].isin(day_index)
        & history["location"].isin(loc_index)
        & history["sku"].isin(sku_index)
    ]
    loc = rows["location"].map(loc_index).to_numpy(np.int64)
    loc = np.where((rows["channel"] == "ecommerce").to_numpy(), snap.serving_dc[loc], loc)
    out = np.zeros((len(days), len(snap.location_ids), len(snap.sku_ids)))
    np.add.at(
        out,
        (
            rows["date"].map(day_index).to_numpy(np.int64),
            loc,
            rows["sku"].map(sku_index).to_numpy(),
        ),
        rows["units"].to_numpy(np.float64),
    )
    return out


def score(
    forecast: FloatArray, actual: FloatArray, regions: list[IntArray], days: list[dt.date]
) -> list[Accuracy]:
    """WAPE and bias of ``forecast`` against ``actual`` (``[n, L, S]``, the days that had a
    forecast) at both levels; an empty list when no day had one."""
    if not len(forecast):
        return []
    week_f, week_a = forecast.sum(axis=0), actual.sum(axis=0)  # [L, S]
    region_f = np.stack([week_f[rows].sum(axis=0) for rows in regions])
    region_a = np.stack([week_a[rows].sum(axis=0) for rows in regions])
    first, last, n = min(days), max(days), len(forecast)
    sold, planned = float(actual.sum()), float(forecast.sum())
    return [
        Accuracy(LEVELS[0], first, last, n, sold, planned, float(np.abs(forecast - actual).sum())),
        Accuracy(
            LEVELS[1], first, last, n, sold, planned, float(np.abs(region_f - region_a).sum())
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
            found, issued = issued_forecasts(con, run.source, days, snap)
            sold = actual_sales(history, snap, days)[found]
            scores = score(issued, sold, _regions(snap), days)
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
            keep_forecast(con, run.run_id, run.source, snap)
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
