"""Short-lived per-process copies of small, rarely changed data that hot paths read on every request (routing
weights, channel exposure rules, the caller an API key stands for, the active webhooks). The database stays the
truth: a change applies at once in the process that made it (its writer calls `forget`) and within the TTL in every
other process. Entries are kept per database URL, so tests and tools that point one process at several databases
never mix them."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from sqlmodel import Session

T = TypeVar("T")
_all: list[ProcessCache] = []


class ProcessCache(Generic[T]):
    """`load` is called on a miss; what it raises is not cached (an unknown API key stays unknown)."""

    def __init__(self, ttl_s: float, max_items: int = 10_000):
        self.ttl_s = ttl_s
        self.max_items = max_items
        self._items: dict[tuple[str, Hashable], tuple[float, T]] = {}
        self._lock = threading.Lock()
        _all.append(self)

    def peek(self, session: Session, key: Hashable) -> T | None:
        """The live entry, or None; never loads (no I/O: callers on the event loop use it)."""
        hit = self._items.get((str(session.get_bind().url), key))
        return hit[1] if hit is not None and time.monotonic() < hit[0] else None

    def get(self, session: Session, key: Hashable, load: Callable[[], T]) -> T:
        hit = self.peek(session, key)
        if hit is not None:
            return hit
        value = load()
        with self._lock:
            if len(self._items) >= self.max_items:  # many distinct keys: start over rather than grow unbounded
                self._items.clear()
            self._items[(str(session.get_bind().url), key)] = (time.monotonic() + self.ttl_s, value)
        return value

    def forget(self) -> None:
        with self._lock:
            self._items.clear()


def forget_all() -> None:
    """Drop every process cache (a test starts over on a reused database URL)."""
    for cache in _all:
        cache.forget()
