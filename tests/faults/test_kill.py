"""A backend process SIGKILLed in the middle of work leaves nothing half-applied, and the next run completes."""
from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from tests import retailer
from tests.conftest import HQ_PASSWORD
from tests.faults.conftest import overallocated_lines, reservation_mismatches, sql

pytestmark = pytest.mark.slow
KEY = {"X-API-Key": "demo-integration-key"}


def _login(c: httpx.Client, user: str, password: str) -> dict[str, str]:
    r = c.post("/api/v1/auth/token", data={"username": user, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _paths(c: httpx.Client) -> set[str]:
    return set(c.get("/openapi.json").json()["paths"])


def _load(c: httpx.Client, store_units: int) -> None:
    retailer.load(c, _login(c, "hq", HQ_PASSWORD), KEY)
    rows = [{"location": loc, "sku": s, "on_hand": store_units} for loc in ("S1", "S2", "S3") for s in
            ("SKU-1", "SKU-2", "SKU-3")]
    rows += [{"location": "W1", "sku": s, "on_hand": 100_000} for s in ("SKU-1", "SKU-2", "SKU-3")]
    r = c.put("/api/v1/inventory/levels", json={"mode": "snapshot", "rows": rows}, headers=KEY)
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def _kill_when(backend, condition, what: str, timeout: float = 60) -> bool:
    """SIGKILL the backend as soon as `condition()` holds; False when the work ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            backend.kill()
            return True
        time.sleep(0.005)
    backend.kill()
    pytest.fail(f"{what} never started")


def _pull_tasks(c: httpx.Client, headers: dict[str, str]) -> dict[str, dict]:
    tasks: dict[str, dict] = {}
    cursor = None
    for _ in range(100):
        r = c.get("/api/v1/sync/pull", params={"cursor": cursor} if cursor else {}, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        for ch in body["changes"]:
            if ch["entity"] == "task":
                if ch["op"] == "delete":
                    tasks.pop(ch["id"], None)
                else:
                    tasks[ch["id"]] = ch["data"]
        cursor = body["cursor"]
        if not body["has_more"]:
            return tasks
    raise AssertionError("pull never ended")


def test_a_push_cut_off_by_sigkill_applies_each_action_once(backend_factory):
    backend = backend_factory(workers=1)
    with backend.client() as c:
        if not {"/api/v1/sync/push", "/api/v1/routing/batch"} <= _paths(c):
            pytest.skip("waits for the sync push and the batch endpoint")
        _load(c, store_units=500)
        for i in range(120):  # same-day orders near Albany: S1's queue once the batch releases them
            r = c.post("/api/v1/orders", json=retailer.order(f"K-{i}", "same_day", lines=(("1", "SKU-3", 1),)),
                       headers=KEY)
            assert r.status_code == 201, r.text
        assert c.post("/api/v1/routing/batch", headers=_login(c, "hq", HQ_PASSWORD)).status_code == 200
        ana = _login(c, "s1-ana", "1111")
        tasks = {k: t for k, t in _pull_tasks(c, ana).items() if t["step"] == "pick"}
    if len(tasks) < 40:
        pytest.skip(f"routing released only {len(tasks)} tasks to S1")
    actions = []
    for tid, t in sorted(tasks.items()):
        line = t["lines"][0]
        actions.append({"id": str(uuid.uuid4()), "type": "claim", "task_id": tid})
        actions.append({"id": str(uuid.uuid4()), "type": "pick", "task_id": tid, "line_id": line["line_id"],
                        "quantity": 1, "barcode": line["barcodes"][0] if line["barcodes"] else None})
    body = {"device_id": "tab-faults", "actions": actions}

    outcome: dict = {}

    def push() -> None:
        try:
            with backend.client(timeout=60) as c:
                outcome["response"] = c.post("/api/v1/sync/push", json=body, headers=ana)
        except httpx.HTTPError as e:
            outcome["error"] = e

    t = threading.Thread(target=push)
    t.start()
    _kill_when(backend, lambda: sql(backend.db_url, "SELECT COUNT(*) FROM syncaction")[0][0] > 0, "the push")
    t.join(60)
    committed = sql(backend.db_url, "SELECT COUNT(*) FROM syncaction")[0][0]
    print(f"{committed} of {len(actions)} actions were committed when the process died; client saw "
          f"{outcome.get('response', outcome.get('error'))!r}")
    assert committed % 50 == 0 or committed == len(actions), "a commit group was applied in part"
    assert not reservation_mismatches(backend.db_url)

    backend.start()
    with backend.client() as c:
        r = c.post("/api/v1/sync/push", json=body, headers=ana)  # the tablet sends its outbox again
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [x["id"] for x in results] == [a["id"] for a in actions]
        refused = [x for x in results if x["status"] != "applied"]
        assert not refused, refused[:5]
        again = c.post("/api/v1/sync/push", json=body, headers=ana).json()["results"]
        assert again == results, "a repeated action gets its first result again"
        after = _pull_tasks(c, ana)
    for tid in tasks:
        line = after[tid]["lines"][0]
        assert line["picked"] == 1, (tid, line)  # once: not lost with the process, not doubled by the replay
        assert after[tid]["assignee"] == "s1-ana"
    assert sql(backend.db_url, "SELECT COUNT(*), COUNT(DISTINCT id) FROM syncaction") == [(len(actions),) * 2]
    (picked,), = sql(backend.db_url, "SELECT COALESCE(SUM(picked), 0) FROM allocation WHERE task_id IS NOT NULL")
    assert picked == len(tasks)
    assert not reservation_mismatches(backend.db_url)


def test_a_batch_cut_off_by_sigkill_changes_nothing_and_the_next_one_completes(backend_factory):
    backend = backend_factory(workers=1)
    with backend.client() as c:
        if "/api/v1/routing/batch" not in _paths(c):
            pytest.skip("waits for the batch endpoint")
        _load(c, store_units=3)
        for i in range(300):  # standard orders stay held (reserved, not released) for the batch to re-plan
            sku = ("SKU-1", "SKU-2", "SKU-3")[i % 3]
            r = c.post("/api/v1/orders", json=retailer.order(f"B-{i}", "standard", lines=(("1", sku, 1 + i % 2),)),
                       headers=KEY)
            assert r.status_code == 201, r.text
        hq = _login(c, "hq", HQ_PASSWORD)
    before = sql(backend.db_url, "SELECT id, location, quantity, state FROM allocation ORDER BY id")
    outcome: dict = {}

    def batch() -> None:
        try:
            with backend.client(timeout=120) as c:
                outcome["response"] = c.post("/api/v1/routing/batch", headers=hq)
        except httpx.HTTPError as e:
            outcome["error"] = e

    t = threading.Thread(target=batch)
    t.start()
    lock_held = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 727002"
    _kill_when(backend, lambda: sql(backend.db_url, lock_held)[0][0] > 0, "the batch")
    t.join(60)
    finished = "response" in outcome
    print(f"batch {'finished before' if finished else 'was cut off by'} the kill: {outcome}")
    after = sql(backend.db_url, "SELECT id, location, quantity, state FROM allocation ORDER BY id")
    if not finished:
        assert after == before, "a batch that did not commit left changes behind"
    assert not reservation_mismatches(backend.db_url)
    assert not overallocated_lines(backend.db_url)

    backend.start()
    with backend.client(timeout=120) as c:
        r = c.post("/api/v1/routing/batch", headers=hq)
        assert r.status_code == 200, r.text
        summary = r.json()
        assert {"orders", "changed", "cost_before", "cost_after", "seconds"} <= set(summary)
        assert summary["cost_after"] <= summary["cost_before"] + 1e-6
    assert not reservation_mismatches(backend.db_url)
    assert not overallocated_lines(backend.db_url)
    assert sql(backend.db_url, "SELECT COUNT(*) FROM orders WHERE external_id LIKE 'B-%%'") == [(300,)]
