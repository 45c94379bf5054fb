"""Store work: tasks (one per order and location), rejections, packages."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from backend.models.base import json_col, ts


class Task(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=40)
    order_id: str = Field(foreign_key="orders.id", index=True, max_length=40)
    location: str = Field(foreign_key="location.code", max_length=40)
    step: str = Field(default="pick", max_length=12)  # pick | pack | handover | done
    outcome: str | None = Field(default=None, max_length=20)  # shipped | collected | cancelled | rerouted
    assignee: str | None = Field(default=None, max_length=60)
    pickup_code: str | None = Field(default=None, max_length=12)
    priority: int = 0  # a manager's nudge: higher first in the queue
    version: int = 0  # the store's sync version at its last change
    deleted: bool = False  # tombstone: the tablet drops it
    created_at: datetime = ts()
    updated_at: datetime = ts()
    picked_at: datetime | None = ts(nullable=True)
    packed_at: datetime | None = ts(nullable=True)
    handed_over_at: datetime | None = ts(nullable=True)

    __table_args__ = (
        Index("ix_task_loc_version", "location", "version"),
        Index("ix_task_loc_step", "location", "step"),
    )


class Rejection(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=40)
    allocation_id: str = Field(foreign_key="allocation.id", max_length=40)
    order_id: str = Field(index=True, max_length=40)
    line_id: str = Field(max_length=40)
    location: str = Field(foreign_key="location.code", max_length=40)
    sku: str = Field(max_length=40)
    quantity: int
    reason: str = Field(max_length=20)
    note: str | None = Field(default=None, max_length=500)
    actor: str | None = Field(default=None, max_length=60)
    at: datetime = ts()

    __table_args__ = (Index("ix_rejection_loc_at", "location", "at"),)


class Manifest(SQLModel, table=True):
    """The packages a store hands to one carrier on one (store-local) day."""

    id: str = Field(primary_key=True, max_length=40)
    location: str = Field(foreign_key="location.code", max_length=40)
    carrier: str = Field(max_length=40)
    day: str = Field(max_length=10)  # YYYY-MM-DD in the store's time zone
    packages: int = 0
    weight_kg: float = 0.0
    created_at: datetime = ts()
    updated_at: datetime = ts()

    __table_args__ = (UniqueConstraint("location", "carrier", "day", name="uq_manifest_loc_carrier_day"),)


class Package(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=40)
    # None for a node's shipment (warehouses, 3PLs and suppliers have no store task)
    task_id: str | None = Field(default=None, foreign_key="task.id", index=True, max_length=40)
    order_id: str = Field(index=True, max_length=40)
    location: str = Field(max_length=40)
    box: str | None = Field(default=None, max_length=40)
    weight_kg: float | None = None
    carrier: str | None = Field(default=None, max_length=40)
    tracking: str | None = Field(default=None, max_length=60)
    shipment_ref: str | None = Field(default=None, max_length=80)  # a partner's shipment id (node API)
    manifest_id: str | None = Field(default=None, foreign_key="manifest.id", index=True, max_length=40)
    lines: list[dict] = json_col(list)
    created_at: datetime = ts()
    shipped_at: datetime | None = ts(nullable=True)
