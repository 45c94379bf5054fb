"""Store task rules that need no database: steps, pickup codes, the tablets' sync cursor.

Plain values in, plain values out, so the rules read in one place and test without a database.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Protocol

from shared.enums import AllocationState, DeliveryMethod, TaskStep

LIVE = frozenset({AllocationState.reserved.value, AllocationState.released.value, AllocationState.picked.value,
                  AllocationState.packed.value})


class AllocView(Protocol):
    """What the rules read of an allocation (the table row fits)."""

    state: str
    quantity: int
    picked: int


def is_pickup_task(delivery_method: str, pickup_location: str | None, location: str) -> bool:
    """Store pickup: the customer collects at this store, so the task skips packing."""
    return delivery_method == DeliveryMethod.pickup.value and pickup_location == location


def remaining(a: AllocView) -> int:
    """Units of a live allocation still to pick."""
    return max(0, a.quantity - a.picked) if a.state in LIVE else 0


def all_picked(allocs: list[AllocView]) -> bool:
    live = [a for a in allocs if a.state in LIVE]
    return bool(live) and all(remaining(a) == 0 for a in live)


def step_after_pick(pickup: bool) -> str:
    return TaskStep.handover.value if pickup else TaskStep.pack.value


def new_pickup_code() -> str:
    return f"{secrets.randbelow(10_000):04d}"


def pickup_code_sha256(task_id: str, code: str) -> str:
    """What the tablet gets instead of the code: it checks a typed code offline without learning it."""
    return hashlib.sha256(f"{task_id}:{code}".encode()).hexdigest()


# ---------------------------------------------------------------------------------------------- the pull cursor
@dataclass(frozen=True)
class Cursor:
    """Where a tablet is in its store's change stream.

    `version`/`task_id`: everything up to (version, task_id) in (version, id) order has been sent. `upper`: during a
    first full snapshot, the store version the snapshot is taken at (only live tasks up to it are sent; the rest
    comes as ordinary changes). `ref`: a short hash of the store's users and reason codes as last sent."""

    store: str
    version: int
    task_id: str = ""
    upper: int | None = None
    ref: str = ""

    def encode(self) -> str:
        s = f"{self.store}:v{self.version}"
        if self.task_id:
            s += f".t{self.task_id}"
        if self.upper is not None:
            s += f".s{self.upper}"
        if self.ref:
            s += f".r{self.ref}"
        return s


_CURSOR_RE = re.compile(r"^(?P<store>[A-Za-z0-9_.-]{1,40}):v(?P<v>\d{1,15})(?:\.t(?P<t>[A-Za-z0-9_-]{1,40}))?"
                        r"(?:\.s(?P<s>\d{1,15}))?(?:\.r(?P<r>[0-9a-f]{1,16}))?$")


def parse_cursor(raw: str | None) -> Cursor | None:
    """None for a missing or unreadable cursor (the caller answers a full snapshot)."""
    if not raw:
        return None
    m = _CURSOR_RE.match(raw.strip())
    if m is None:
        return None
    return Cursor(store=m["store"], version=int(m["v"]), task_id=m["t"] or "",
                  upper=int(m["s"]) if m["s"] is not None else None, ref=m["r"] or "")
