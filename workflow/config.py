"""The governance config: thresholds, gates, hard limits, routing and simulated planners.

Validated once, strictly, like a scenario (unknown fields rejected, every problem listed with its
field and a fix). Money is currency, quantities are units, times are days.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from promotwin.scenarios import config_files
from promotwin.scenarios.config_files import ConfigError, Problem, parse_yaml_model
from promotwin.scenarios.schema import Scenario

LIBRARY = "promotwin.workflow.library"
Kind = Literal["purchase", "expedite", "shipment", "transfer"]
KINDS: tuple[Kind, ...] = ("purchase", "expedite", "shipment", "transfer")  # ActionKind order
Owner = Literal["merchandising", "supply_chain", "store_ops", "finance"]
OWNERS: tuple[Owner, ...] = ("merchandising", "supply_chain", "store_ops", "finance")
NonNeg = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class GovernanceConfigError(ConfigError):
    """A governance config that cannot be used; ``problems`` lists every issue found."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Threshold(Strict):
    """Auto-approve a line up to these limits (``null`` = no limit); above any, route it."""

    max_value: NonNeg | None = Field(None, description="qty x unit cost of the goods, currency")
    max_qty: NonNeg | None = Field(None, description="units per line")
    max_margin_impact: NonNeg | None = Field(
        None, description="extra cost beyond the goods (expedite premium, transport), currency"
    )


class Thresholds(Strict):
    purchase: Threshold = Threshold()
    expedite: Threshold = Threshold()
    shipment: Threshold = Threshold()
    transfer: Threshold = Threshold()


class Confidence(Strict):
    """Route a line whose confidence is below ``min`` (per-kind overrides in ``by_kind``)."""

    min: Fraction = 0.0
    by_kind: dict[Kind, Fraction] = {}


class Risk(Strict):
    """Gates tied to simulated evidence."""

    expedite_min_stockout_probability: Fraction | None = Field(
        None,
        description="auto-approve an expedite only if the projected stockout probability over "
        "the regular lead time without it reaches this",
    )
    readiness_min: Fraction | None = Field(
        None, description="route lines for a promotion whose readiness score is below this"
    )
    readiness: dict[str, Fraction] = Field(
        {}, description="promotion id -> readiness score in [0, 1] (until it is computed)"
    )


class HardLimits(Strict):
    """Limits nothing overrides: lines beyond them are rejected, never routed."""

    budget_per_day: NonNeg | None = Field(None, description="purchases + expedites, currency")
    budget_per_week: NonNeg | None = Field(None, description="per 7 simulated days, currency")
    supplier_capacity: bool = Field(True, description="reject orders beyond units per day")
    blocked_skus: tuple[str, ...] = ()
    blocked_suppliers: tuple[str, ...] = ()


class Priority(Strict):
    """Priority from value at risk (qty x lost-sale cost, currency)."""

    high: NonNeg = 10_000.0
    medium: NonNeg = 1_000.0

    @model_validator(mode="after")
    def _ordered(self) -> Priority:
        if self.medium > self.high:
            raise ValueError(f"medium ({self.medium}) must not exceed high ({self.high})")
        return self


class Routing(Strict):
    owners: dict[Kind, Owner] = {
        "purchase": "supply_chain",
        "expedite": "supply_chain",
        "shipment": "store_ops",
        "transfer": "store_ops",
    }
    readiness_owner: Owner = "merchandising"
    finance_above_value: NonNeg | None = Field(
        None, description="routed lines worth at least this go to finance"
    )
    priority: Priority = Priority()
    expiry_days: Annotated[int, Field(ge=1)] = Field(
        3, description="an exception still open this many days after it was raised expires"
    )


class Planners(Strict):
    """Simulated planners (twin only): who handles the queues, how fast, how many a day."""

    count: Annotated[int, Field(ge=1)] = 2
    capacity_per_day: Annotated[int, Field(ge=0)] = 20
    response_delay_days: Annotated[int, Field(ge=0)] = 1
    approve_share: Fraction = 1.0
    seed: int = 0


class Monitoring(Strict):
    """Forecast drift in shadow mode (``shadow.monitoring``): each run scores the week to its
    as-of date against the ERP's sales; crossing a limit raises one exception for ``owner``."""

    level: Literal["sku-region-week", "sku-location-day"] = Field(
        "sku-region-week", description="the level the limits apply at"
    )
    max_abs_bias: Annotated[float, Field(gt=0)] | None = Field(
        0.2, description="|forecast - actual| / actual of the week's totals, share (null: none)"
    )
    max_wape: Annotated[float, Field(gt=0)] | None = Field(
        0.6, description="sum |forecast - actual| / sum actual at the level, share (null: none)"
    )
    min_actual_units: NonNeg = Field(
        50.0, description="a week that sold fewer units is too small to judge: no exception"
    )
    owner: Owner = Field("merchandising", description="the forecast model owner's queue")


class GovernanceConfig(Strict):
    name: str
    description: str = ""
    at_threshold: Literal["auto_approve", "route"] = Field(
        "auto_approve", description="what a line exactly at a threshold gets"
    )
    thresholds: Thresholds = Thresholds()
    confidence: Confidence = Confidence()
    risk: Risk = Risk()
    hard_limits: HardLimits = HardLimits()
    routing: Routing = Routing()
    planners: Planners = Planners()
    monitoring: Monitoring = Monitoring()

    def fingerprint(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


def library_names() -> list[str]:
    return config_files.library_names(LIBRARY)


def resolve_config(name_or_path: str | Path) -> Path:
    """A path to a governance config, from a path or a built-in name (``default``)."""
    return config_files.resolve(name_or_path, LIBRARY, GovernanceConfigError, "governance config")


def load_config(name_or_path: str | Path, scenario: Scenario | None = None) -> GovernanceConfig:
    """Read and validate; with a scenario, also check its ids exist there."""
    path = resolve_config(name_or_path)
    text = config_files.read_text(path, GovernanceConfigError, "governance config")
    return parse_config(text, source=str(path), scenario=scenario)


def parse_config(
    text: str, source: str = "<governance>", scenario: Scenario | None = None
) -> GovernanceConfig:
    """Validate governance YAML; raise ``GovernanceConfigError`` listing every problem."""
    config = parse_yaml_model(text, GovernanceConfig, source, GovernanceConfigError, "governance")
    problems = check_against(config, scenario) if scenario is not None else []
    if problems:
        raise GovernanceConfigError(source, problems)
    return config


def check_against(config: GovernanceConfig, scenario: Scenario) -> list[Problem]:
    """Ids the config names that the scenario does not have."""
    skus = {s.id for s in scenario.skus}
    suppliers = {s.id for s in scenario.suppliers}
    promotions = {p.id for p in scenario.promotions}
    out = [
        Problem("hard_limits.blocked_skus", f"unknown SKU {x!r} in scenario {scenario.name}")
        for x in config.hard_limits.blocked_skus
        if x not in skus
    ]
    out += [
        Problem("hard_limits.blocked_suppliers", f"unknown supplier {x!r} in {scenario.name}")
        for x in config.hard_limits.blocked_suppliers
        if x not in suppliers
    ]
    out += [
        Problem(f"risk.readiness.{x}", f"unknown promotion in scenario {scenario.name}")
        for x in config.risk.readiness
        if x not in promotions
    ]
    return out
