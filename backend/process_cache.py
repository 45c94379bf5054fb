"""Short-lived per-process copies of small, rarely changed data that hot paths read on every request (routing
weights, channel exposure rules). The database stays the truth: a change applies at once in the process that made
it (its writer calls `forget`) and within the TTL in every other process. Entries are kept per database URL, so
tests and tools that point one process at several databases never mix them."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from sqlmodel import Session

T = TypeVar("T")
_all: list[ProcessCache] = []


class ProcessCache(Generic[T]):
    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self._items: dict[tuple[str, Hashable], tuple[float, T]] = {}
        self._lock = threading.Lock()
        _all.append(self)

    def get(self, session: Session, key: Hashable, load: Callable[[], T]) -> T:
        slot = (str(session.get_bind().url), key)
        hit = self._items.get(slot)
        if hit is not None and time.monotonic() < hit[0]:
            return hit[1]
        value = load()
        with self._lock:
            self._items[slot] = (time.monotonic() + self.ttl_s, value)
        return value

    def forget(self) -> None:
        with self._lock:
            self._items.clear()


def forget_all() -> None:
    """Drop every process cache (a test starts over on a reused database URL)."""
    for cache in _all:
        cache.forget()
