"""The scenario schema: strict, frozen pydantic models validated once before anything runs.

Days are integers counted from ``start_date`` (day 0). Quantities are units, money is currency,
lead and transit times are days.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

StoreChannel = Literal["walk_in", "pickup", "ship_from_store"]
# who replenishes a store: its DC, its SKUs' suppliers directly (direct-store delivery), or both
SuppliedBy = Literal["dc", "supplier", "both"]
DemandChannel = Literal["walk_in", "pickup", "ecommerce"]
# Quantities and money above 10^15 are a unit mistake, and their products overflow the twin's
# 64-bit unit counts.
MAX_QUANTITY = 1e15
NonNegFloat = Annotated[float, Field(ge=0, le=MAX_QUANTITY)]
PosFloat = Annotated[float, Field(gt=0, le=MAX_QUANTITY)]
Elasticity = Annotated[float, Field(ge=-50, le=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
MAX_DAYS = 3660  # ten years: the longest horizon, lead time or delay a scenario may give
Id = Annotated[str, Field(min_length=1, description="a non-empty id")]


def _date_as_text(value: Any) -> Any:
    """Refuse a number where a date belongs (pydantic would read 1767225600 as Unix time)."""
    if isinstance(value, int | float):
        raise ValueError(f"{value!r} is a number, not a date: write dates as YYYY-MM-DD")
    return value


Date = Annotated[dt.date, BeforeValidator(_date_as_text)]


def _period_problem(start: dt.date, end: dt.date, what: str) -> str | None:
    if end < start:
        return f"{what} end {end} is before its start {start}: swap them"
    return None


class Strict(BaseModel):
    """Base for every scenario model: unknown fields are rejected, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Store(Strict):
    id: Id
    region: Id
    cluster: Id = "default"
    channels: tuple[StoreChannel, ...] = ("walk_in", "pickup")
    size: PosFloat = Field(1.0, description="demand multiplier relative to an average store")
    pickup_share: Fraction = Field(0.15, description="share of store demand placed as pickup")
    supplied_by: SuppliedBy = Field(
        "dc",
        description=(
            "who replenishes the store: `dc` (the DC whose `serves` lists it), `supplier` "
            "(direct-store delivery: each SKU's supplier delivers to the store, at that "
            "supplier's lead time, fill rate, capacity and MOQ; no DC serves it) or `both`"
        ),
    )

    @property
    def direct(self) -> bool:
        """Suppliers deliver to this store directly (direct-store delivery)."""
        return self.supplied_by != "dc"


class DC(Strict):
    id: Id
    region: Id
    throughput: PosFloat = Field(description="outbound units per day (store shipments + ecommerce)")
    serves: tuple[str, ...] = Field(description="ids of the stores this DC replenishes")


class LeadTime(Strict):
    """Supplier lead time in days: ``mean`` with ``distribution`` around it, never below ``min``."""

    distribution: Literal["fixed", "poisson", "lognormal"] = "fixed"
    mean: Annotated[float, Field(gt=0, le=MAX_DAYS)] = 7.0
    sd: Annotated[float, Field(ge=0, le=MAX_DAYS)] = 0.0
    min: Annotated[int, Field(ge=1, le=MAX_DAYS)] = 1

    @model_validator(mode="after")
    def _min_not_above_mean(self) -> LeadTime:
        if self.min > self.mean:
            raise ValueError(
                f"min {self.min} is above the mean {self.mean}: lower `min` or raise `mean`"
            )
        return self


class Supplier(Strict):
    id: Id
    lead_time: LeadTime = LeadTime()
    fill_rate: Fraction = Field(0.98, description="expected share of ordered units delivered")
    capacity: PosFloat = Field(1e9, description="units per day across all its orders")
    moq: NonNegFloat = Field(0, description="minimum order quantity per SKU line, units")
    expedite_lead_time: Annotated[int, Field(ge=1, le=MAX_DAYS)] = 2
    order_cost: NonNegFloat = Field(0.0, description="fixed cost per purchase order")


class Lane(Strict):
    origin: Id
    destination: Id
    transit_days: Annotated[int, Field(ge=1, le=MAX_DAYS)] = Field(
        1, description="dispatched today, arrives this many days later"
    )
    cost_per_unit: NonNegFloat = 0.5
    capacity: PosFloat = Field(1e9, description="units per day")


class Sku(Strict):
    id: Id
    category: Id
    price: PosFloat = Field(description="regular shelf price, currency per unit")
    unit_cost: PosFloat = Field(description="purchase cost, currency per unit")
    holding_rate: NonNegFloat = Field(0.25, description="holding cost per year as share of cost")
    supplier: Id
    baseline: NonNegFloat = Field(description="average daily units per average store, no promo")
    ecommerce_share: Fraction = Field(0.1, description="ecommerce units as share of store units")
    elasticity: Elasticity | None = Field(
        None, description="own-price elasticity (<= 0: deeper discount, more units)"
    )


