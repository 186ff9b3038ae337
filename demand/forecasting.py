"""Forecasts from any fitted model (``demand/models.py``: GLM or gradient boosting) for a future
calendar with planned promotions.

The model gives each row (date, location, SKU, channel group) a predictive mean and a
negative-binomial ``k``; here they are checked finite, split into channels and turned into
quantiles. Store demand splits into walk-in and pickup by binomial thinning, which keeps ``k``
exact.

Policies get the mean and ``k'`` through ``PlanningSnapshot.forecast_mean`` and
``forecast_dispersion`` (:func:`snapshot_forecast`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from promotwin.demand.glm_design import ECOM, STORE
from promotwin.demand.history import PROMO_DEPTH
from promotwin.scenarios.schema import Promotion, Scenario

if TYPE_CHECKING:
    from promotwin.demand.models import ForecastModel

FloatArray = npt.NDArray[np.float64]
DEFAULT_QUANTILES = (0.05, 0.5, 0.95)


@dataclass(frozen=True)
class StoreInfo:
    """What a promotion's location filter needs to know about a store."""

    region: str = ""
    cluster: str = ""
    dc: str = ""  # the DC whose ecommerce rows a promotion in this store also covers


def store_info(scenario: Scenario) -> dict[str, StoreInfo]:
    """Region, cluster and serving DC of each store of ``scenario``."""
    dc_of = {st: d.id for d in scenario.dcs for st in d.serves}
    return {s.id: StoreInfo(s.region, s.cluster, dc_of.get(s.id, "")) for s in scenario.stores}


def calendar(
    model: ForecastModel,
    start: dt.date,
    periods: int,
    promotions: Sequence[Promotion] = (),
    stores: Mapping[str, StoreInfo] | None = None,
) -> pd.DataFrame:
    """Every fitted series x ``periods`` future dates, with the planned promotions' columns."""
    if periods < 1:
        raise ValueError("the forecast needs at least one period: raise --days")
    dates = pd.date_range(pd.Timestamp(start), periods=periods, freq=f"{model.period_days}D")
    series = pd.DataFrame(model.series, columns=["location", "sku", "group"])
    rows = series.merge(pd.DataFrame({"date": dates}), how="cross")
    depth = np.zeros(len(rows))
    display = np.zeros(len(rows), np.int64)
    feature = np.zeros(len(rows), np.int64)
    known_skus = set(model.sku_category)
    for p in promotions:
        cats = set(p.categories)
        skus = set(p.skus) | {s for s, c in model.sku_category.items() if c in cats}
        unknown = set(p.skus) - known_skus
        if unknown:
            raise ValueError(
                f"promotion {p.id}: SKU(s) {sorted(unknown)} are not in the fitted model; "
                "fit on a history that includes them or drop them from the promotion"
            )
        f = p.locations
        if (f.regions or f.clusters) and stores is None:
            raise ValueError(
                f"promotion {p.id} filters by region/cluster: pass the scenario (--scenario) "
                "so stores' regions and clusters are known"
            )
        info = stores or {}
        if f.stores or f.regions or f.clusters:
            chosen = {
                loc
                for loc in set(rows["location"]) | set(info)
                if loc in f.stores
                or (
                    loc in info
                    and (info[loc].region in f.regions or info[loc].cluster in f.clusters)
                )
            }
            chosen |= {info[x].dc for x in chosen if x in info and info[x].dc}
            in_loc = rows["location"].isin(chosen).to_numpy()
        else:
            in_loc = np.ones(len(rows), dtype=bool)
        store_ch = bool({"walk_in", "pickup"} & set(p.channels))
        ecom_ch = "ecommerce" in p.channels
        is_ecom = (rows["group"] == ECOM).to_numpy()
        group_ok = np.where(is_ecom, ecom_ch, store_ch)
        when = (rows["date"] >= pd.Timestamp(p.start)) & (rows["date"] <= pd.Timestamp(p.end))
        hit = rows["sku"].isin(skus).to_numpy() & group_ok & when.to_numpy() & in_loc
        depth = np.where(hit, np.maximum(depth, p.depth), depth)
        display = np.where(hit & p.display, 1, display)
        feature = np.where(hit & p.feature, 1, feature)
    rows["depth"] = depth
    rows["display"] = display
    rows["feature"] = feature
    rows["promo"] = ((depth >= PROMO_DEPTH) | (display > 0) | (feature > 0)).astype(np.int64)
    rows["category"] = rows["sku"].map(model.sku_category)
    return rows


