"""Orders, their lines and the allocations of lines to locations."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.models.base import json_col, json_col_nullable, ts


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    id: str = Field(primary_key=True, max_length=40)
    channel: str = Field(max_length=40)
    external_id: str = Field(max_length=80)
    status: str = Field(default="created", max_length=12, index=True)
    delivery_method: str = Field(max_length=12)
    pickup_location: str | None = Field(default=None, foreign_key="location.code", max_length=40)
    priority: int = 0
    customer_tier: str | None = Field(default=None, max_length=20)
    promise_by: datetime | None = ts(nullable=True)
    ship_to: dict[str, Any] | None = json_col_nullable()
    ship_lat: float | None = None
    ship_lon: float | None = None
    explanation: dict[str, Any] | None = json_col_nullable()
    tracking_token: str | None = Field(default=None, max_length=64, index=True)
    override: bool = False  # a person fixed its routing: the batch leaves it alone
    created_at: datetime = ts(index=True)
    updated_at: datetime = ts()
    closed_at: datetime | None = ts(nullable=True)

    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_order_channel_external"),)


class OrderLine(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=40)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=40)
    line_id: str = Field(max_length=40)
    sku: str = Field(foreign_key="product.sku", max_length=40)
    quantity: int
    status: str = Field(default="created", max_length=12)
    backorder_reason: str | None = Field(default=None, max_length=300)
    excluded_locations: list[str] = json_col(list)  # locations that gave this line back

    __table_args__ = (
        UniqueConstraint("order_id", "line_id", name="uq_line_order_line"),
        Index("ix_orderline_status_sku", "status", "sku"),
    )


class Allocation(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=40)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=40)
    line_pk: str = Field(foreign_key="orderline.id", index=True, max_length=40)
    location: str = Field(foreign_key="location.code", max_length=40)
    sku: str = Field(max_length=40)
    quantity: int
    state: str = Field(default="reserved", max_length=12)
    task_id: str | None = Field(default=None, foreign_key="task.id", index=True, max_length=40)
    picked: int = 0
    rejected: int = 0
    cost: float | None = None
    decided_by: str | None = Field(default=None, max_length=40)  # realtime | batch | reroute | override | policy
    created_at: datetime = ts()
    released_at: datetime | None = ts(nullable=True)
    picked_at: datetime | None = ts(nullable=True)
    packed_at: datetime | None = ts(nullable=True)
    fulfilled_at: datetime | None = ts(nullable=True)
    ended_at: datetime | None = ts(nullable=True)
    end_reason: str | None = Field(default=None, max_length=200)
    held: bool = False  # a person put the line on hold: routing does not release it (backend/services/overrides.py)
    node_seq: int | None = None  # non-store locations: their work feed's cursor position (backend/services/nodes.py)

    __table_args__ = (
        Index("ix_allocation_loc_state", "location", "state"),
        # HQ figures select each step's work by when it happened (backend/services/hq.py).
        Index("ix_allocation_released_at", "released_at"),
        Index("ix_allocation_picked_at", "picked_at"),
        Index("ix_allocation_packed_at", "packed_at"),
        Index("ix_allocation_fulfilled_at", "fulfilled_at"),
        Index("ix_allocation_loc_node_seq", "location", "node_seq"),
    )
