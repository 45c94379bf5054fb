"""Orders as integrators send and read them."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from shared.enums import AllocationState, DeliveryMethod, LineStatus, OrderStatus


class ShipTo(BaseModel):
    zip: str | None = Field(default=None, max_length=10)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    name: str | None = Field(default=None, max_length=120)
    address: str | None = Field(default=None, max_length=300)

    @model_validator(mode="after")
    def _somewhere(self) -> ShipTo:
        if self.zip is None and (self.lat is None or self.lon is None):
            raise ValueError("ship_to needs a zip or both lat and lon")
        return self


class LineIn(BaseModel):
    line_id: str = Field(min_length=1, max_length=40)
    sku: str = Field(min_length=1, max_length=40)
    quantity: int = Field(gt=0, le=10_000)


class OrderCreate(BaseModel):
    channel: str = Field(min_length=1, max_length=40)
    external_id: str = Field(min_length=1, max_length=80)
    delivery_method: DeliveryMethod
    pickup_location: str | None = None
    priority: int = Field(default=0, ge=0, le=10)
    promise_by: datetime | None = None
    ship_to: ShipTo | None = None
    customer_tier: str | None = Field(default=None, max_length=20)
    quote_id: str | None = None
    lines: list[LineIn] = Field(min_length=1, max_length=200)

    @field_validator("promise_by")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("promise_by needs a time zone, e.g. 2026-11-25T18:00:00Z")
        return v

    @model_validator(mode="after")
    def _shape(self) -> OrderCreate:
        ids = [ln.line_id for ln in self.lines]
        if len(ids) != len(set(ids)):
            raise ValueError("line_id values must be unique within the order")
        if self.delivery_method == DeliveryMethod.pickup:
            if not self.pickup_location:
                raise ValueError("a pickup order needs pickup_location")
        else:
            if self.pickup_location:
                raise ValueError("pickup_location is only for delivery_method pickup")
            if self.ship_to is None:
                raise ValueError(f"a {self.delivery_method.value} order needs ship_to")
        return self


class AllocationOut(BaseModel):
    id: str
    location: str
    quantity: int
    state: AllocationState
    created_at: datetime | None = None


class LineOut(BaseModel):
    line_id: str
    sku: str
    quantity: int
    status: LineStatus
    allocations: list[AllocationOut]
    backorder_reason: str | None = None


class HistoryEntry(BaseModel):
    at: datetime
    kind: str
    actor: str | None
    data: dict[str, Any]


class OrderOut(BaseModel):
    id: str
    channel: str
    external_id: str
    status: OrderStatus
    delivery_method: DeliveryMethod
    pickup_location: str | None
    priority: int
    promise_by: datetime | None
    ship_to: dict[str, Any] | None
    created_at: datetime
    lines: list[LineOut]
    explanation: dict[str, Any] | None
    history: list[HistoryEntry]
    tracking_url: str | None = None


class CancelIn(BaseModel):
    reason: str = Field(default="customer_request", max_length=200)
