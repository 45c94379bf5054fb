"""The task rules and the sync cursor, without a database."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from backend.services.tasks import (
    Cursor,
    all_picked,
    is_pickup_task,
    new_pickup_code,
    parse_cursor,
    pickup_code_sha256,
    step_after_pick,
)


@dataclass
class A:
    state: str
    quantity: int
    picked: int = 0


def test_steps():
    assert step_after_pick(pickup=True) == "handover" and step_after_pick(pickup=False) == "pack"
    assert is_pickup_task("pickup", "S1", "S1") and not is_pickup_task("pickup", "S1", "S2")
    assert not is_pickup_task("same_day", None, "S1")
    assert all_picked([A("picked", 2, 2), A("rejected", 1), A("released", 1, 1)])
    assert not all_picked([A("picked", 2, 2), A("released", 2, 1)])
    assert not all_picked([A("rejected", 1)]), "nothing live: nothing to pack"


def test_pickup_code():
    codes = {new_pickup_code() for _ in range(200)}
    assert all(len(c) == 4 and c.isdigit() for c in codes) and len(codes) > 50
    assert pickup_code_sha256("tsk_1", "0042") == hashlib.sha256(b"tsk_1:0042").hexdigest()


def test_cursor_round_trip_and_garbage():
    for c in (Cursor("S1", 12), Cursor("S-1.a", 0, "tsk_0a1", 40, "beef01"), Cursor("S1", 3, ref="abc")):
        assert parse_cursor(c.encode()) == c
    assert Cursor("S1", 12, "tsk_9").encode() == "S1:v12.ttsk_9"
    for bad in (None, "", "v12", "S1:12", "S1:v-1", "S1:vx", "S1:v1.t", "S1:v1.rXYZ", "S1:v1;drop"):
        assert parse_cursor(bad) is None, bad
