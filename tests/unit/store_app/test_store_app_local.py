"""The tablet's local store: taps applied locally + outbox in one transaction, rebase on pull, conflicts,
offline sign-in, and the sync loop's exactly-once behaviour against a fake server (no network, no Flet UI)."""

from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest

from store_app.local.cache import Cache
from store_app.local.db import LocalDB
from store_app.local.outbox import Outbox, apply_action, conflict_text
from store_app.local.pin import _pbkdf2_sha256, check_pin, hash_pin, pickup_code_matches
from store_app.state import AppState, LoginError, Session
from store_app.sync_loop import SyncLoop
from store_app.transport import Offline, Response, Transport


def task(tid="T1", method="standard", lines=((1, 2), (2, 1)), step="pick"):
    return {"id": tid, "order_id": "O" + tid, "order_number": "W-" + tid, "step": step, "delivery_method": method,
            "promise_by": "2030-01-01T12:00:00+00:00", "assignee": None,
            "lines": [{"line_id": str(i), "sku": f"SKU-{i}", "name": f"Item {i}", "quantity": q, "picked": 0,
                       "rejected": 0, "barcodes": [f"{i}" * 8]} for i, q in lines]}


@pytest.fixture
def db():
    d = LocalDB(":memory:")
    yield d
    d.close()


@pytest.fixture
def stores(db):
    out = Outbox(db)
    cache = Cache(db, out)
    cache.apply_changes([{"entity": "task", "op": "upsert", "id": "T1", "data": task()}])
    return out, cache


# ------------------------------------------------------------------ local effects
def test_pick_applies_locally_and_appends_to_outbox_in_one_transaction(db, stores):
    out, cache = stores
    commits = []
    db.on_commit = lambda: commits.append(1)
    a = out.record("pick", "ana", task_id="T1", line_id="1", quantity=1, barcode="11111111")
    assert len(commits) == 1
    assert cache.task("T1")["lines"][0]["picked"] == 1
    assert cache.task("T1")["assignee"] == "ana"
    assert out.batch("ana") == [a]
    assert out.waiting() == 1


def test_failed_tap_leaves_nothing_behind(db, stores, monkeypatch):
    out, cache = stores

    def boom(task_id):
        raise RuntimeError("disk full")

    monkeypatch.setattr(out, "rebase", boom)
    with pytest.raises(RuntimeError):
        out.record("pick", "ana", task_id="T1", line_id="1", quantity=1)
    assert out.waiting() == 0
    assert cache.task("T1")["lines"][0]["picked"] == 0


def test_steps_follow_the_lines():
    t = task(lines=((1, 1),))
    t = apply_action(t, {"type": "pick", "line_id": "1", "quantity": 1, "username": "ana"})
    assert t["step"] == "pack"
    t = apply_action(t, {"type": "pack", "packages": 1, "username": "ana"})
    assert t["step"] == "handover"
    t = apply_action(t, {"type": "handover_carrier", "carrier": "UPS", "username": "ana"})
    assert t["step"] == "done"
    p = apply_action(task(method="pickup", lines=((1, 1),)), {"type": "pick", "line_id": "1", "username": "a"})
    assert p["step"] == "handover"  # pickups skip packing
    r = apply_action(task(lines=((1, 2),)), {"type": "reject", "line_id": "1", "quantity": 5, "reason": "damaged",
                                             "username": "a"})
    assert r["lines"][0]["rejected"] == 2 and r["step"] == "done"  # clamped; all given back → leaves queue


def test_rejected_order_leaves_the_open_queue(db, stores):
    out, cache = stores
    out.record("reject", "ana", task_id="T1", line_id="1", quantity=2, reason="not_found")
    out.record("reject", "ana", task_id="T1", line_id="2", quantity=1, reason="damaged")
    assert cache.open_tasks() == []


