"""What experiments know about the twin's KPIs: a label, a kind and which way is better."""

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


KPIS: dict[str, KpiInfo] = {
    "fill_rate": KpiInfo("fill rate", "rate", "higher"),
    "promo_fill_rate": KpiInfo("promotion fill rate", "rate", "higher"),
    "fill_rate_walk_in": KpiInfo("walk-in fill rate", "rate", "higher"),
    "fill_rate_pickup": KpiInfo("pickup fill rate", "rate", "higher"),
    "fill_rate_ecommerce": KpiInfo("ecommerce fill rate", "rate", "higher"),
    "supplier_fill_rate": KpiInfo("supplier fill rate", "rate", "higher"),
    "lost_sales_units": KpiInfo("lost sales", "units", "lower"),
    "promo_lost_sales_units": KpiInfo("promotion lost sales", "units", "lower"),
    "lost_sales_value": KpiInfo("lost sales value", "money", "lower"),
    "stockout_days": KpiInfo("stockout location-SKU-days", "count", "lower"),
    "demand_units": KpiInfo("demand", "units", "neither"),
    "sold_units": KpiInfo("units sold", "units", "higher"),
    "purchased_units": KpiInfo("units purchased", "units", "neither"),
    "revenue": KpiInfo("revenue", "money", "higher"),
    "vendor_funding": KpiInfo("vendor funding", "money", "higher"),
    "cost_of_goods": KpiInfo("cost of goods", "money", "neither"),
    "gross_margin": KpiInfo("gross margin", "money", "higher"),
    "holding_cost": KpiInfo("holding cost", "money", "lower"),
    "transport_cost": KpiInfo("transport cost", "money", "lower"),
    "expedite_cost": KpiInfo("expedite cost", "money", "lower"),
    "ordering_cost": KpiInfo("ordering cost", "money", "lower"),
    "lost_sale_cost": KpiInfo("lost-sale cost", "money", "lower"),
    "total_cost": KpiInfo("total cost", "money", "lower"),
    "avg_inventory_value": KpiInfo("average inventory value", "money", "lower"),
    "inventory_turns": KpiInfo("inventory turns", "other", "higher"),
    "forecast_wape": KpiInfo("forecast WAPE", "rate", "lower"),
    "forecast_bias": KpiInfo("forecast bias", "rate", "neither"),
    "exceptions": KpiInfo("exceptions", "count", "lower"),
    "days": KpiInfo("days measured", "count", "neither"),
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


def info(kpi: str) -> KpiInfo:
    """Metadata for ``kpi``; a KPI the twin added later gets a neutral default."""
    return KPIS.get(kpi, KpiInfo(kpi.replace("_", " "), "other", "neither"))
