"""Tablet sync bookkeeping: the per-store change counter and the applied actions."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from backend.models.base import json_col, ts


class StoreVersion(SQLModel, table=True):
    """Bumped under a row lock inside every transaction that changes what a store's tablets see."""

    location: str = Field(primary_key=True, foreign_key="location.code", max_length=40)
    version: int = 0


class SyncAction(SQLModel, table=True):
    """Each pushed action id, with its first result: a replay returns it and changes nothing."""

    id: str = Field(primary_key=True, max_length=64)
    device_id: str = Field(max_length=64, index=True)
    username: str = Field(max_length=60)
    location: str | None = Field(default=None, max_length=40)
    type: str = Field(max_length=20)
    task_id: str | None = Field(default=None, max_length=40)
    status: str = Field(max_length=10)
    code: str | None = Field(default=None, max_length=40)
    message: str | None = Field(default=None, max_length=300)
    payload: dict[str, Any] = json_col()
    device_at: datetime | None = ts(nullable=True)
    applied_at: datetime = ts()