class Seasonality(Strict):
    """Multiplier ``1 + amplitude * cos(2*pi*(day_of_year - peak_day)/365)`` per category."""

    amplitude: Fraction = 0.0
    peak_day: Annotated[int, Field(ge=1, le=366)] = 180


# -- hidden truth: how true demand differs from the plan (the planners and forecasters never see
# these; the demand generator samples them; neutral defaults leave demand as planned) -----------


class UpliftDeviation(Strict):
    """The true uplift is the planned one x ``(1 + deviation)`` (x a seeded log-normal draw of sd
    ``sd`` per promotion x SKU) on the cells of these regions/clusters/channels (empty: all)."""

    promotions: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    channels: tuple[DemandChannel, ...] = ()
    deviation: Annotated[float, Field(gt=-1)] = Field(
        description="relative error of the planned uplift, e.g. 0.4 for urban +40%"
    )
    sd: NonNegFloat = Field(0.0, description="sd of the log of a per promotion x SKU draw")


class HiddenTruth(Strict):
    """What the plan gets wrong: cell deviations of the uplift, elasticity, an unplanned halo."""

    uplift_deviations: tuple[UpliftDeviation, ...] = ()
    elasticity_shift: float = Field(
        0.0, description="true own-price elasticity = planned + shift (negative: more sensitive)"
    )
    unplanned_halo: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="category -> complements that gain, unknown to the plan"
    )
    unplanned_halo_rate: Fraction = 0.0

    @property
    def neutral(self) -> bool:
        return not (
            self.uplift_deviations
            or self.elasticity_shift
            or (self.unplanned_halo and self.unplanned_halo_rate)
        )


class DemandParams(Strict):
    """Generator parameters; or ``history`` to replay a file exactly instead."""

    history: str | None = Field(
        None, description="CSV/Parquet: date, location, sku, channel, units"
    )
    dispersion: PosFloat = Field(4.0, description="negative-binomial k: var = mu + mu^2/k")
    weekday: tuple[PosFloat, ...] = (0.9, 0.85, 0.9, 0.95, 1.1, 1.25, 1.05)
    seasonality: dict[str, Seasonality] = Field(default_factory=dict, description="by category")
    elasticity: Elasticity = Field(-2.0, description="own-price elasticity on discount depth")
    display_lift: NonNegFloat = 0.2
    feature_lift: NonNegFloat = 0.3
    cannibalisation: Fraction = Field(
        0.3, description="share of promoted SKUs' extra units taken from same-category SKUs"
    )
    halo: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="category -> complement categories that gain"
    )
    halo_rate: Fraction = Field(0.1, description="complements gain this share of extra units")
    post_promo_dip: Fraction = Field(0.3, description="demand drop right after a promotion")
    post_promo_days: Annotated[int, Field(ge=0, le=MAX_DAYS)] = 7
    forecast_error: NonNegFloat = Field(
        0.25, description="sd of log error of the planners' uplift estimate per promotion x SKU"
    )
    truth: HiddenTruth = Field(
        default_factory=HiddenTruth, description="how true demand differs from the plan (hidden)"
    )

    @model_validator(mode="after")
    def _weekday_length(self) -> DemandParams:
        if len(self.weekday) != 7:
            raise ValueError(
                f"weekday needs 7 factors (Monday..Sunday), got {len(self.weekday)}: "
                "list one multiplier per weekday"
            )
        return self


class EcommerceWave(Strict):
    start: Date
    end: Date
    lift: NonNegFloat = Field(0.5, description="extra ecommerce uplift during the wave")

    @model_validator(mode="after")
    def _ordered(self) -> EcommerceWave:
        problem = _period_problem(self.start, self.end, "wave")
        if problem:
            raise ValueError(problem)
        return self


class LocationFilter(Strict):
    """Stores by id, region or cluster; empty means every store."""

    stores: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()


class Promotion(Strict):
    id: Id
    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    locations: LocationFilter = LocationFilter()
    channels: tuple[DemandChannel, ...] = ("walk_in", "pickup", "ecommerce")
    start: Date
    end: Date = Field(description="last day of the promotion (inclusive)")
    depth: Annotated[float, Field(ge=0, lt=1)] = Field(description="discount as share of price")
    display: bool = False
    feature: bool = False
    ecommerce_waves: tuple[EcommerceWave, ...] = ()
    vendor_funding: NonNegFloat = Field(0.0, description="currency per promoted unit sold")
    planned_uplift: PosFloat | None = Field(
        None, description="uplift multiplier in the static pre-season plan (static-forecast)"
    )

    @model_validator(mode="after")
    def _check(self) -> Promotion:
        if not self.skus and not self.categories:
            raise ValueError("a promotion needs `skus` or `categories`: name what is promoted")
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}: swap them")
        for i, wave in enumerate(self.ecommerce_waves):
            if wave.start < self.start or wave.end > self.end:
                raise ValueError(
                    f"ecommerce_waves.{i} runs {wave.start}..{wave.end}, outside the promotion "
                    f"{self.start}..{self.end}: move it inside"
                )
        return self


