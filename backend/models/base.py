"""Column helpers shared by the tables."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field

from backend.clock import now
from backend.db import UTCDateTime


def ts(nullable: bool = False, index: bool = False, default_now: bool = True) -> Any:
    kw: dict[str, Any] = {"sa_type": UTCDateTime, "nullable": nullable, "index": index}
    if default_now and not nullable:
        kw["default_factory"] = now
    elif nullable:
        kw["default"] = None
    return Field(**kw)


def _new_list() -> list:
    return []


def _new_dict() -> dict:
    return {}


def json_col(default_factory=dict) -> Any:  # noqa: ANN001
    # Pydantic inspects a default factory's signature on every model built; for the builtins `list` and `dict` that
    # means parsing their text signature (tens of microseconds each), so plain functions stand in for them.
    factory = {list: _new_list, dict: _new_dict}.get(default_factory, default_factory)
    return Field(default_factory=factory, sa_column=Column(JSON, nullable=False))


def json_col_nullable() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=True))


__all__ = ["datetime", "json_col", "json_col_nullable", "ts"]
