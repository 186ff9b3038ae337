"""What every view knows about the twin's KPIs: one label, a kind, which way is better and a
one-line explanation, so the CLI, kpis.json readers, the report and the dashboards name them
the same way. Money is in the scenario's currency (``Scenario.currency``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["rate", "units", "money", "count", "other"]
Better = Literal["higher", "lower", "neither"]


@dataclass(frozen=True)
class KpiInfo:
    label: str
    kind: Kind
    better: Better
    help: str = ""  # one line for a tooltip or a footnote


# total_cost is exactly the sum of these, in this order (twin/kpis.py)
COST_PARTS: tuple[str, ...] = (
    "lost_sale_cost",
    "ordering_cost",
    "holding_cost",
    "transport_cost",
    "expedite_cost",
)

KPIS: dict[str, KpiInfo] = {
    "fill_rate": KpiInfo("fill rate", "rate", "higher", "share of demand served from stock"),
    "promo_fill_rate": KpiInfo(
        "promotion fill rate",
        "rate",
        "higher",
        "share of demand for promoted SKUs served while their promotion runs",
    ),
    "fill_rate_walk_in": KpiInfo("walk-in fill rate", "rate", "higher"),
    "fill_rate_pickup": KpiInfo(
        "pickup (buy online, pick up in store) fill rate", "rate", "higher"
    ),
    "fill_rate_ecommerce": KpiInfo("ecommerce fill rate", "rate", "higher"),
    "supplier_fill_rate": KpiInfo(
        "supplier fill rate", "rate", "higher", "share of ordered units the suppliers delivered"
    ),
    "lost_sales_units": KpiInfo("lost sales", "units", "lower", "units of demand not served"),
    "promo_lost_sales_units": KpiInfo(
        "promotion lost sales", "units", "lower", "promoted SKUs' units not served in the promotion"
    ),
    "lost_sales_value": KpiInfo(
        "lost sales value", "money", "lower", "lost units at their selling price (lost revenue)"
    ),
    "stockout_days": KpiInfo(
        "out-of-stock days (store or DC × SKU)",
        "count",
        "lower",
        "days on which a SKU at a location could not meet all its demand, added up over "
        "locations and SKUs: one SKU out at 3 stores for 2 days counts 6",
    ),
    "demand_units": KpiInfo("demand", "units", "neither"),
    "sold_units": KpiInfo("units sold", "units", "higher"),
    "purchased_units": KpiInfo("units purchased", "units", "neither"),
    "revenue": KpiInfo("revenue", "money", "higher"),
    "vendor_funding": KpiInfo(
        "vendor funding", "money", "higher", "what suppliers pay per promoted unit sold"
    ),
    "cost_of_goods": KpiInfo("cost of goods", "money", "neither"),
    "gross_margin": KpiInfo(
        "gross margin", "money", "higher", "revenue + vendor funding − cost of goods sold"
    ),
    "holding_cost": KpiInfo(
        "holding cost",
        "money",
        "lower",
        "on the stock each location holds at the end of the day, after the day's dispatch",
    ),
    "transport_cost": KpiInfo(
        "transport cost", "money", "lower", "per unit dispatched on a lane (lane cost per unit)"
    ),
    "expedite_cost": KpiInfo(
        "expedite cost", "money", "lower", "the premium on expedited units received"
    ),
    "ordering_cost": KpiInfo(
        "ordering cost", "money", "lower", "the suppliers' fixed cost per purchase order"
    ),
    "lost_sale_cost": KpiInfo(
        "lost-sale cost",
        "money",
        "lower",
        "per lost unit: the margin lost plus the goodwill penalty",
    ),
    "total_cost": KpiInfo(
        "total cost",
        "money",
        "lower",
        "lost-sale + ordering + holding + transport + expedite cost (not the cost of goods)",
    ),
    "avg_inventory_value": KpiInfo(
        "average inventory value", "money", "lower", "end-of-day stock at unit cost, per day"
    ),
    "inventory_turns": KpiInfo("inventory turns (per year)", "other", "higher"),
    "forecast_wape": KpiInfo(
        "forecast WAPE (location × SKU × day)",
        "rate",
        "lower",
        "absolute forecast error over demand at the finest level, all SKUs and days: daily "
        "noise at one store dominates it, so it is high and alike for every policy",
    ),
    "forecast_wape_region_week": KpiInfo(
        "forecast WAPE (SKU × region × week)",
        "rate",
        "lower",
        "every SKU over the run, a week's units summed per SKU and region before the error: "
        "the level planners judge a forecast at, so it tells forecasters apart",
    ),
    "forecast_bias": KpiInfo(
        "forecast bias", "rate", "neither", "(forecast − demand) / demand; + is over-forecast"
    ),
    "promo_forecast_wape": KpiInfo(
        "forecast WAPE, promotion (location × SKU × day)",
        "rate",
        "lower",
        "promoted SKUs over the promotion window, at the level the policy reads",
    ),
    "promo_forecast_wape_region_week": KpiInfo(
        "forecast WAPE, promotion (SKU × region × week)",
        "rate",
        "lower",
        "promoted SKUs over the promotion window, at the level planners judge a forecast",
    ),
    "promo_forecast_bias": KpiInfo(
        "forecast bias, promotion", "rate", "neither", "promoted SKUs over the promotion window"
    ),
    "exceptions": KpiInfo(
        "exceptions", "count", "lower", "plan lines routed to a planner instead of auto-approved"
    ),
    "days": KpiInfo("days measured", "count", "neither", "days after the warm-up"),
}

DEFAULT_KPIS: tuple[str, ...] = (
    "promo_lost_sales_units",
    "lost_sales_units",
    "fill_rate",
    "promo_fill_rate",
    "avg_inventory_value",
    "total_cost",
    "gross_margin",
    "expedite_cost",
)

DEFAULT_CURRENCY = "USD"


def info(kpi: str) -> KpiInfo:
    """Metadata for ``kpi``; a KPI the twin added later gets a neutral default."""
    return KPIS.get(kpi, KpiInfo(kpi.replace("_", " "), "other", "neither"))


def label(kpi: str, currency: str = DEFAULT_CURRENCY) -> str:
    """The KPI's label with its unit where it has one: ``total cost (USD)``, ``lost sales
    (units)``; rates and counts as they are."""
    meta = info(kpi)
    unit = {"money": currency, "units": "units"}.get(meta.kind)
    return f"{meta.label} ({unit})" if unit else meta.label
