"""Stock positions, their movements, counts and store reliability."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from backend.models.base import json_col, ts


class InventoryPosition(SQLModel, table=True):
    """One SKU at one location. ATP = on_hand - reserved - safety - holdback, never below 0, 0 while blocked."""

    __tablename__ = "inventory"
    location: str = Field(primary_key=True, foreign_key="location.code", max_length=40)
    sku: str = Field(primary_key=True, foreign_key="product.sku", max_length=40, index=True)
    on_hand: int = 0
    reserved: int = 0
    safety_stock: int | None = None  # None: the location's default
    holdback: int | None = None  # None: the location's default
    blocked: bool = False  # a "not found" rejection: ATP 0 until the next count or feed
    updated_at: datetime = ts()


class StockMovement(SQLModel, table=True):
    """Why a position changed: an order reservation, a rejection, a count, a feed."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = ts()
    location: str = Field(max_length=40)
    sku: str = Field(max_length=40)
    on_hand_delta: int = 0
    reserved_delta: int = 0
    cause: str = Field(max_length=20)  # reserve | release | fulfil | reject | count | feed | cancel
    ref: str | None = Field(default=None, max_length=60)
    actor: str | None = Field(default=None, max_length=60)

    __table_args__ = (Index("ix_stockmovement_loc_sku_at", "location", "sku", "at"),)


class StockCount(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=40)
    location: str = Field(foreign_key="location.code", index=True, max_length=40)
    sku: str = Field(foreign_key="product.sku", max_length=40)
    expected: int
    counted: int
    variance: int
    status: str = Field(max_length=20)  # applied | pending_approval | approved | declined
    counted_by: str | None = Field(default=None, max_length=60)
    decided_by: str | None = Field(default=None, max_length=60)
    at: datetime = ts(index=True)
    decided_at: datetime | None = ts(nullable=True)


class StoreReliability(SQLModel, table=True):
    """Beta-smoothed share of lines a location fulfils without a stock problem, per SKU class."""

    location: str = Field(primary_key=True, foreign_key="location.code", max_length=40)
    sku_class: str = Field(primary_key=True, max_length=40)
    good: float = 0.0
    bad: float = 0.0
    updated_at: datetime = ts()
    detail: dict[str, Any] = json_col()


class StockAlert(SQLModel, table=True):
    """A SKU whose chain-wide ATP is at or under the low-stock threshold; the row goes when it recovers, so each
    fall below the threshold raises one `stock.low` event."""

    __tablename__ = "stock_alert"
    sku: str = Field(primary_key=True, max_length=40)
    atp: int = 0
    low_since: datetime = ts()
