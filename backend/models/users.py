"""People who log in, integration keys, and login attempts (for rate limits)."""
from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from backend.models.base import json_col, ts


class User(SQLModel, table=True):
    __tablename__ = "app_user"
    username: str = Field(primary_key=True, max_length=60)
    role: str = Field(max_length=12)  # associate | manager | hq
    store: str | None = Field(default=None, foreign_key="location.code", index=True, max_length=40)
    name: str | None = Field(default=None, max_length=120)
    secret_hash: str = Field(max_length=200)  # argon2 hash of the PIN or password
    active: bool = True
    updated_at: datetime = ts()


class ApiKey(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=120)
    prefix: str = Field(index=True, max_length=12)
    key_hash: str = Field(max_length=128)  # sha256 of the whole key (keys are long random strings)
    role: str = Field(default="integration", max_length=12)  # integration | node
    locations: list[str] = json_col(list)  # node keys: the locations they may act for
    revoked: bool = False
    created_by: str | None = Field(default=None, max_length=60)
    created_at: datetime = ts()


class LoginAttempt(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, max_length=60)
    ok: bool
    at: datetime = ts(index=True)
