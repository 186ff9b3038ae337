"""KPIs computed from the ledger (flows) and the daily state records (stocks), never kept by hand.

Days before ``warmup_days`` are left out. Money is in the scenario's currency.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from promotwin.twin.ledger import Kind


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


def compute_kpis(
    ledger: pd.DataFrame, daily: pd.DataFrame, exceptions: int, warmup_days: int = 0
) -> dict[str, float]:
    led = ledger[ledger["day"] >= warmup_days]
    day = daily[daily["day"] >= warmup_days]
    n_days = max(int(day["day"].nunique()), 1)

    def total(kind: Kind, column: str = "qty", mask: pd.Series | None = None) -> float:
        rows = led["kind"] == int(kind)
        if mask is not None:
            rows &= mask
        return float(led.loc[rows, column].sum())

    sold, lost = total(Kind.SALE), total(Kind.LOST)
    promoted = led["promoted"]
    promo_sold, promo_lost = total(Kind.SALE, mask=promoted), total(Kind.LOST, mask=promoted)
    revenue = total(Kind.SALE, "value")
    funding = total(Kind.FUNDING, "value")
    cogs = total(Kind.SALE, "cost")
    holding = float(day["holding_cost"].sum())
    transport = total(Kind.DISPATCH, "cost")
    expedite = total(Kind.EXPEDITE_RECEIPT, "cost")
    ordering = total(Kind.SUPPLIER_RECEIPT, "cost")
    lost_cost = total(Kind.LOST, "cost")
    received = total(Kind.SUPPLIER_RECEIPT) + total(Kind.EXPEDITE_RECEIPT)
    short = total(Kind.SHORT)
    inventory_value = float(day.groupby("day")["on_hand_value"].sum().mean()) if len(day) else 0.0
    kpis = {
        "days": float(n_days),
        "demand_units": sold + lost,
        "sold_units": sold,
        "fill_rate": _ratio(sold, sold + lost),
        "promo_fill_rate": _ratio(promo_sold, promo_sold + promo_lost),
        "lost_sales_units": lost,
        "lost_sales_value": total(Kind.LOST, "value"),
        "promo_lost_sales_units": promo_lost,
        "stockout_days": float(day["stockout_cells"].sum()),
        "revenue": revenue,
        "vendor_funding": funding,
        "cost_of_goods": cogs,
        "gross_margin": revenue + funding - cogs,
        "holding_cost": holding,
        "transport_cost": transport,
        "expedite_cost": expedite,
        "ordering_cost": ordering,
        "lost_sale_cost": lost_cost,
        "total_cost": holding + transport + expedite + ordering + lost_cost,
        "avg_inventory_value": inventory_value,
        "inventory_turns": _ratio(cogs * 365.0 / n_days, inventory_value),
        "purchased_units": received,
        "supplier_fill_rate": _ratio(received, received + short),
        "forecast_wape": _ratio(float(day["abs_error"].sum()), float(day["demand"].sum())),
        "forecast_bias": _ratio(
            float(day["forecast"].sum() - day["demand"].sum()), float(day["demand"].sum())
        ),
        "exceptions": float(exceptions),
    }
    for code, name in enumerate(("walk_in", "pickup", "ecommerce")):
        ch = led["channel"] == code
        s, x = total(Kind.SALE, mask=ch), total(Kind.LOST, mask=ch)
        kpis[f"fill_rate_{name}"] = _ratio(s, s + x)
    return {k: float(np.round(v, 6)) for k, v in kpis.items()}


class RunForecastScore:
    """The forecast's error over the whole run after the warm-up, every SKU, at SKU x region x
    week: a week's forecast and demand are summed per SKU and region first (weeks counted from
    the first measured day, the last one possibly short), then |forecast - demand| over those
    sums / demand. Beside ``compute_kpis``' location x SKU x day WAPE, which daily noise at one
    store dominates, this is the level planners judge a forecast at."""

    def __init__(self, regions: Sequence[str], warmup_days: int):
        names, index = np.unique(np.asarray(regions, dtype=str), return_inverse=True)
        self.rows = [np.flatnonzero(index == r) for r in range(len(names))]  # a region's rows
        self.first_day = warmup_days
        self.week = -1
        self.forecast = self.demand_sum = np.zeros(0)  # [R, S] of the open week
        self.closed_error = 0.0  # |forecast - demand| over the weeks already closed
        self.demand = 0.0

    def add(self, day: int, forecast: np.ndarray, demand: np.ndarray) -> None:
        """The forecast made for ``day`` and its demand, per location x SKU ``[L, S]``."""
        if day < self.first_day:
            return
        week = (day - self.first_day) // 7
        if week != self.week:
            self.closed_error += self._open_error()
            self.week = week
            shape = (len(self.rows), forecast.shape[1])
            self.forecast, self.demand_sum = np.zeros(shape), np.zeros(shape)
        d = np.asarray(demand)
        for r, rows in enumerate(self.rows):  # a few regions: row sums beat a matrix product
            self.forecast[r] += forecast[rows].sum(axis=0)
            self.demand_sum[r] += d[rows].sum(axis=0)
        self.demand += float(d.sum())

    def _open_error(self) -> float:
        return float(np.abs(self.forecast - self.demand_sum).sum())

    def region_week_error(self) -> float:
        """|forecast - demand| summed over SKU x region x week so far (units)."""
        return self.closed_error + self._open_error()

    def kpis(self) -> dict[str, float]:
        wape = self.region_week_error() / self.demand if self.demand else float("nan")
        return {"forecast_wape_region_week": float(np.round(wape, 6))}
