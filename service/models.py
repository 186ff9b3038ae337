"""The service's published contract: the promotion event (the scenario's own pydantic promotion
model plus a ``version``) and the batches of POS lines and stock positions, strict like a
scenario file (unknown fields refused, every problem named)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from promotwin.scenarios.schema import MAX_QUANTITY, Date, DemandChannel, Promotion

MAX_LINES = 5000  # lines per batch: a bigger batch is split by the sender
EventId = Annotated[str, Field(min_length=1, max_length=128, description="the sender's event id")]
Units = Annotated[int, Field(ge=0, le=int(MAX_QUANTITY))]
ItemId = Annotated[str, Field(min_length=1, max_length=64)]


class PromotionEvent(Promotion):
    """A scenario's promotion entry plus ``version``: a revision must raise the version."""

    version: Annotated[int, Field(ge=1, description="revision number; older ones are refused")]

    def promotion(self) -> Promotion:
        return Promotion.model_validate(self.model_dump(exclude={"version"}))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SalesLine(Strict):
    """Units sold of a SKU at a location on a day, through a channel (POS or web order)."""

    event_id: EventId
    date: Date
    location: ItemId = Field(description="store id (an ecommerce order: its store or DC)")
    sku: ItemId
    channel: DemandChannel = "walk_in"
    units: Units


class StockLine(Strict):
    """A location's units on hand of a SKU at the end of a day (or after a receipt)."""

    event_id: EventId
    date: Date
    location: ItemId
    sku: ItemId
    on_hand: Units


class SalesBatch(Strict):
    lines: Annotated[list[SalesLine], Field(min_length=1, max_length=MAX_LINES)]


class StockBatch(Strict):
    lines: Annotated[list[StockLine], Field(min_length=1, max_length=MAX_LINES)]


class Decision(Strict):
    note: Annotated[str, Field(max_length=1000)] = ""


def promotion_schema() -> dict[str, Any]:
    """The promotion event's JSON Schema (what ``twin serve schema`` prints)."""
    schema = PromotionEvent.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "PromotionEvent"
    return schema
