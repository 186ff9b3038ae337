"""The GLM's rows and design matrix: series rows from a history, the post-promotion ramp, the
cannibalisation pressure and the columns of one category's model, built the same way for
fitting and forecasting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import linalg

from promotwin.demand.history import attach_categories

FloatArray = npt.NDArray[np.float64]
STORE, ECOM = "store", "ecommerce"
CANNIBALISATION_FLOOR = 0.3  # the twin's floor: a SKU keeps at least 30% of its demand


# -- preparing the rows -----------------------------------------------------------------------


def detect_period(dates: pd.Series) -> int:
    """1 for daily data, 7 for weekly (the most common gap between distinct dates)."""
    uniq = np.sort(pd.to_datetime(dates.unique()))
    if len(uniq) < 2:
        return 1
    gaps = np.diff(uniq).astype("timedelta64[D]").astype(np.int64)
    return 7 if np.median(gaps) >= 7 else 1


def prepare(
    history: pd.DataFrame,
    categories: Mapping[str, str] | None = None,
    fill_zeros: bool = True,
    period_days: int | None = None,
) -> tuple[pd.DataFrame, dict[str, float], int]:
    """Series rows ``date, location, sku, group, category, units, depth, display, feature, promo``.

    Walk-in and pickup are summed into the store group; ecommerce is its own group. Returns the
    rows, the pickup share by location and the period in days.
    """
    f = attach_categories(history, categories)
    period = period_days or detect_period(f["date"])
    f = f.assign(group=np.where(f["channel"] == "ecommerce", ECOM, STORE))
    pick = f[f["group"] == STORE].pivot_table(
        index="location", columns="channel", values="units", aggfunc="sum", fill_value=0
    )
    pickup_share: dict[str, float] = {}
    for loc, row in pick.iterrows():
        total = float(row.sum())
        pickup_share[str(loc)] = float(row.get("pickup", 0.0)) / total if total > 0 else 0.0
    keys = ["date", "location", "sku", "group"]
    # a stock-out censors the cell's sales in every channel it serves
    extra = {"stockout": ("stockout", "max")} if "stockout" in f.columns else {}
    if "price" in f.columns:  # the price paid, for models that use it beyond the depth
        extra["price"] = ("price", "mean")
    rows = f.groupby(keys, as_index=False, sort=False).agg(
        units=("units", "sum"),
        depth=("depth", "max"),
        display=("display", "max"),
        feature=("feature", "max"),
        promo=("promo", "max"),
        category=("category", "first"),
        **extra,
    )
    if fill_zeros:
        # a period without a row is zero sales from a series' first row on; before it the
        # product was not listed yet there, which is no evidence of zero demand
        series = ["location", "sku", "group", "category"]
        listed = rows.groupby(series)["date"].min().rename("listed").reset_index()
        dates = pd.date_range(rows["date"].min(), rows["date"].max(), freq=f"{period}D")
        grid = listed.merge(pd.DataFrame({"date": dates}), how="cross")
        grid = grid[grid["date"] >= grid["listed"]].drop(columns="listed")
        rows = grid.merge(rows.drop(columns="category"), on=keys, how="left")
        fill = {"units": 0, "depth": 0.0, "display": 0, "feature": 0, "promo": 0, "stockout": 0}
        rows = rows.fillna({c: v for c, v in fill.items() if c in rows.columns})
        for c in ("units", "display", "feature", "promo", "stockout"):
            if c in rows.columns:
                rows[c] = rows[c].astype(np.int64)
    rows = rows.sort_values(["category", "group", "location", "sku", "date"], ignore_index=True)
    return rows, pickup_share, period


def post_promo_ramp(
    rows: pd.DataFrame,
    period: int,
    periods_after: int,
    last_promo: Mapping[str, str] | None = None,
) -> FloatArray:
    """``1 - (k - 1) / P`` for the k-th period (1..P) after a series' last promoted period."""
    if periods_after <= 0:
        return np.zeros(len(rows))
    promo_date = rows["date"].where(rows["promo"] > 0)
    key = rows["location"].astype(str) + "|" + rows["sku"].astype(str) + "|" + rows["group"]
    order = np.lexsort((rows["date"].to_numpy(), key.to_numpy()))
    pd_sorted = promo_date.iloc[order]
    key_sorted = key.iloc[order]
    last = pd_sorted.groupby(key_sorted.to_numpy()).shift(1)
    last = last.groupby(key_sorted.to_numpy()).ffill()
    last_arr = pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns]")
    last_arr.iloc[order] = last.to_numpy()
    if last_promo:
        prior = (rows["location"].astype(str) + "|" + rows["sku"].astype(str)).map(
            {k: pd.Timestamp(v) for k, v in last_promo.items()}
        )
        last_arr = last_arr.fillna(prior)
    k = (rows["date"] - last_arr).dt.days.to_numpy(np.float64) / period
    ramp = np.where(
        (rows["promo"].to_numpy() == 0) & (k >= 1) & (k <= periods_after),
        1.0 - (k - 1.0) / periods_after,
        0.0,
    )
    return np.nan_to_num(ramp)


# -- the design matrix ------------------------------------------------------------------------


def series_key(rows: pd.DataFrame) -> pd.Series:
    """``location|sku|group`` of each row (the key of the series effects)."""
    return rows["location"].astype(str) + "|" + rows["sku"].astype(str) + "|" + rows["group"]


def cross_price(rows: pd.DataFrame) -> FloatArray:
    """Mean ``log(1 - depth)`` of the *other* SKUs at the row's category, group, location, date
    (their planned price cuts; 0 when the row's SKU is alone)."""
    logp = np.log1p(-rows["depth"].to_numpy(np.float64))
    keys = [rows["category"], rows["group"], rows["location"], rows["date"]]
    g = pd.Series(logp).groupby(keys, sort=False)
    total = g.transform("sum").to_numpy()
    count = g.transform("count").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 1, (total - logp) / np.maximum(count - 1, 1), 0.0)


