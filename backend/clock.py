"""The one clock the backend reads, so tests can move time."""
from __future__ import annotations

from datetime import UTC, datetime

_offset_s: float = 0.0


def now() -> datetime:
    from datetime import timedelta

    return datetime.now(UTC) + timedelta(seconds=_offset_s)


def shift(seconds: float) -> None:
    """Move the process clock (tests and simulations only)."""
    global _offset_s
    _offset_s += seconds


def reset() -> None:
    global _offset_s
    _offset_s = 0.0
