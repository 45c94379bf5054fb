"""Locations, products, barcodes, channels and their stock exposure rules."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from backend.models.base import ts


class Location(SQLModel, table=True):
    code: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=120)
    type: str = Field(max_length=12, index=True)  # store | warehouse | 3pl | supplier
    lat: float
    lon: float
    timezone: str = Field(default="America/New_York", max_length=64)
    ships: bool = True
    pickup: bool = False
    same_day_radius_km: float = 0.0
    same_day_cutoff: str = Field(default="16:00", max_length=5)
    daily_capacity: int = 200
    active: bool = Field(default=True, index=True)
    address: str | None = Field(default=None, max_length=300)
    hours: str | None = Field(default=None, max_length=200)
    safety_stock: int = 0
    holdback: int = 0
    lead_days: int = 0
    updated_at: datetime = ts()


class Product(SQLModel, table=True):
    sku: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    weight_kg: float = 0.5
    sku_class: str = Field(default="general", max_length=40)
    active: bool = True
    updated_at: datetime = ts()


class Barcode(SQLModel, table=True):
    barcode: str = Field(primary_key=True, max_length=40)
    sku: str = Field(foreign_key="product.sku", index=True, max_length=40)


class Channel(SQLModel, table=True):
    code: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=120)
    active: bool = True


class ChannelRule(SQLModel, table=True):
    """How much of a location's (or a location type's) ATP a channel may sell. Most specific rule wins."""

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(foreign_key="channel.code", index=True, max_length=40)
    location_type: str | None = Field(default=None, max_length=12)
    location: str | None = Field(default=None, foreign_key="location.code", max_length=40)
    exposure_pct: float = 100.0
    updated_at: datetime = ts()
