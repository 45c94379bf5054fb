"""How scarce stock is shared among waiting orders: a versioned policy, the newest row in force."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from backend.models.base import json_col, ts


class AllocationPolicy(SQLModel, table=True):
    """When stock arrives or is freed, waiting lines are served in the order these rules give.

    `rules`: sort keys, most important first, from priority | customer_tier | promise_by | age | channel.
    `tiers`: customer tier -> rank (higher first). `channels`: channel -> rank (higher first).
    `caps`: [{"sku": "SKU-1" | "*", "channel": "marketplace", "max_units": 5 | None, "max_share": 0.25 | None,
    "hard": false}]: how much of the SKU's available stock one channel may take in one round.
    See backend/services/allocation_policy.py."""

    __tablename__ = "allocation_policy"
    version: int | None = Field(default=None, primary_key=True)
    rules: list[str] = json_col(list)
    tiers: dict[str, Any] = json_col()
    channels: dict[str, Any] = json_col()
    caps: list[dict[str, Any]] = json_col(list)
    note: str | None = Field(default=None, max_length=300)
    created_by: str | None = Field(default=None, max_length=60)
    created_at: datetime = ts()
