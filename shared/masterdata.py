"""Master data rows: locations, products, users, channels (upserted in bulk by their natural key)."""
from __future__ import annotations

import re
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, field_validator, model_validator

from shared.enums import LocationType, Role
from shared.errors import RejectedRow

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
HHMM_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _code(v: str, what: str) -> str:
    v = (v or "").strip()
    if not CODE_RE.match(v):
        raise ValueError(f"{what} must be 1-40 letters, digits, '-', '_' or '.'")
    return v


class LocationIn(BaseModel):
    code: str
    name: str = Field(min_length=1, max_length=120)
    type: LocationType = LocationType.store
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    timezone: str = "America/New_York"
    ships: bool = True
    pickup: bool = False
    same_day_radius_km: float = Field(default=0, ge=0, le=500)
    same_day_cutoff: str = "16:00"
    daily_capacity: int = Field(default=200, ge=0, le=1_000_000)
    active: bool = True
    address: str | None = Field(default=None, max_length=300)
    hours: str | None = Field(default=None, max_length=200)
    safety_stock: int = Field(default=0, ge=0, description="Default safety stock for this location's stock rows")
    holdback: int = Field(default=0, ge=0, description="Default units kept back for walk-in customers")
    lead_days: int = Field(default=0, ge=0, le=60, description="Extra days before it ships (drop-ship suppliers)")

    @field_validator("code")
    @classmethod
    def _c(cls, v: str) -> str:
        return _code(v, "code")

    @field_validator("same_day_cutoff")
    @classmethod
    def _cutoff(cls, v: str) -> str:
        if not HHMM_RE.match(v):
            raise ValueError("same_day_cutoff must be HH:MM (24-hour)")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v


class LocationOut(LocationIn):
    pass


class ProductIn(BaseModel):
    sku: str
    name: str = Field(min_length=1, max_length=200)
    barcodes: list[str] = Field(default_factory=list, max_length=20)
    weight_kg: float = Field(default=0.5, ge=0, le=2000)
    sku_class: str = Field(default="general", max_length=40, description="Class used for store reliability scores")
    active: bool = True

    @field_validator("sku")
    @classmethod
    def _s(cls, v: str) -> str:
        return _code(v, "sku")

    @field_validator("barcodes")
    @classmethod
    def _b(cls, v: list[str]) -> list[str]:
        out = []
        for b in v:
            b = b.strip()
            if not re.match(r"^[0-9A-Za-z-]{4,40}$", b):
                raise ValueError(f"barcode {b!r} must be 4-40 letters or digits")
            out.append(b)
        return out


class ProductOut(ProductIn):
    pass


class UserIn(BaseModel):
    username: str
    role: Role
    store: str | None = None
    pin: str | None = None
    password: str | None = None
    name: str | None = Field(default=None, max_length=120)
    active: bool = True

    @field_validator("username")
    @classmethod
    def _u(cls, v: str) -> str:
        v = v.strip().lower()
        if not re.match(r"^[a-z0-9][a-z0-9_.-]{1,59}$", v):
            raise ValueError("username must be 2-60 lower-case letters, digits, '-', '_' or '.'")
        return v

    @model_validator(mode="after")
    def _creds(self) -> UserIn:
        if self.role in (Role.integration, Role.node):
            raise ValueError("integrations use API keys, not users")
        if self.role in (Role.associate, Role.manager):
            if not self.store:
                raise ValueError(f"a {self.role.value} needs a store")
            if self.pin is not None and not re.match(r"^\d{4,8}$", self.pin):
                raise ValueError("pin must be 4 to 8 digits")
        if self.role == Role.hq:
            if self.pin is not None:
                raise ValueError("HQ users log in with a password, not a PIN")
            if self.password is not None and len(self.password) < 6:
                raise ValueError("password must have at least 6 characters")
        return self


class UserOut(BaseModel):
    username: str
    role: Role
    store: str | None
    name: str | None
    active: bool


class BulkResult(BaseModel):
    upserted: int
    rejected: list[RejectedRow] = Field(default_factory=list)


class LocationsUpsert(BaseModel):
    locations: list[dict[str, Any]] = Field(max_length=20_000, description="Rows shaped like LocationIn")


class ProductsUpsert(BaseModel):
    products: list[dict[str, Any]] = Field(max_length=100_000, description="Rows shaped like ProductIn")


class UsersUpsert(BaseModel):
    users: list[dict[str, Any]] = Field(max_length=20_000, description="Rows shaped like UserIn")


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    offset: int
    limit: int