@dataclass
class Design:
    """Columns of one category's GLM, built the same way for fitting and forecasting."""

    locations: list[str]
    skus: list[str]
    weekday: bool
    seasonal: bool
    sku_lifts: bool = False
    cross_price: bool = False

    def base_columns(self) -> list[str]:
        cols = [f"loc[{x}]" for x in self.locations]
        cols += [f"sku[{x}]" for x in self.skus[1:]]
        cols += [f"ecom[{x}]" for x in self.skus]
        if self.weekday:
            cols += [f"weekday[{d}]" for d in range(1, 7)]
        if self.seasonal:
            cols += ["season_cos1", "season_sin1", "season_cos2", "season_sin2"]
        return cols

    def promo_columns(self) -> list[str]:
        """The own-promotion columns (their sum is the row's log uplift)."""
        cols = [f"elasticity[{x}]" for x in self.skus]
        if self.sku_lifts:
            cols += [f"display[{x}]" for x in self.skus]
            return cols + [f"feature[{x}]" for x in self.skus]
        return cols + ["display", "feature"]

    def cross_columns(self) -> list[str]:
        return [f"cross[{x}]" for x in self.skus] if self.cross_price else []

    def matrix(self, rows: pd.DataFrame) -> tuple[FloatArray, list[str]]:
        """Base, promotion and cross-price columns (not the linearised dip / cannibalisation)."""
        n = len(rows)
        loc_i = pd.Categorical(rows["location"], categories=self.locations).codes.astype(np.int64)
        sku_i = pd.Categorical(rows["sku"], categories=self.skus).codes.astype(np.int64)
        if (loc_i < 0).any() or (sku_i < 0).any():
            raise ValueError("rows with a location or SKU the model was not fitted on")
        is_ecom = (rows["group"] == ECOM).to_numpy()
        cols = self.base_columns() + self.promo_columns() + self.cross_columns()
        x = np.zeros((n, len(cols)))
        r = np.arange(n)
        nl, ns = len(self.locations), len(self.skus)
        x[r, loc_i] = 1.0
        has_sku = sku_i > 0
        x[r[has_sku], nl + sku_i[has_sku] - 1] = 1.0
        x[r[is_ecom], nl + ns - 1 + sku_i[is_ecom]] = 1.0
        j = nl + 2 * ns - 1
        dates = pd.DatetimeIndex(rows["date"])
        if self.weekday:
            wd = dates.day_of_week.to_numpy()
            ok = wd > 0
            x[r[ok], j + wd[ok] - 1] = 1.0
            j += 6
        if self.seasonal:
            u = 2 * np.pi * dates.day_of_year.to_numpy() / 365.25
            x[:, j : j + 4] = np.column_stack([np.cos(u), np.sin(u), np.cos(2 * u), np.sin(2 * u)])
            j += 4
        logp = np.log1p(-rows["depth"].to_numpy(np.float64))
        x[r, j + sku_i] = logp
        j += ns
        display = rows["display"].to_numpy(np.float64)
        feature = rows["feature"].to_numpy(np.float64)
        if self.sku_lifts:
            x[r, j + sku_i] = display
            x[r, j + ns + sku_i] = feature
            j += 2 * ns
        else:
            x[:, j] = display
            x[:, j + 1] = feature
            j += 2
        if self.cross_price:
            x[r, j + sku_i] = cross_price(rows)
        return x, cols


def cannibalisation_pressure(
    rows: pd.DataFrame, base: FloatArray, uplift: FloatArray
) -> FloatArray:
    """The twin's ``z``: promoted same-category extra units / non-promoted base units, per row.

    ``base`` and ``uplift`` are each row's base level and promotion multiplier; z is 0 on
    promoted rows (they are not cannibalised) and where nothing else is promoted.
    """
    promo = rows["promo"].to_numpy() > 0
    extra = np.where(promo, base * np.maximum(uplift - 1.0, 0.0), 0.0)
    other = np.where(promo, 0.0, base)
    keys = [rows["category"], rows["group"], rows["location"], rows["date"]]
    g = pd.DataFrame({"e": extra, "o": other}).groupby(keys, sort=False)
    e_sum = g["e"].transform("sum").to_numpy()
    o_sum = g["o"].transform("sum").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(o_sum > 0, e_sum / o_sum, 0.0)
    return np.where(promo, 0.0, z)


def _linearised(theta: float, x: FloatArray, floor: float) -> tuple[FloatArray, FloatArray]:
    """Offset and regressor so that ``offset + theta' * w ~ log(max(1 - theta' x, floor))``."""
    inner = 1.0 - theta * x
    clipped = inner < floor
    safe = np.maximum(inner, floor)
    w = np.where(clipped, 0.0, -x / safe)
    return np.log(safe) - theta * w, w


def _independent_columns(x: FloatArray) -> npt.NDArray[np.bool_]:
    """Columns to keep: drop all-zero ones and those linearly dependent on earlier ones."""
    keep = np.abs(x).sum(axis=0) > 0
    xs = x[:, keep]
    scale = np.sqrt((xs**2).sum(axis=0))
    gram = (xs.T @ xs) / np.outer(scale, scale)
    _, r, piv = linalg.qr(gram, pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > diag[0] * 1e-10).sum())
    ok = np.zeros(xs.shape[1], dtype=bool)
    ok[piv[:rank]] = True
    out = np.zeros(x.shape[1], dtype=bool)
    out[np.nonzero(keep)[0][ok]] = True
    return out
