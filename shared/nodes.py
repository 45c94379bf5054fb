"""Every node, not only stores: the node API (work, shipments, rejections), API keys, manual overrides, the scarce
stock allocation policy, outbound webhooks. Pure pydantic (the store app loads this package too)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from shared.enums import RejectReason

# --------------------------------------------------------------------------------------------------- API keys
KeyRole = Literal["integration", "node"]


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    role: KeyRole = "integration"
    locations: list[str] = Field(default_factory=list, max_length=500,
                                 description="Node keys: the locations (warehouse, 3PL, supplier) they act for")

    @model_validator(mode="after")
    def _scope(self) -> ApiKeyCreate:
        if self.role == "node" and not self.locations:
            raise ValueError("a node key needs at least one location")
        if self.role == "integration" and self.locations:
            raise ValueError("integration keys act for every location; locations is only for node keys")
        return self


class ApiKeyOut(BaseModel):
    id: str
    name: str
    role: KeyRole
    locations: list[str]
    prefix: str = Field(description="The key's first characters, to tell keys apart")
    revoked: bool
    created_by: str | None
    created_at: datetime


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret key. Shown this once only: Storeline keeps only its hash")


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]


# ------------------------------------------------------------------------------------------------- node work
class WorkItem(BaseModel):
    allocation_id: str
    order_id: str
    order_number: str = Field(description="The channel's order number (external_id)")
    line_id: str
    sku: str
    quantity: int = Field(description="The allocation's units (to ship while state is released)")
    shipped: int = Field(default=0, description="Units shipped (state fulfilled)")
    state: str = Field(description="released: ship it; fulfilled: shipped; cancelled, replaced, rejected: "
                                   "do not ship (the order was cancelled or moved elsewhere)")
    delivery_method: str
    promise_by: datetime | None
    ship_to: dict[str, Any] | None
    channel: str | None = None
    name: str | None = None
    weight_kg: float | None = None
    seq: int = Field(description="Position in this location's work feed")


class WorkPage(BaseModel):
    cursor: str = Field(description="Send it back as ?cursor= to get what changed after this page")
    has_more: bool
    items: list[WorkItem]


class ShipmentLineIn(BaseModel):
    allocation_id: str | None = Field(default=None, max_length=40)
    order_id: str | None = Field(default=None, max_length=40)
    line_id: str | None = Field(default=None, max_length=40)
    quantity: int = Field(gt=0, le=100_000)

    @model_validator(mode="after")
    def _which(self) -> ShipmentLineIn:
        if not self.allocation_id and not (self.order_id and self.line_id):
            raise ValueError("name the line by allocation_id, or by order_id and line_id")
        return self


class ShipmentIn(BaseModel):
    shipment_id: str = Field(min_length=1, max_length=60, description="The partner's own id: a replay is a no-op")
    carrier: str = Field(min_length=1, max_length=40)
    tracking: list[str] = Field(default_factory=list, max_length=100)
    weight_kg: float | None = Field(default=None, ge=0, le=10_000)
    lines: list[ShipmentLineIn] = Field(min_length=1, max_length=1000)

    @field_validator("tracking")
    @classmethod
    def _tracking(cls, v: list[str]) -> list[str]:
        out = [t.strip() for t in v if t and t.strip()]
        if any(len(t) > 60 for t in out):
            raise ValueError("a tracking number has at most 60 characters")
        return out


class ShippedLine(BaseModel):
    allocation_id: str
    order_id: str
    line_id: str
    sku: str
    quantity: int
    order_status: str


class ShipmentOut(BaseModel):
    shipment_id: str
    location: str
    carrier: str
    tracking: list[str]
    packages: list[str] = Field(description="Storeline package ids")
    lines: list[ShippedLine]
    replayed: bool = Field(default=False, description="True when this shipment_id had been confirmed before")


class NodeRejectionLine(BaseModel):
    allocation_id: str = Field(max_length=40)
    quantity: int | None = Field(default=None, gt=0, le=100_000, description="Default: every unit still to ship")
    reason: RejectReason
    note: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _note(self) -> NodeRejectionLine:
        if self.reason == RejectReason.other and not (self.note or "").strip():
            raise ValueError("reason 'other' needs a note")
        return self


class NodeRejectionsIn(BaseModel):
    lines: list[NodeRejectionLine] = Field(min_length=1, max_length=1000)


class RejectedLineOut(BaseModel):
    allocation_id: str
    order_id: str
    line_id: str
    sku: str
    quantity: int
    reason: str
    line_status: str
    rerouted_to: list[str] = Field(default_factory=list, description="Where the units went instead (if anywhere)")


class NodeRejectionsOut(BaseModel):
    results: list[RejectedLineOut]


# ------------------------------------------------------------------------------------------------- overrides
OverrideAction = Literal["move", "hold", "release_hold"]
OVERRIDE_REASONS = ("customer_request", "store_capacity", "stock_doubt", "carrier_issue", "vip_customer",
                    "cost", "other")


class OverrideIn(BaseModel):
    action: OverrideAction
    location: str | None = Field(default=None, max_length=40, description="move: where the line goes")
    reason: str = Field(min_length=1, max_length=200,
                        description=f"Why; suggested codes: {', '.join(OVERRIDE_REASONS)}")
    note: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _target(self) -> OverrideIn:
        if self.action == "move" and not self.location:
            raise ValueError("a move needs the target location")
        return self


class OverrideWeek(BaseModel):
    week: str = Field(description="ISO week, e.g. 2026-W09")
    start: str = Field(description="Monday of the week (UTC), YYYY-MM-DD")
    orders: int = Field(description="Orders created that week")
    overrides: int = Field(description="Override actions that week")
    overridden_orders: int
    rate: float = Field(description="overridden_orders / orders")
    by_reason: dict[str, int]


class OverrideReasonCount(BaseModel):
    reason: str
    overrides: int
    share: float


class OverrideStats(BaseModel):
    weeks: list[OverrideWeek]
    reasons: list[OverrideReasonCount]
    orders: int
    overrides: int
    rate: float


# ---------------------------------------------------------------------------------------- allocation policy
PolicyRule = Literal["priority", "customer_tier", "promise_by", "age", "channel"]


class ChannelCap(BaseModel):
    sku: str = Field(default="*", max_length=40, description="A SKU, or * for every scarce SKU")
    channel: str = Field(min_length=1, max_length=40)
    max_units: int | None = Field(default=None, ge=0)
    max_share: float | None = Field(default=None, ge=0, le=1, description="Share of the SKU's ATP in one round")
    hard: bool = Field(default=False, description="False: over-cap lines wait behind the others; True: they wait "
                                                  "for the next round")

    @model_validator(mode="after")
    def _limit(self) -> ChannelCap:
        if self.max_units is None and self.max_share is None:
            raise ValueError("a cap needs max_units or max_share")
        return self


class AllocationPolicyIn(BaseModel):
    rules: list[PolicyRule] = Field(default_factory=lambda: ["priority", "customer_tier", "promise_by", "age"],
                                    min_length=1)
    tiers: dict[str, int] = Field(default_factory=dict, description="Customer tier -> rank, higher served first")
    channels: dict[str, int] = Field(default_factory=dict, description="Channel -> rank, higher served first")
    caps: list[ChannelCap] = Field(default_factory=list, max_length=500)
    note: str | None = Field(default=None, max_length=300)

    @field_validator("rules")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(v) != len(set(v)):
            raise ValueError("each rule may appear once")
        return v


class AllocationPolicyOut(AllocationPolicyIn):
    version: int | None = Field(description="None: the built-in default (no policy saved yet)")
    created_by: str | None = None
    created_at: datetime | None = None


# --------------------------------------------------------------------------------------------------- webhooks
WEBHOOK_KINDS = ("order.routed", "line.rejected", "order.backordered", "order.shipped", "order.collected",
                 "order.cancelled", "stock.low", "work.available")


class WebhookCreate(BaseModel):
    url: str = Field(min_length=8, max_length=500)
    secret: str | None = Field(default=None, min_length=16, max_length=120,
                               description="Signs each delivery; Storeline makes one (shown once) when absent")
    kinds: list[str] = Field(min_length=1, max_length=len(WEBHOOK_KINDS), description=", ".join(WEBHOOK_KINDS))
    description: str | None = Field(default=None, max_length=200)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip()
        if not (v.startswith("http://") or v.startswith("https://")):
            raise ValueError("url must start with http:// or https://")
        return v

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(WEBHOOK_KINDS))
        if unknown:
            raise ValueError(f"unknown event kind(s) {', '.join(unknown)}; known: {', '.join(WEBHOOK_KINDS)}")
        return sorted(set(v))


class WebhookOut(BaseModel):
    id: str
    url: str
    kinds: list[str]
    active: bool
    description: str | None
    created_by: str | None
    created_at: datetime
    pending: int = 0
    failed: int = 0


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Shown once; verify X-Storeline-Signature: sha256=HMAC(secret, body)")


class WebhookList(BaseModel):
    items: list[WebhookOut]


class DeliveryAttempt(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    ok: bool
    error: str | None
    ms: float | None


class DeliveryOut(BaseModel):
    id: int
    webhook_id: str
    event_id: int
    kind: str
    order_id: str | None
    status: str = Field(description="pending | delivered | failed | cancelled")
    attempts: int
    next_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    log: list[DeliveryAttempt] = Field(default_factory=list)


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    total: int
    offset: int
    limit: int
