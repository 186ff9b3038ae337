"""Validate a sales history before fitting, and derive the promotion columns the fit needs.

The canonical table is the replay format (``date, location, sku, channel, units``) with optional
promotion columns: ``price`` (selling price, currency/unit), ``regular_price``, ``depth`` (discount
as a share of the regular price), ``display``, ``feature``, ``promo`` (0/1 flags), ``category`` and
``stockout`` (true where on-hand was zero at day end: that day's sales are a lower bound of demand).
Every problem is reported together, each naming the rows it was found on (0-based data rows,
header excluded), so a planner can fix the file in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from promotwin.demand.replay import CHANNELS, REQUIRED, HistoryError, read_table
from promotwin.scenarios.schema import Scenario

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
# Units a single row may hold: far above any store's day or week, far below where the fit's
# sums lose precision (10^15 units in one row is a unit mistake, not a sale).
MAX_UNITS = 10**9
SLASHED = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{2,4})\s*$")
TOKENS = {"YYYY": "%Y", "YY": "%y", "MM": "%m", "DD": "%d"}
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
    """Read a CSV/Parquet history (no checks beyond being readable and comma-separated)."""
    return read_table(path)


def strftime_format(date_format: str) -> str:
    """``DD/MM/YYYY`` style or ``%d/%m/%Y`` style to a strftime format."""
    if "%" in date_format:
        return date_format
    out = date_format
    for token, code in TOKENS.items():
        out = out.replace(token, code)
    if "%" not in out:
        raise HistoryError(f"--date-format {date_format!r}: write it like DD/MM/YYYY or %d/%m/%Y")
    return out


def parse_dates(
    column: pd.Series, frame: pd.DataFrame, date_format: str | None
) -> tuple[pd.Series, list[str]]:
    """Dates of ``column``: ISO (YYYY-MM-DD) unless ``date_format`` says otherwise; never
    guessed. Returns the dates (NaT where unreadable) and the problems found."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return pd.Series(pd.NaT, index=column.index), [
            "the date column holds numbers (week numbers?), not dates: give each row's date "
            "as YYYY-MM-DD (for weekly rows, the week's first day)"
        ]
    text = column.astype(str)
    if date_format is not None:
        fmt = strftime_format(date_format)
        dates = pd.to_datetime(text, format=fmt, errors="coerce")
        bad = dates.isna()
        if bad.any():
            return dates, [f"date not in --date-format {date_format!r} in {_rows(bad, frame)}"]
        return dates, []
    dates = pd.to_datetime(text, format="ISO8601", errors="coerce")
    bad = dates.isna()
    if not bad.any():
        return dates, []
    slashed = text[bad].str.extract(SLASHED)
    if slashed.notna().all(axis=1).any():
        example = text[bad & text.str.match(SLASHED)].iloc[0]
        first, second = slashed[0].astype(float), slashed[1].astype(float)
        if (first > 12).any() and not (second > 12).any():
            guess = "day first"
        elif (second > 12).any() and not (first > 12).any():
            guess = "month first"
        else:
            guess = "ambiguous"
        return dates, [
            f"dates like {example!r} are not ISO (YYYY-MM-DD) and DD/MM vs MM/DD is not "
            f"guessed (these look {guess}): convert them to YYYY-MM-DD, or pass "
            "--date-format DD/MM/YYYY or --date-format MM/DD/YYYY"
        ]
    return dates, [f"unreadable date in {_rows(bad, frame)}: write dates as YYYY-MM-DD"]


def validate_history(
    frame: pd.DataFrame,
    skus: Collection[str] | None = None,
    source: str = "history",
    date_format: str | None = None,
    locations: Collection[str] | None = None,
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
    dates, problems = parse_dates(f["date"], f, date_format)
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
    if locations is not None:
        unknown = ~f["location"].isin(set(locations))
        if unknown.any():
            names = sorted(set(f.loc[unknown, "location"]))[:MAX_SHOWN]
            problems.append(
                f"unknown location(s) {names} in {_rows(unknown, f)}: "
                "add them to the scenario or drop those rows"
            )
    raw = pd.to_numeric(f["units"], errors="coerce")
    if raw.isna().any():
        problems.append(f"missing or non-numeric units in {_rows(raw.isna(), f)}")
    infinite = raw.notna() & ~np.isfinite(raw)
    if infinite.any():
        problems.append(f"infinite units in {_rows(infinite, f)}: give a count of items")
    units = raw.where(np.isfinite(raw))
    absurd = units.abs() > MAX_UNITS
    if absurd.any():
        problems.append(
            f"units above {MAX_UNITS:,} in {_rows(absurd, f)}: check the units column "
            "(a unit or scale mistake?)"
        )
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


def weekly_gaps(clean: pd.DataFrame) -> list[str]:
    """Missing weeks inside each series of weekly rows (rows 7 days apart), as messages.

    A series is a location x SKU x channel; a week before its first row is "not listed yet",
    not a gap.
    """
    key = ["location", "sku", "channel"]
    spans = clean.groupby(key, sort=True)["date"].agg(["min", "max", "nunique"])
    expected = (spans["max"] - spans["min"]).dt.days // 7 + 1
    missing = expected - spans["nunique"]
    gappy = missing[missing > 0]
    lines = []
    shown = spans.loc[gappy.index[:MAX_SHOWN]].assign(missing=gappy)
    for (loc, sku, channel), row in zip(shown.index, shown.itertuples(index=False), strict=True):
        lines.append(
            f"{loc} / {sku} / {channel}: {row.missing} missing week(s) between "
            f"{row.min:%Y-%m-%d} and {row.max:%Y-%m-%d}"
        )
    if len(gappy) > MAX_SHOWN:
        lines.append(f"... and {len(gappy) - MAX_SHOWN} more series")
    return lines


def check_history(scenario: Scenario) -> None:
    """Everything a replay of ``scenario.demand.history`` would refuse at run time, refused now:
    an unreadable file, bad rows, SKUs or locations the scenario does not have."""
    if not scenario.demand.history:
        return
    frame = read_table(scenario.demand.history)
    stores = [x.id for x in scenario.stores]
    dcs = [x.id for x in scenario.dcs]
    validate_history(
        frame,
        skus=[k.id for k in scenario.skus],
        source=f"demand.history {scenario.demand.history}",
        locations=stores + dcs,
    )
