"""Store work for the tests: real orders through POST /api/v1/orders, routed by the real routing service and
released to the store (as the batch would), and a tablet that pushes and pulls like the store app."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlmodel import select

from shared.sync import PullResponse, TaskData
from tests import retailer
from tests.conftest import login

PINS = {u["username"]: u["pin"] for u in retailer.USERS}


def setup(client, hq, integration) -> None:
    retailer.load(client, hq, integration)


def order(client, integration, ext: str, method: str = "same_day", lines=(("1", "SKU-1", 1),),
          **kw: Any) -> dict:
    r = client.post("/api/v1/orders", json=retailer.order(ext, method, lines=lines, **kw), headers=integration)
    assert r.status_code == 201, r.text
    return r.json()


def read(fn: Callable[[Any], Any]) -> Any:
    """Run `fn(session)` in a short read (on SQLite an open transaction would hold the write lock)."""
    from backend.db import session_scope

    with session_scope() as s:
        return fn(s)


def stock(location: str, sku: str) -> tuple[int, int]:
    """(on hand, reserved) of a SKU at a location."""
    from backend.models import InventoryPosition

    def get(s: Any) -> tuple[int, int]:
        pos = s.get(InventoryPosition, (location, sku))
        return (pos.on_hand, pos.reserved) if pos else (0, 0)

    return read(get)


def release(order_id: str) -> None:
    """Routing holds same-day and pickup allocations a short while (for the batch); release them now."""
    from backend.db import session_scope
    from backend.services import routing

    with session_scope() as s:
        routing.release_due(s, order_ids=[order_id], urgent_now=True)
        s.commit()


def task_of(order_id: str, store: str = "S1") -> str:
    """The open task of an order at a store (fails when routing sent the order elsewhere)."""
    from backend.db import session_scope
    from backend.models import Task

    with session_scope() as s:
        t = s.exec(select(Task).where(Task.order_id == order_id, Task.location == store)
                   .order_by(Task.created_at.desc())).first()  # type: ignore[attr-defined]
        assert t is not None, f"order {order_id} has no task at {store}"
        return t.id


def released(client, integration, ext: str, method: str = "same_day", lines=(("1", "SKU-1", 1),),
             store: str = "S1", **kw: Any) -> tuple[str, str]:
    """(order id, task id) of a new order that routing released to `store`."""
    o = order(client, integration, ext, method, lines, **kw)
    release(o["id"])
    return o["id"], task_of(o["id"], store)


def get_order(client, integration, order_id: str) -> dict:
    r = client.get(f"/api/v1/orders/{order_id}", headers=integration)
    assert r.status_code == 200, r.text
    return r.json()


def act(type_: str, task_id: str | None = None, **fields: Any) -> dict:
    return {"id": str(uuid.uuid4()), "type": type_, "task_id": task_id, **fields}


class Tablet:
    """One device, one user: an outbox it pushes and a cursor it pulls with."""

    def __init__(self, client, username: str, device_id: str | None = None):
        self.client = client
        self.username = username
        self.headers = login(client, username, PINS[username])
        self.device_id = device_id or f"tab-{username}"
        self.cursor: str | None = None
        self.tasks: dict[str, dict] = {}
        self.products: dict[str, dict] = {}
        self.users: dict[str, dict] = {}
        self.reasons: dict[str, dict] = {}

    def push(self, *actions: dict, status: int = 200) -> list[dict]:
        r = self.client.post("/api/v1/sync/push", json={"device_id": self.device_id, "actions": list(actions)},
                             headers=self.headers)
        assert r.status_code == status, r.text
        return r.json()["results"] if status == 200 else r.json()

    def one(self, action: dict) -> dict:
        (res,) = self.push(action)
        return res

    def applied(self, action: dict) -> dict:
        res = self.one(action)
        assert res["status"] == "applied", res
        return res

    def refused(self, action: dict, code: str) -> dict:
        res = self.one(action)
        assert (res["status"], res["code"]) == ("rejected", code), res
        return res

    def pull(self, limit: int | None = None) -> list[dict]:
        """Follow has_more to the end; applies the changes to the local copy; returns every change seen."""
        seen: list[dict] = []
        for _ in range(1000):
            params: dict[str, Any] = {}
            if self.cursor:
                params["cursor"] = self.cursor
            if limit:
                params["limit"] = limit
            r = self.client.get("/api/v1/sync/pull", params=params, headers=self.headers)
            assert r.status_code == 200, r.text
            page = r.json()
            PullResponse.model_validate(page)  # the contract's shape, field for field
            for ch in page["changes"]:
                if ch["entity"] == "task" and ch["op"] == "upsert":
                    TaskData.model_validate(ch["data"])
            if page.get("reset"):
                self.tasks.clear()
            for ch in page["changes"]:
                store = {"task": self.tasks, "product": self.products, "user": self.users,
                         "reason_code": self.reasons}.get(ch["entity"])
                if store is None:
                    continue
                if ch["op"] == "delete":
                    store.pop(ch["id"], None)
                else:
                    store[ch["id"]] = ch["data"]
            seen += page["changes"]
            self.cursor = page["cursor"]
            if not page["has_more"]:
                return seen
        raise AssertionError("pull never finished")

    def line(self, task_id: str, line_id: str = "1") -> dict:
        return next(x for x in self.tasks[task_id]["lines"] if x["line_id"] == line_id)
