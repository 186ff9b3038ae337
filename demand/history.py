"""Validate a sales history before fitting, and derive the promotion columns the fit needs.

The canonical table is the replay format (``date, location, sku, channel, units``) with optional
promotion columns: ``price`` (selling price, currency/unit), ``regular_price``, ``depth`` (discount
as a share of the regular price), ``display``, ``feature``, ``promo`` (0/1 flags), ``category`` and
``stockout`` (true where on-hand was zero at day end: that day's sales are a lower bound of demand).
Every problem is reported together, each naming the rows it was found on (0-based data rows,
header excluded), so a planner can fix the file in one pass.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from promotwin.demand.replay import CHANNELS, REQUIRED, HistoryError

OPTIONAL = (
    "price",
    "regular_price",
    "depth",
    "display",
    "feature",
    "promo",
    "category",
    "stockout",
)
KEY = ("date", "location", "sku", "channel")
PROMO_DEPTH = 0.05  # a price at least 5% below the regular price counts as promoted
MAX_SHOWN = 5
# True/False also match 1/0 and 1.0/0.0 (equal hashes)
STOCKOUT_VALUES = {
    True: 1, False: 0, "1": 1, "0": 0,
    "true": 1, "false": 0, "True": 1, "False": 0, "TRUE": 1, "FALSE": 0,
}  # fmt: skip


def _rows(mask: pd.Series | np.ndarray, frame: pd.DataFrame) -> str:
    idx = list(frame.index[np.asarray(mask, dtype=bool)])
    shown = ", ".join(str(i) for i in idx[:MAX_SHOWN])
    more = f" and {len(idx) - MAX_SHOWN} more" if len(idx) > MAX_SHOWN else ""
    return f"row{'s' if len(idx) > 1 else ''} {shown}{more}"


def read_history_file(path: str | Path) -> pd.DataFrame:
    """Read a CSV/Parquet history (no checks beyond being readable)."""
    path = Path(path)
    if not path.exists():
        raise HistoryError(f"{path}: history file not found; check the path")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise HistoryError(f"{path}: cannot read history ({exc})") from None


def validate_history(
    frame: pd.DataFrame,
    skus: Collection[str] | None = None,
    source: str = "history",
) -> pd.DataFrame:
    """Check ``frame``; return a clean copy (typed columns, derived promotion columns).

    Raises ``HistoryError`` listing every problem: missing columns, unreadable dates, unknown
    channels or SKUs (when ``skus`` is given), negative / non-integer / missing units, duplicate
    ``date, location, sku, channel`` rows, non-positive prices, depth outside [0, 1), bad flags.
    """
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise HistoryError(
            f"{source}: missing column(s) {missing}; a history needs {list(REQUIRED)} "
            f"(optional: {list(OPTIONAL)})"
        )
    if frame.empty:
        raise HistoryError(f"{source}: the history has no rows")
    f = frame.reset_index(drop=True).copy()
    problems: list[str] = []
    dates = pd.to_datetime(f["date"], errors="coerce")
    if dates.isna().any():
        problems.append(f"unreadable date in {_rows(dates.isna(), f)}: write dates as YYYY-MM-DD")
    f["date"] = dates.dt.normalize()
    f["location"] = f["location"].astype(str)
    f["sku"] = f["sku"].astype(str)
    bad_channel = ~f["channel"].isin(CHANNELS)
    if bad_channel.any():
        problems.append(f"unknown channel in {_rows(bad_channel, f)}: use one of {list(CHANNELS)}")
    if skus is not None:
        unknown = ~f["sku"].isin(set(skus))
        if unknown.any():
            names = sorted(set(f.loc[unknown, "sku"]))[:MAX_SHOWN]
            problems.append(
                f"unknown SKU(s) {names} in {_rows(unknown, f)}: "
                "add them to the catalogue or drop those rows"
            )
    units = pd.to_numeric(f["units"], errors="coerce")
    if units.isna().any():
        problems.append(f"missing or non-numeric units in {_rows(units.isna(), f)}")
    if (units < 0).any():
        problems.append(f"negative units in {_rows(units < 0, f)}: demand must be >= 0")
    frac = units.notna() & (units != np.round(units))
    if frac.any():
        problems.append(f"non-integer units in {_rows(frac, f)}: units are whole items")
    dup = f.duplicated(list(KEY), keep=False) & dates.notna()
    if dup.any():
        problems.append(
            f"duplicate date/location/sku/channel in {_rows(dup, f)}: "
            "keep one row per day, location, SKU and channel (sum them first)"
        )
    for col in ("price", "regular_price"):
        if col in f.columns:
            v = pd.to_numeric(f[col], errors="coerce")
            bad = v.isna() | (v <= 0)
            if bad.any():
                problems.append(f"{col} missing or <= 0 in {_rows(bad, f)}: give the price paid")
            f[col] = v
    if "depth" in f.columns:
        d = pd.to_numeric(f["depth"], errors="coerce")
        bad = d.isna() | (d < 0) | (d >= 1)
        if bad.any():
            problems.append(f"depth outside [0, 1) in {_rows(bad, f)}: depth is the discount share")
        f["depth"] = d
    if "stockout" in f.columns:  # on-hand zero at day end: the day's sales are censored
        v = f["stockout"].map(STOCKOUT_VALUES)
        if v.isna().any():
            problems.append(
                f"stockout not true/false in {_rows(v.isna(), f)}: "
                "write true where on-hand was zero at day end"
            )
        f["stockout"] = v.fillna(0).astype(np.int64)
    for col in ("display", "feature", "promo"):
        if col in f.columns:
            v = pd.to_numeric(f[col], errors="coerce")
            bad = ~v.isin([0, 1])
            if bad.any():
                problems.append(f"{col} not 0/1 in {_rows(bad, f)}")
            f[col] = v
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise HistoryError(f"{source}: {len(problems)} problem(s)\n{lines}")
    f["units"] = units.astype(np.int64)
    return derive_promotions(f)


def derive_promotions(f: pd.DataFrame) -> pd.DataFrame:
    """Fill ``depth``, ``display``, ``feature``, ``promo`` (0 if absent; ``depth`` from prices)."""
    f = f.copy()
    if "depth" not in f.columns:
        if "price" in f.columns:
            if "regular_price" not in f.columns:
                f["regular_price"] = regular_price(f)
            f["depth"] = np.clip(1.0 - f["price"] / f["regular_price"], 0.0, 0.95)
        else:
            f["depth"] = 0.0
    for col in ("display", "feature"):
        if col not in f.columns:
            f[col] = 0
        f[col] = f[col].astype(np.int64)
    if "promo" not in f.columns:
        f["promo"] = ((f["depth"] >= PROMO_DEPTH) | (f["display"] > 0) | (f["feature"] > 0)).astype(
            np.int64
        )
    f["promo"] = f["promo"].astype(np.int64)
    f["depth"] = f["depth"].astype(np.float64)
    return f


def regular_price(f: pd.DataFrame) -> pd.Series:
    """Regular shelf price per row: the highest price of its location x SKU in the table.

    One constant per series, so ``log(1 - depth)`` is the log price up to the series' level
    (a rolling reference would hide regular-price changes, which move demand too).
    """
    return f.groupby(["location", "sku"], sort=False)["price"].transform("max")


def attach_categories(
    f: pd.DataFrame, categories: Mapping[str, str] | None, default: str = "all"
) -> pd.DataFrame:
    """A ``category`` column: kept if present, else from ``categories`` (sku -> category)."""
    if "category" in f.columns:
        return f.assign(category=f["category"].astype(str))
    if categories is None:
        return f.assign(category=default)
    return f.assign(category=f["sku"].map(dict(categories)).fillna(default).astype(str))
