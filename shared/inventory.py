"""Stock feeds, positions, availability, counts and channel exposure rules."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from shared.enums import CountStatus, LocationType
from shared.errors import RejectedRow

FeedMode = Literal["snapshot", "delta"]


class LevelsFeed(BaseModel):
    mode: FeedMode = "snapshot"
    rows: list[dict[str, Any]] = Field(
        max_length=500_000,
        description="{location, sku, on_hand} (snapshot) or {location, sku, delta} (delta); optional safety_stock "
                    "and holdback per row")


class FeedResult(BaseModel):
    applied: int
    rejected: list[RejectedRow] = Field(default_factory=list)
    changed: int = Field(default=0, description="Positions whose on hand, safety stock, holdback or block changed")
    feed_id: str | None = Field(default=None, description="Reference of the stock movements this feed wrote")


class PositionOut(BaseModel):
    location: str
    sku: str
    on_hand: int
    reserved: int
    safety_stock: int = Field(description="Effective: the row's own value or the location's default")
    holdback: int = Field(description="Effective: the row's own value or the location's default")
    blocked: bool
    atp: int = Field(description="Available to promise before channel exposure rules")
    updated_at: datetime | None = None


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
    counted_by: str | None = None
    decided_by: str | None = None
    at: datetime | None = None


class ChannelRuleIn(BaseModel):
    """Share of ATP a channel may sell: for one location, for a location type, or (neither) for every location."""

    location: str | None = Field(default=None, max_length=40)
    location_type: LocationType | None = None
    exposure_pct: float = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _one_target(self) -> ChannelRuleIn:
        if self.location and self.location_type:
            raise ValueError("a rule names a location or a location_type, not both")
        return self


class ChannelIn(BaseModel):
    code: str = Field(min_length=1, max_length=40)
    name: str | None = Field(default=None, max_length=120)
    active: bool = True
    rules: list[ChannelRuleIn] | None = Field(
        default=None, max_length=20_000, description="Replaces the channel's rules; omit to keep them, [] to clear")

    @field_validator("code")
    @classmethod
    def _c(cls, v: str) -> str:
        from shared.masterdata import CODE_RE

        v = v.strip()
        if not CODE_RE.match(v):
            raise ValueError("code must be 1-40 letters, digits, '-', '_' or '.'")
        return v

    @model_validator(mode="after")
    def _unique_targets(self) -> ChannelIn:
        seen: set[tuple[str | None, str | None]] = set()
        for r in self.rules or []:
            key = (r.location, r.location_type.value if r.location_type else None)
            if key in seen:
                raise ValueError(f"two rules for the same target {key[0] or key[1] or 'every location'}")
            seen.add(key)
        return self


class ChannelOut(BaseModel):
    code: str
    name: str
    active: bool
    rules: list[ChannelRuleIn]


class ChannelsUpsert(BaseModel):
    channels: list[dict[str, Any]] = Field(max_length=1000, description="Rows shaped like ChannelIn")


class ChannelList(BaseModel):
    channels: list[ChannelOut]
