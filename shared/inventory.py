"""Stock feeds, availability and counts."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.enums import CountStatus
from shared.errors import RejectedRow


class LevelsFeed(BaseModel):
    mode: Literal["snapshot", "delta"] = "snapshot"
    rows: list[dict[str, Any]] = Field(
        max_length=500_000, description="{location, sku, on_hand} or {location, sku, delta}")


class FeedResult(BaseModel):
    applied: int
    rejected: list[RejectedRow] = Field(default_factory=list)


class LocationAvailability(BaseModel):
    location: str
    atp: int
    distance_km: float | None = None
    type: str | None = None


class Availability(BaseModel):
    sku: str
    channel: str
    total_atp: int
    locations: list[LocationAvailability]


class CountIn(BaseModel):
    sku: str = Field(min_length=1, max_length=40)
    counted: int = Field(ge=0, le=1_000_000)


class CountOut(BaseModel):
    id: str
    location: str
    sku: str
    expected: int
    counted: int
    variance: int
    status: CountStatus
