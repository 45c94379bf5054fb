"""Error bodies: every 4xx answers `{"code", "message", "details"}`."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Problem(BaseModel):
    code: str = Field(description="Machine-readable error code, e.g. unknown_sku")
    message: str = Field(description="A sentence a person can act on")
    details: dict[str, Any] = Field(default_factory=dict)


class RejectedRow(BaseModel):
    """A bulk row that was not applied, and why."""

    row: int = Field(description="1-based position of the row in the request (for CSV: the data line number)")
    code: str
    message: str
    key: str | None = Field(default=None, description="The row's code, SKU or user name when it had one")