class ForecastError(ValueError):
    """A model produced a non-finite forecast: an error, never an ``inf`` in a plan."""


def predict(model: ForecastModel, rows: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
    """``model.predict(rows)``, checked: every mean finite and >= 0, every ``k`` finite and > 0;
    otherwise a :class:`ForecastError` naming the SKUs (and what to do)."""
    mean, k = model.predict(rows)
    bad = ~(np.isfinite(mean) & (mean >= 0) & np.isfinite(k) & (k > 0))
    if bad.any():
        skus = sorted({str(s) for s in rows["sku"].to_numpy()[bad]})
        raise ForecastError(
            f"the {model.kind} model gives a non-finite forecast for SKU(s) {skus[:10]} "
            f"({int(bad.sum())} rows): refit on a history where they sell and vary in price, "
            "or drop them from the calendar"
        )
    return mean, k


def forecast(
    model: ForecastModel,
    rows: pd.DataFrame,
    quantiles: Iterable[float] = DEFAULT_QUANTILES,
) -> pd.DataFrame:
    """Mean and prediction quantiles per date x location x SKU x channel for calendar ``rows``.

    ``rows`` comes from :func:`calendar` (or has its columns: date, location, sku, group,
    depth, display, feature, promo, category). Columns out: ``date, location, sku, channel,
    promo, mean, k`` and one ``q<percent>`` column per quantile.
    """
    qs = [float(q) for q in quantiles]
    if any(not 0 < q < 1 for q in qs):
        raise ValueError(f"quantiles must be between 0 and 1, got {qs}")
    mean, k = predict(model, rows)
    out = rows.assign(mean=mean, k=k)
    share = out["location"].map(model.pickup_share).fillna(0.0).to_numpy()
    is_store = (out["group"] == STORE).to_numpy()
    pieces = [
        out[is_store].assign(channel="walk_in", mean=out["mean"][is_store] * (1 - share[is_store])),
        out[is_store & (share > 0)].assign(
            channel="pickup",
            mean=out["mean"][is_store & (share > 0)] * share[is_store & (share > 0)],
        ),
        out[~is_store].assign(channel="ecommerce"),
    ]
    res = pd.concat(pieces, ignore_index=True)
    m = res["mean"].to_numpy()
    kk = res["k"].to_numpy()
    for q in qs:
        res[f"q{round(q * 100):02d}"] = stats.nbinom.ppf(q, kk, kk / (kk + m))
    cols = ["date", "location", "sku", "channel", "promo", "depth", "mean", "k"]
    cols += [f"q{round(q * 100):02d}" for q in qs]
    return res[cols].sort_values(["date", "location", "sku", "channel"], ignore_index=True)


def snapshot_forecast(
    frame: pd.DataFrame,
    location_ids: Sequence[str],
    sku_ids: Sequence[str],
    first_date: dt.date,
    horizon: int,
    serving_dc: Mapping[str, str] | None = None,
) -> tuple[FloatArray, float]:
    """``forecast_mean [H, L, S]`` and a single NB ``k`` for a ``PlanningSnapshot``.

    Store rows get walk-in + pickup; ecommerce goes to the location it was recorded at, or to
    the store's DC when ``serving_dc`` maps it. ``k`` matches the total variance:
    ``sum(m^2) / sum(m^2 / k')``. Cells without a forecast stay 0.
    """
    li = {x: i for i, x in enumerate(location_ids)}
    si = {x: i for i, x in enumerate(sku_ids)}
    out = np.zeros((horizon, len(location_ids), len(sku_ids)))
    day = (pd.to_datetime(frame["date"]) - pd.Timestamp(first_date)).dt.days.to_numpy()
    loc = frame["location"].astype(str)
    if serving_dc:
        is_ecom = frame["channel"] == "ecommerce"
        loc = loc.where(~is_ecom, loc.map(lambda x: serving_dc.get(x, x)))
    l_idx = loc.map(li)
    s_idx = frame["sku"].astype(str).map(si)
    ok = (day >= 0) & (day < horizon) & l_idx.notna().to_numpy() & s_idx.notna().to_numpy()
    m = frame["mean"].to_numpy(np.float64)[ok]
    np.add.at(
        out,
        (day[ok], l_idx[ok].astype(np.int64).to_numpy(), s_idx[ok].astype(np.int64).to_numpy()),
        m,
    )
    kk = frame["k"].to_numpy(np.float64)[ok]
    num = float((m**2).sum())
    den = float((m**2 / kk).sum())
    return out, (num / den if den > 0 else 1e6)
