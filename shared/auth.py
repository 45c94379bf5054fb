"""Log-in and the caller's identity."""
from __future__ import annotations

from pydantic import BaseModel

from shared.enums import Role


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class Me(BaseModel):
    username: str
    role: Role
    store: str | None
    name: str | None = None
    locations: list[str] | None = None