class InitialInventory(Strict):
    """Opening stock as days of average baseline demand."""

    store_days: NonNegFloat = 10.0
    dc_days: NonNegFloat = 21.0


class Costs(Strict):
    lost_sale_penalty: NonNegFloat = Field(
        0.5, description="goodwill cost per lost unit, as share of price, on top of lost margin"
    )
    expedite_premium: NonNegFloat = Field(0.3, description="extra cost per expedited unit / cost")


class SupplierDelay(Strict):
    supplier: Id
    start: Date
    end: Date
    extra_days: Annotated[int, Field(ge=1, le=MAX_DAYS)]

    @model_validator(mode="after")
    def _ordered(self) -> SupplierDelay:
        problem = _period_problem(self.start, self.end, "delay")
        if problem:
            raise ValueError(problem)
        return self


class DcCapacityDrop(Strict):
    dc: Id
    start: Date
    end: Date
    factor: Fraction = Field(description="share of normal throughput left")

    @model_validator(mode="after")
    def _ordered(self) -> DcCapacityDrop:
        problem = _period_problem(self.start, self.end, "capacity drop")
        if problem:
            raise ValueError(problem)
        return self


class Disruptions(Strict):
    supplier_delays: tuple[SupplierDelay, ...] = ()
    dc_capacity_drops: tuple[DcCapacityDrop, ...] = ()


class Fulfilment(Strict):
    ecommerce: Literal["dc", "dc_then_store"] = Field(
        "dc_then_store", description="ecommerce from DC stock, then ship-from-store stores"
    )


class Synthetic(Strict):
    """Generate the network and catalogue instead of listing them (seeded)."""

    stores: Annotated[int, Field(ge=1)]
    dcs: Annotated[int, Field(ge=1)] = 2
    skus: Annotated[int, Field(ge=1)]
    suppliers: Annotated[int, Field(ge=1)] = 5
    regions: Annotated[int, Field(ge=1)] = 4
    categories: Annotated[int, Field(ge=1)] = 10
    promotions: Annotated[int, Field(ge=0)] = 2
    seed: Annotated[int, Field(ge=0)] = 0
    direct_share: Fraction = Field(
        0.0,
        description=(
            "share of stores supplied directly by suppliers (direct-store delivery); every "
            "second of them is supplied by its DC as well (`supplied_by: both`)"
        ),
    )


class Scenario(Strict):
    name: Id
    description: str = ""
    start_date: Date
    horizon_days: Annotated[int, Field(ge=1, le=MAX_DAYS)]
    warmup_days: Annotated[int, Field(ge=0, le=MAX_DAYS)] = 0
    currency: str = Field(
        "USD", description="ISO 4217 code every price and cost is in (a label: it converts nothing)"
    )
    synthetic: Synthetic | None = None
    stores: tuple[Store, ...] = ()
    dcs: tuple[DC, ...] = ()
    suppliers: tuple[Supplier, ...] = ()
    lanes: tuple[Lane, ...] = ()
    skus: tuple[Sku, ...] = ()
    demand: DemandParams = DemandParams()
    promotions: tuple[Promotion, ...] = ()
    initial_inventory: InitialInventory = InitialInventory()
    costs: Costs = Costs()
    disruptions: Disruptions = Disruptions()
    fulfilment: Fulfilment = Fulfilment()

    @model_validator(mode="after")
    def _network_given_once(self) -> Scenario:
        listed = bool(self.stores or self.dcs or self.skus or self.suppliers)
        if self.synthetic is not None and listed:
            raise ValueError(
                "give either `synthetic` or explicit stores/dcs/skus/suppliers, not both"
            )
        if self.synthetic is None and not (self.stores and self.dcs and self.skus):
            raise ValueError(
                "the network is empty: list `stores`, `dcs`, `skus` and `suppliers`, "
                "or add a `synthetic:` block to generate them"
            )
        return self

    @property
    def end_date(self) -> dt.date:
        return self.start_date + dt.timedelta(days=self.horizon_days - 1)

    def day_of(self, date: dt.date) -> int:
        """Day index of ``date`` (0 = start_date)."""
        return (date - self.start_date).days

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, code: str) -> str:
        if not re.fullmatch(r"[A-Z]{3}", code):
            raise ValueError(
                f"{code!r} is not a currency code: give three capitals, e.g. USD or EUR"
            )
        return code

    def content_hash(self) -> str:
        """Short sha256 of the content: equal for equal scenarios, whatever file they came from."""
        # the currency only labels the numbers: runs under another code are the same runs; the
        # direct-store delivery fields at their defaults are left out, so a scenario without
        # direct delivery hashes as it did before they existed
        exclude: dict[str, Any] = {"currency": True}
        dc_only = {i: {"supplied_by"} for i, x in enumerate(self.stores) if not x.direct}
        if dc_only:
            exclude["stores"] = dc_only
        if self.synthetic is not None and not self.synthetic.direct_share:
            exclude["synthetic"] = {"direct_share"}
        return hashlib.sha256(self.model_dump_json(exclude=exclude).encode()).hexdigest()[:16]
