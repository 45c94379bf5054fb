"""Delivery promises before checkout, promise accuracy for HQ, tracking links (pure pydantic)."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from shared.enums import DeliveryMethod
from shared.orders import ShipTo


class CartLine(BaseModel):
    sku: str = Field(min_length=1, max_length=40)
    quantity: int = Field(gt=0, le=10_000)


class PromiseRequest(BaseModel):
    channel: str = Field(min_length=1, max_length=40)
    ship_to: ShipTo = Field(description="Where the cart would go; pickup stores are looked for near it")
    lines: list[CartLine] = Field(min_length=1, max_length=100)
    hold: bool = Field(default=False, description="Keep the planned units for a few minutes (a soft hold)")


class PlanLine(BaseModel):
    sku: str
    quantity: int


class PlanStop(BaseModel):
    location: str
    lines: list[PlanLine]


class PickupStore(BaseModel):
    name: str
    address: str | None = None
    hours: str | None = None
    distance_km: float


class PromiseOption(BaseModel):
    delivery_method: DeliveryMethod
    available: bool
    promise_by: datetime | None = Field(default=None, description="The earliest honest promise (local time zone)")
    cost: float | None = Field(default=None, description="What fulfilling it costs the retailer (USD)")
    packages: int = 0
    plan: list[PlanStop] = Field(default_factory=list)
    reason: str | None = Field(default=None, description="Why it is not available, in plain words")
    pickup_location: str | None = None
    pickup_store: PickupStore | None = None
    held: bool = False


class PromiseResponse(BaseModel):
    quote_id: str
    expires_at: datetime
    held: bool = False
    options: list[PromiseOption]


class QuoteOut(PromiseResponse):
    status: str = Field(description="open | held | taken | expired | released")
    order_id: str | None = None


class AccuracyFigures(BaseModel):
    orders: int = Field(description="Orders whose promise falls in the period (cancelled ones included)")
    kept: int = Field(description="Handed over (carrier or customer) on or before the promise")
    late: int = Field(description="Handed over after the promise")
    overdue: int = Field(description="Not handed over yet, promise already passed")
    pending: int = Field(description="Not handed over yet, promise still ahead")
    cancelled: int
    share_kept: float | None = Field(description="kept / (kept + late + overdue); null when nothing was due")
    avg_late_hours: float | None = Field(description="Mean lateness of the late ones, in hours")


class AccuracyGroup(AccuracyFigures):
    key: str


class PromiseAccuracy(BaseModel):
    period: dict[str, datetime] = Field(description="{from, to}: promises due in [from, to)")
    group: str
    total: AccuracyFigures
    groups: list[AccuracyGroup]


class TrackingRevokeIn(BaseModel):
    reissue: bool = Field(default=True, description="Give the order a new tracking link (false: none)")


class TrackingRevokeOut(BaseModel):
    order_id: str
    tracking_url: str | None


__all__ = ["AccuracyFigures", "AccuracyGroup", "CartLine", "DeliveryMethod", "PickupStore", "PlanLine", "PlanStop",
           "PromiseAccuracy", "PromiseOption", "PromiseRequest", "PromiseResponse", "QuoteOut", "TrackingRevokeIn",
           "TrackingRevokeOut"]