# ------------------------------------------------------------------ rebase on pull
def test_pull_rebases_pending_actions_on_the_server_copy(db, stores):
    out, cache = stores
    out.record("pick", "ana", task_id="T1", line_id="1", quantity=1)
    server = task()
    server["lines"][1]["picked"] = 1  # someone else's work arrived meanwhile
    cache.apply_changes([{"entity": "task", "op": "upsert", "id": "T1", "data": server}])
    view = cache.task("T1")
    assert [ln["picked"] for ln in view["lines"]] == [1, 1]


def test_applied_actions_stay_until_a_pull_confirms_them(db, stores):
    out, cache = stores
    a = out.record("pick", "ana", task_id="T1", line_id="1", quantity=1)
    out.store_results([{"id": a["id"], "status": "applied"}])
    assert cache.task("T1")["lines"][0]["picked"] == 1  # no flicker between push and pull
    server = task()
    server["lines"][0]["picked"] = 1
    cache.apply_changes([{"entity": "task", "op": "upsert", "id": "T1", "data": server}])
    out.confirm_applied("9999")
    assert cache.task("T1")["lines"][0]["picked"] == 1  # counted once, not twice
    assert out.waiting() == 0


def test_conflict_is_kept_and_shown_in_plain_words(db, stores):
    out, cache = stores
    a = out.record("pick", "ana", task_id="T1", line_id="1", quantity=1)
    cache.apply_changes([{"entity": "task", "op": "delete", "id": "T1", "data": {}}])
    assert [t["id"] for t in cache.attention()] == ["T1"]  # withdrawn with work still waiting
    out.store_results([{"id": a["id"], "status": "rejected", "code": "order_cancelled", "message": "x"}])
    attention = cache.attention()
    assert attention[0]["conflicts"][0]["body"]["line_id"] == "1"
    assert "cancelled" in conflict_text("order_cancelled", None)
    assert cache.open_tasks() == []
    out.dismiss("T1")
    assert cache.attention() == []
    assert db.one("SELECT COUNT(*) n FROM outbox")["n"] == 1  # nothing the associate did is deleted


def test_products_barcodes_reasons_and_cursor(db, stores):
    out, cache = stores
    cache.apply_changes([
        {"entity": "product", "op": "upsert", "id": "SKU-9", "data": {"sku": "SKU-9", "name": "Cap",
                                                                      "barcodes": ["999"]}},
        {"entity": "reason_code", "op": "upsert", "id": "other", "data": {"code": "other", "label": "Other",
                                                                          "needs_note": True}},
    ], cursor=("cursor:S1", "42"))
    assert cache.product_by_barcode("999")["name"] == "Cap"
    assert cache.reason_codes() == [{"code": "other", "label": "Other", "needs_note": True}]
    assert db.get_meta("cursor:S1") == "42"
    assert cache.find_task("W-T1")["id"] == "T1"


# ------------------------------------------------------------------ PINs and pickup codes
def test_pin_hash_is_pbkdf2_in_both_runtimes():
    assert _pbkdf2_sha256(b"4821", b"salt", 1000) == hashlib.pbkdf2_hmac("sha256", b"4821", b"salt", 1000)
    h, salt, it = hash_pin("4821", iterations=1000)
    assert check_pin("4821", h, salt, it) and not check_pin("4822", h, salt, it)


def test_pickup_code_offline_check():
    expected = hashlib.sha256(b"T9:4821").hexdigest()
    assert pickup_code_matches("T9", "4821", expected)
    assert not pickup_code_matches("T9", "4822", expected)
    assert not pickup_code_matches("T9", "4821", None)


