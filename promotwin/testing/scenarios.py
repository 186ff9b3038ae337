"""Small scenarios built in code, and a policy wrapper that checks the state it is shown."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import yaml

from promotwin.policies.contract import Plan, PlanningSnapshot, Policy
from promotwin.scenarios import Scenario, parse_scenario
from promotwin.twin.ledger import Kind


def small_scenario(**overrides: Any) -> Scenario:
    """A generated network, small enough for property tests (override any scenario field)."""
    raw: dict[str, Any] = {
        "name": "small",
        "start_date": "2026-03-02",
        "horizon_days": 40,
        "synthetic": {
            "stores": 4,
            "dcs": 2,
            "skus": 6,
            "suppliers": 2,
            "categories": 2,
            "promotions": 1,
            "seed": 5,
        },
    }
    raw.update(overrides)
    return parse_scenario(yaml.safe_dump(raw, sort_keys=False))


def single_cell_scenario(days: int, dispersion: float = 1e7, store_days: float = 3.0) -> Scenario:
    """One DC with effectively unlimited stock feeding one store over a 1-day lane; one SKU,
    flat Poisson-like demand (no weekday, season or promotion effects)."""
    raw = {
        "name": "single_cell",
        "start_date": "2026-01-05",
        "horizon_days": days,
        "stores": [{"id": "S1", "region": "R", "channels": ["walk_in"], "pickup_share": 0.0}],
        "dcs": [{"id": "DC", "region": "R", "throughput": 1e9, "serves": ["S1"]}],
        "suppliers": [{"id": "V", "lead_time": {"distribution": "fixed", "mean": 5}}],
        "lanes": [{"origin": "DC", "destination": "S1", "transit_days": 1}],
        "skus": [
            {
                "id": "K",
                "category": "c",
                "price": 10,
                "unit_cost": 6,
                "supplier": "V",
                "baseline": 4.0,
                "ecommerce_share": 0.0,
            }
        ],
        "demand": {"dispersion": dispersion, "weekday": [1] * 7, "forecast_error": 0.0},
        "initial_inventory": {"store_days": store_days, "dc_days": 1e6},
    }
    return parse_scenario(yaml.safe_dump(raw, sort_keys=False))


def supplier_dc_store_scenario(
    days: int, mean: float, variance: float, holding: float, lost_sale: float
) -> Scenario:
    """One supplier (1-day lead time, always in full) -> one DC -> one store (1-day lane): an
    order placed at the end of day t is on the store's shelf at the start of day t+2. One SKU,
    flat negative-binomial demand (``mean``, ``variance`` units a day); ``holding`` currency per
    unit-day, ``lost_sale`` currency per lost unit (the lost margin, no goodwill); no ordering
    or transport cost. The DC opens empty, the store with two days of demand."""
    unit_cost = 10.0
    raw = {
        "name": "supplier_dc_store",
        "start_date": "2026-01-05",
        "horizon_days": days,
        "stores": [{"id": "S1", "region": "R", "channels": ["walk_in"], "pickup_share": 0.0}],
        "dcs": [{"id": "DC", "region": "R", "throughput": 1e9, "serves": ["S1"]}],
        "suppliers": [
            {
                "id": "V",
                "lead_time": {"distribution": "fixed", "mean": 1},
                "fill_rate": 1.0,
                "order_cost": 0.0,
            }
        ],
        "lanes": [{"origin": "DC", "destination": "S1", "transit_days": 1, "cost_per_unit": 0}],
        "skus": [
            {
                "id": "K",
                "category": "c",
                "price": unit_cost + lost_sale,
                "unit_cost": unit_cost,
                "holding_rate": holding * 365.0 / unit_cost,
                "supplier": "V",
                "baseline": mean,
                "ecommerce_share": 0.0,
            }
        ],
        "demand": {
            "dispersion": mean**2 / (variance - mean),
            "weekday": [1] * 7,
            "forecast_error": 0.0,
        },
        "costs": {"lost_sale_penalty": 0.0},
        "initial_inventory": {"store_days": 2.0, "dc_days": 0.0},
    }
    return parse_scenario(yaml.safe_dump(raw, sort_keys=False))


@dataclass
class Checking:
    """Wraps a policy; records the state it is shown each day (the twin's own state)."""

    inner: Policy
    name: str = "checking"
    minima: list[int] = field(default_factory=list)
    totals: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def horizon_days(self) -> int:
        return self.inner.horizon_days

    def decide(self, snapshot: PlanningSnapshot) -> Plan:
        self.minima.append(
            int(min(snapshot.on_hand.min(), snapshot.in_transit.min(), snapshot.on_order.min()))
        )
        self.totals.append(
            (
                int(snapshot.on_hand.sum()),
                int(snapshot.in_transit.sum()),
                int(snapshot.on_order.sum()),
            )
        )
        return self.inner.decide(snapshot)


def date(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def nb_moments(mu: float, k: float) -> tuple[float, float]:
    """Mean and variance of a negative binomial with mean ``mu`` and dispersion ``k``."""
    return mu, mu + mu**2 / k


def ledger_stock(ledger: pd.DataFrame, n_loc: int, n_sku: int) -> np.ndarray:
    """On hand per [location, sku] rebuilt from the ledger's unit movements alone."""
    sign = {
        Kind.INITIAL: 1,
        Kind.SUPPLIER_RECEIPT: 1,
        Kind.EXPEDITE_RECEIPT: 1,
        Kind.RECEIPT: 1,
        Kind.DISPATCH: -1,
        Kind.SALE: -1,
    }
    stock = np.zeros((n_loc, n_sku), np.int64)
    for kind, s in sign.items():
        rows = ledger[ledger["kind"] == int(kind)]
        np.add.at(
            stock, (rows["location"].to_numpy(), rows["sku"].to_numpy()), s * rows["qty"].to_numpy()
        )
    return stock
