"""PostgreSQL restarts while orders pour in: callers get retriable answers, and no order is lost or doubled."""
from __future__ import annotations

import queue
import threading
import time
from collections import Counter

import httpx
import pytest

from tests import retailer
from tests.conftest import HQ_PASSWORD
from tests.faults.conftest import overallocated_lines, reservation_mismatches, sql

pytestmark = pytest.mark.slow

ORDERS = 240
CLIENTS = 8
DEADLINE_S = 150


def _login(c: httpx.Client, user: str, password: str) -> dict[str, str]:
    r = c.post("/api/v1/auth/token", data={"username": user, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_orders_survive_a_database_restart(pg_cluster, backend_factory):
    backend = backend_factory(workers=2)
    key = {"X-API-Key": "demo-integration-key"}
    with backend.client() as c:
        retailer.load(c, _login(c, "hq", HQ_PASSWORD), key)
        r = c.put("/api/v1/inventory/levels", json={"mode": "snapshot", "rows": [
            {"location": "W1", "sku": s, "on_hand": 100_000} for s in ("SKU-1", "SKU-2", "SKU-3")]}, headers=key)
        assert r.status_code == 200

    todo: queue.Queue[int] = queue.Queue()
    for i in range(ORDERS):
        todo.put(i)
    done: dict[str, str] = {}
    seen = Counter()
    bad: list[str] = []
    retry_after: set[str] = set()
    stop_at = time.monotonic() + DEADLINE_S
    lock = threading.Lock()

    def client_thread() -> None:
        with backend.client(timeout=30) as c:
            while time.monotonic() < stop_at:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                body = retailer.order(f"R-{i}", lines=(("1", "SKU-3", 1),))
                while time.monotonic() < stop_at:  # the integrator's retry loop: same external id until it lands
                    try:
                        r = c.post("/api/v1/orders", json=body, headers=key)
                    except httpx.TransportError as e:
                        with lock:
                            seen[type(e).__name__] += 1
                        time.sleep(0.2)
                        continue
                    with lock:
                        seen[str(r.status_code)] += 1
                    if r.status_code in (200, 201):
                        with lock:
                            done[f"R-{i}"] = r.json()["id"]
                        break
                    if r.status_code == 503:
                        with lock:
                            retry_after.add(r.headers.get("retry-after", ""))
                        time.sleep(min(2.0, float(r.headers.get("retry-after") or 1)) / 4)
                        continue
                    with lock:
                        bad.append(f"R-{i}: {r.status_code} {r.text[:300]}")
                    break

    threads = [threading.Thread(target=client_thread) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    while len(done) < ORDERS // 4 and time.monotonic() < stop_at:
        time.sleep(0.05)
    pg_cluster.stop("fast")  # in-flight transactions are cut off, new connections refused
    with httpx.Client(base_url=backend.base, timeout=10) as probe:
        ready_during_outage = probe.get("/ready").status_code
    time.sleep(1.5)  # an outage window the clients must ride out
    pg_cluster.start()
    for t in threads:
        t.join(DEADLINE_S)

    print(f"answers during the run: {dict(seen)}; Retry-After values: {sorted(retry_after)}")
    assert not bad, "non-retriable answers during the restart:\n" + "\n".join(bad[:20])
    assert len(done) == ORDERS, f"{ORDERS - len(done)} orders never landed; answers seen: {dict(seen)}"
    assert ready_during_outage == 503, "readiness must fail while the database is down"
    assert seen["503"] > 0, f"the restart went unnoticed: {dict(seen)}"
    assert retry_after <= {"1", "2", "3", "5"} and "" not in retry_after, retry_after
    dropped = {k: v for k, v in seen.items() if not k.isdigit()}
    assert not dropped, f"the server dropped connections instead of answering: {dropped}"

    (count, distinct), = sql(backend.db_url, "SELECT COUNT(*), COUNT(DISTINCT external_id) FROM orders "
                                             "WHERE external_id LIKE 'R-%%'")
    assert count == distinct == ORDERS, "an order was lost or doubled"
    assert len(set(done.values())) == ORDERS
    assert sql(backend.db_url, "SELECT COUNT(*) FROM orders o WHERE external_id LIKE 'R-%%' AND NOT EXISTS "
               "(SELECT 1 FROM orderline l WHERE l.order_id = o.id)") == [(0,)], "an order without its lines"
    assert not reservation_mismatches(backend.db_url)
    assert not overallocated_lines(backend.db_url)