# ------------------------------------------------------------------ sync loop against a fake server
class FakeServer(Transport):
    """Applies each action id once, like the contract says; can drop responses or be unreachable."""

    def __init__(self) -> None:
        self.online = True
        self.lose_next_response = False
        self.applied: dict[str, int] = {}
        self.results: dict[str, dict] = {}
        self.version = 1
        self.tasks = {"T1": task()}
        self.pins = {"ana": "1111"}

    async def request(self, method, path, *, token=None, json_body=None, form=None, params=None, timeout=None):
        if not self.online:
            raise Offline("connection refused")
        if path.endswith("/auth/token"):
            if self.pins.get(form["username"]) != form["password"]:
                return Response(401, {"code": "bad_credentials"})
            return Response(200, {"access_token": "tok", "token_type": "bearer", "expires_in": 3600})
        if path.endswith("/me"):
            return Response(200, {"username": "ana", "role": "associate", "store": "S1", "name": "Ana"})
        if path.endswith("/sync/push"):
            out = []
            for a in json_body["actions"]:
                if a["id"] not in self.results:
                    self.applied[a["id"]] = self.applied.get(a["id"], 0) + 1
                    line = self.tasks["T1"]["lines"][int(a["line_id"]) - 1]
                    line["picked"] += a["quantity"]
                    self.version += 1
                    self.results[a["id"]] = {"id": a["id"], "status": "applied", "code": None, "message": None}
                out.append(self.results[a["id"]])
            if self.lose_next_response:
                self.lose_next_response = False
                raise Offline("response lost")
            return Response(200, {"results": out, "cursor": str(self.version)})
        if path.endswith("/sync/pull"):
            changes = [{"entity": "task", "op": "upsert", "id": k, "data": v} for k, v in self.tasks.items()]
            return Response(200, {"cursor": str(self.version), "has_more": False, "changes": changes})
        return Response(404, {"code": "not_found"})


def run(coro):
    """Run on a fresh thread: pytest-playwright's session fixture keeps an event loop running on the main one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_sync_applies_each_action_exactly_once_even_when_a_response_is_lost(db):
    server = FakeServer()
    state = AppState(db, server)
    loop = SyncLoop(state)
    run(state.login("ana", "1111"))
    assert run(loop.sync_once())
    state.act("pick", task_id="T1", line_id="1", quantity=1)
    server.lose_next_response = True
    assert not run(loop.sync_once())  # applied on the server, but the tablet never heard back
    assert state.sync.online is False and state.waiting == 1
    assert run(loop.sync_once())  # retried with the same id: the server returns its first result
    assert server.applied and set(server.applied.values()) == {1}
    assert state.waiting == 0
    assert state.cache.task("T1")["lines"][0]["picked"] == 1


def test_offline_sign_in_needs_an_earlier_online_sign_in(db):
    server = FakeServer()
    state = AppState(db, server)
    server.online = False
    with pytest.raises(LoginError, match="not signed in on this tablet before"):
        run(state.login("ana", "1111"))
    server.online = True
    run(state.login("ana", "1111"))
    server.online = False
    with pytest.raises(LoginError, match="Wrong"):
        run(state.login("ana", "0000"))
    s = run(state.login("ana", "1111"))
    assert isinstance(s, Session) and s.offline_login and s.store == "S1"
    assert state.last_user == "ana"


def test_sync_backs_off_while_offline_and_keeps_work(db):
    server = FakeServer()
    state = AppState(db, server)
    loop = SyncLoop(state)
    run(state.login("ana", "1111"))
    server.online = False
    state.act("pick", task_id="T1", line_id="2", quantity=1)
    for _ in range(3):
        assert not run(loop.sync_once())
    assert loop.failures == 3 and state.waiting == 1
    server.online = True
    assert run(loop.sync_once())
    assert loop.failures == 0 and state.waiting == 0 and server.tasks["T1"]["lines"][1]["picked"] == 1


def test_taps_do_not_cut_a_backoff_short_but_sync_now_does(db):
    state = AppState(db, FakeServer())
    loop = SyncLoop(state)
    loop._wake = asyncio.Event()
    loop.failures = 2
    state.sync_kick()
    assert not loop._wake.is_set()
    state.sync_force()
    assert loop._wake.is_set()
