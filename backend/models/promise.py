"""Delivery quotes: the options answered for a cart, and the units a soft hold keeps for it."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from backend.models.base import json_col, json_col_nullable, ts


class Quote(SQLModel, table=True):
    """One answer of `POST /promise`.

    ``state``: open (no hold) | held (``holds`` are reserved) | taken (an order used it) | expired (the hold ran
    out and its units went back) | released (the hold was given back early: the order took another cart/method).
    ``options``: the options as answered, each with its plan by cart line (``assign``) so an order can take it.
    ``holds``: ``[{"location", "sku", "quantity"}]`` reserved while ``state`` is held.
    """

    id: str = Field(primary_key=True, max_length=40)
    channel: str = Field(max_length=40)
    state: str = Field(default="open", max_length=10)
    ship_to: dict[str, Any] | None = json_col_nullable()
    lines: list[dict] = json_col(list)
    options: list[dict] = json_col(list)
    holds: list[dict] = json_col(list)
    order_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = ts()
    expires_at: datetime = ts()

    __table_args__ = (Index("ix_quote_state_expires", "state", "expires_at"),)
