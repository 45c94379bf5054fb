"""The append-only event log, exceptions, routing settings, webhooks and job locks."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from backend.models.base import json_col, ts


class Event(SQLModel, table=True):
    """Every state change, in order. Never updated or deleted."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = ts()
    kind: str = Field(max_length=40, index=True)  # order.created, line.rejected, stock.fed, ...
    entity: str = Field(max_length=20)
    entity_id: str = Field(max_length=60)
    order_id: str | None = Field(default=None, max_length=40, index=True)
    location: str | None = Field(default=None, max_length=40)
    actor: str | None = Field(default=None, max_length=60)
    data: dict[str, Any] = json_col()

    __table_args__ = (Index("ix_event_entity", "entity", "entity_id"),)


class ExceptionItem(SQLModel, table=True):
    __tablename__ = "exception_item"
    id: str = Field(primary_key=True, max_length=40)
    dedupe_key: str = Field(max_length=200, unique=True)
    kind: str = Field(max_length=30, index=True)
    severity: str = Field(default="medium", max_length=10)
    order_id: str | None = Field(default=None, max_length=40)
    location: str | None = Field(default=None, max_length=40, index=True)
    sku: str | None = Field(default=None, max_length=40)
    message: str = Field(max_length=500)
    action: str = Field(max_length=300)
    status: str = Field(default="open", max_length=12, index=True)  # open | acknowledged | resolved
    raised_at: datetime = ts()
    updated_at: datetime = ts()
    resolved_by: str | None = Field(default=None, max_length=60)


class ExceptionCost(SQLModel, table=True):
    """What handling one exception of a kind costs the retailer (HQ sets it; defaults in the exceptions service)."""

    __tablename__ = "exception_cost"
    kind: str = Field(primary_key=True, max_length=30)
    cost: float = 0.0
    updated_by: str | None = Field(default=None, max_length=60)
    updated_at: datetime = ts()


class RoutingSetting(SQLModel, table=True):
    """Versioned routing weights and rules; the newest active one is in force."""

    version: int | None = Field(default=None, primary_key=True)
    weights: dict[str, Any] = json_col()
    note: str | None = Field(default=None, max_length=300)
    created_by: str | None = Field(default=None, max_length=60)
    created_at: datetime = ts()


class JobLock(SQLModel, table=True):
    """Lease for scheduled jobs, so each runs once across backend processes."""

    name: str = Field(primary_key=True, max_length=40)
    holder: str | None = Field(default=None, max_length=80)
    until: datetime | None = ts(nullable=True)
    last_run: datetime | None = ts(nullable=True)


class Webhook(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=40)
    url: str = Field(max_length=500)
    secret: str = Field(max_length=120)  # kept readable: it signs every delivery (HMAC-SHA256)
    kinds: list[str] = json_col(list)
    active: bool = True
    description: str | None = Field(default=None, max_length=200)
    created_by: str | None = Field(default=None, max_length=60)
    created_at: datetime = ts()


class WebhookDelivery(SQLModel, table=True):
    """One event for one webhook (the outbox row, written in the event's transaction). See services/webhooks.py."""

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: str = Field(foreign_key="webhook.id", index=True, max_length=40)
    event_id: int = Field(foreign_key="event.id")
    kind: str = Field(default="", max_length=40)
    order_key: str | None = Field(default=None, max_length=40)  # deliveries with one key go out in order
    status: str = Field(default="pending", max_length=12, index=True)  # pending | delivered | failed | cancelled
    attempts: int = 0
    next_at: datetime = ts()
    last_status: int | None = None  # the receiver's HTTP status at the last attempt
    last_error: str | None = Field(default=None, max_length=300)
    created_at: datetime = ts()
    delivered_at: datetime | None = ts(nullable=True)

    __table_args__ = (Index("ix_webhookdelivery_hook_key", "webhook_id", "order_key", "status"),)


class WebhookAttempt(SQLModel, table=True):
    """Every POST made for a delivery, with its outcome: the log an integrator reads."""

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhookdelivery.id", index=True)
    attempt: int
    at: datetime = ts()
    status_code: int | None = None
    ok: bool = False
    error: str | None = Field(default=None, max_length=300)
    ms: float | None = None
