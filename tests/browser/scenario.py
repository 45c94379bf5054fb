"""The data a browser test works on, and how it asks the server what happened, for either backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from tests.browser.conftest import Server


@dataclass
class Line:
    line_id: str
    barcode: str
    quantity: int


@dataclass
class Order:
    number: str
    method: str
    lines: list[Line]


@dataclass
class Scenario:
    server: Server
    user: str = ""
    pin: str = ""
    manager: str = ""
    manager_pin: str = ""
    pickup_code: str = ""
    wrong_barcode: str = ""
    orders: dict[str, Order] = field(default_factory=dict)  # role in the test -> order

    def code_for_pickup(self) -> str:
        return self.pickup_code

    def cancel(self, number: str, url: str | None = None) -> None:
        raise NotImplementedError

    def task(self, number: str) -> dict:
        """The server's view of the order's store task: step and per-line picked/rejected."""
        raise NotImplementedError

    def outcome(self, number: str) -> dict:
        """After the order left the queue: {"step", "lines": [{"picked", "rejected"}]} at the test store."""
        return self.task(number)

    def applied_counts(self) -> dict[str, int] | None:
        """How many times the server applied each action id (None when the backend cannot tell)."""
        return None


class FakeScenario(Scenario):
    def __init__(self, server: Server) -> None:
        super().__init__(server, user="s101-ana", pin="1234", manager="s101-mia", manager_pin="9999",
                         pickup_code="4821", wrong_barcode="5012345678900")
        self.orders = {
            "ship": Order("W-1001", "standard", [Line("1", "0012345678905", 1), Line("2", "4006381333931", 1)]),
            "reject": Order("W-1005", "standard", [Line("1", "4006381333931", 1)]),
            "pickup": Order("W-1003", "pickup", [Line("1", "5012345678900", 1)]),
            "offline_pack": Order("W-1002", "same_day", [Line("1", "0012345678905", 2)]),
            "offline_reject": Order("W-1006", "same_day", [Line("1", "5012345678900", 1),
                                                            Line("2", "7612345678906", 1)]),
            "offline_cancel": Order("W-1004", "next_day", [Line("1", "7612345678906", 2),
                                                            Line("2", "0012345678905", 1)]),
        }
        self.wrong_barcode = "7612345678906"  # wool socks: in the catalogue, not on W-1001

    def _state(self, url: str | None = None) -> dict:
        return httpx.get(f"{url or self.server.url}/_test/state", timeout=10).json()

    def cancel(self, number: str, url: str | None = None) -> None:
        httpx.post(f"{url or self.server.url}/_test/cancel/{number}", timeout=10).raise_for_status()

    def task(self, number: str) -> dict:
        return next(t for t in self._state()["tasks"].values() if t["order_number"] == number)

    def applied_counts(self) -> dict[str, int]:
        return self._state()["applied"]


def ean13(body12: str) -> str:
    return body12 + str((10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body12)) % 10) % 10)


class RealScenario(Scenario):
    """A small store of its own, loaded through the public API on top of ``storeline seed demo``: store T1
    holds the only stock of four test SKUs, so every test order is released to T1's queue."""

    STORE = "T1"
    KEY = {"X-API-Key": "demo-integration-key"}

    def __init__(self, server: Server) -> None:
        super().__init__(server, user="t1-ana", pin="1357", manager="t1-mgr", manager_pin="2468")
        base = server.url + "/api/v1"
        hq = httpx.post(f"{base}/auth/token", data={"username": "hq", "password": "hq-demo"}, timeout=30)
        hq.raise_for_status()
        self.hq = {"Authorization": f"Bearer {hq.json()['access_token']}"}
        skus = {"shoe": ("TB-SHOE", "Trail runner 42", ean13("297700000011")),
                "jacket": ("TB-JACKET", "Rain jacket M", ean13("297700000022")),
                "bottle": ("TB-BOTTLE", "Water bottle", ean13("297700000033")),
                "socks": ("TB-SOCKS", "Wool socks", ean13("297700000044")),
                "cap": ("TB-CAP", "Cap", ean13("297700000055"))}
        self.skus = skus
        put = [
            ("locations", {"locations": [{
                "code": self.STORE, "name": "Test Albany", "type": "store", "lat": 42.6526, "lon": -73.7562,
                "timezone": "America/New_York", "ships": True, "pickup": True, "same_day_radius_km": 50,
                "same_day_cutoff": "23:59", "daily_capacity": 500}]}),
            ("products", {"products": [{"sku": k, "name": n, "barcodes": [b], "weight_kg": 0.5}
                                       for k, n, b in skus.values()]}),
            ("inventory/levels", {"mode": "snapshot", "rows": [
                {"location": self.STORE, "sku": k, "on_hand": 60} for k, _, _ in skus.values()
                if k != "TB-CAP"]}),
            ("users", {"users": [
                {"username": "t1-ana", "role": "associate", "store": self.STORE, "pin": "1357"},
                {"username": "t1-ben", "role": "associate", "store": self.STORE, "pin": "8642"},
                {"username": "t1-mgr", "role": "manager", "store": self.STORE, "pin": "2468"}]}),
        ]
        for path, body in put:
            r = httpx.put(f"{base}/{path}", json=body, headers=self.hq, timeout=60)
            assert r.status_code == 200 and not r.json().get("rejected"), (path, r.status_code, r.text[:300])
        self.wrong_barcode = skus["cap"][2]  # in the catalogue, never on a test order
        specs = {
            "ship": ("standard", [("shoe", 1), ("jacket", 1)]),
            "reject": ("standard", [("jacket", 1)]),
            "pickup": ("pickup", [("bottle", 1)]),
            "offline_pack": ("same_day", [("shoe", 2)]),
            "offline_reject": ("same_day", [("bottle", 1), ("socks", 1)]),
            "offline_cancel": ("next_day", [("socks", 2), ("shoe", 1)]),
            "many": ("standard", [("shoe", 30)]),
        }
        self.order_ids: dict[str, str] = {}
        for n, (role, (method, lines)) in enumerate(specs.items(), 1):
            number = f"B-{1000 + n}"
            body = {"channel": "web", "external_id": number, "delivery_method": method, "priority": 0,
                    "ship_to": {"lat": 42.66, "lon": -73.77},
                    "lines": [{"line_id": str(i), "sku": skus[k][0], "quantity": q}
                              for i, (k, q) in enumerate(lines, 1)]}
            if method == "pickup":
                body["pickup_location"] = self.STORE
            r = httpx.post(f"{base}/orders", json=body, headers=self.KEY, timeout=60)
            assert r.status_code in (200, 201), r.text[:300]
            order = r.json()
            self.order_ids[number] = order["id"]
            locs = {a["location"] for ln in order["lines"] for a in ln.get("allocations", [])}
            assert locs == {self.STORE}, (number, order.get("status"), locs)
            self.orders[role] = Order(number, method, [Line(str(i), skus[k][2], q)
                                                       for i, (k, q) in enumerate(lines, 1)])
        self._release(list(self.order_ids.values()))

    def _release(self, order_ids: list[str]) -> None:
        """Release the test orders to the store now (the backend holds them 2-60 minutes for the batch)."""
        import json
        import subprocess
        import sys

        script = (
            "import json, sys\n"
            "from datetime import timedelta\n"
            "from sqlmodel import col, select\n"
            "from backend.db import session_scope\n"
            "from backend.models.orders import Allocation\n"
            "from backend.services.routing import release_due\n"
            "ids = json.loads(sys.argv[1])\n"
            "with session_scope() as s:\n"
            "    for a in s.exec(select(Allocation).where(Allocation.state == 'reserved',"
            " col(Allocation.order_id).in_(ids))):\n"
            "        a.created_at = a.created_at - timedelta(hours=3)\n"
            "        s.add(a)\n"
            "    s.flush()\n"
            "    print(release_due(s, order_ids=ids))\n"
            "    s.commit()\n")
        out = subprocess.run([sys.executable, "-c", script, json.dumps(order_ids)], cwd=self.server.workdir,
                             env={**self.server.env, "PYTHONPATH": str(self.server.bundle.parents[1])},
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]

    def code_for_pickup(self) -> str:
        """The code the customer was given (the backend makes it when the order is ready for collection)."""
        rows = self._db("SELECT t.pickup_code FROM task t JOIN orders o ON o.id = t.order_id WHERE o.external_id = ?"
                        " AND t.pickup_code IS NOT NULL", (self.orders["pickup"].number,))
        assert rows, "no pickup code on the pickup order's task yet"
        return rows[0][0]

    def _db(self, sql: str, params: tuple = ()) -> list[tuple]:
        import sqlite3

        con = sqlite3.connect(self.server.workdir / "storeline.db")
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def cancel(self, number: str, url: str | None = None) -> None:
        r = httpx.post(f"{url or self.server.url}/api/v1/orders/{self.order_ids[number]}/cancel",
                       headers=self.KEY, json={"reason": "customer changed their mind"}, timeout=30)
        assert r.status_code == 200, r.text[:300]

    def task(self, number: str) -> dict:
        """The task as the store's tablets get it (a full pull as the test associate)."""
        base = self.server.url + "/api/v1"
        tok = httpx.post(f"{base}/auth/token", data={"username": self.user, "password": self.pin}, timeout=30)
        headers = {"Authorization": f"Bearer {tok.json()['access_token']}"}
        found: dict = {}
        cursor = None
        for _ in range(100):
            r = httpx.get(f"{base}/sync/pull", params={"cursor": cursor} if cursor else None, headers=headers,
                          timeout=30).json()
            for ch in r["changes"]:
                if ch["entity"] == "task" and ch["data"].get("order_number") == number:
                    found = ch["data"] if ch["op"] == "upsert" else {"step": "done", "deleted": True}
            cursor = r["cursor"]
            if not r["has_more"]:
                break
        if not found:  # a finished task may leave the pull entirely
            rows = self._db("SELECT t.step FROM task t JOIN orders o ON o.id = t.order_id WHERE o.external_id = ?",
                            (number,))
            found = {"step": rows[0][0] if rows else "done", "lines": []}
        return found

    def outcome(self, number: str) -> dict:
        """From the order (integrator API): units at the test store by allocation state, per line."""
        r = httpx.get(f"{self.server.url}/api/v1/orders/{self.order_ids[number]}", headers=self.KEY, timeout=30)
        r.raise_for_status()
        order = r.json()
        lines = []
        for ln in order["lines"]:
            here = [a for a in ln.get("allocations", []) if a["location"] == self.STORE]
            lines.append({"picked": sum(a["quantity"] for a in here if a["state"] in ("picked", "packed", "fulfilled")),
                          "rejected": sum(a["quantity"] for a in here if a["state"] == "rejected")})
        rows = self._db("SELECT t.step FROM task t JOIN orders o ON o.id = t.order_id WHERE o.external_id = ? AND "
                        "t.location = ?", (number, self.STORE))
        return {"step": rows[0][0] if rows else None, "status": order["status"], "lines": lines}

    def applied_counts(self) -> dict[str, int]:
        return {i: 1 for (i,) in self._db("SELECT id FROM syncaction WHERE status = 'applied' AND type != 'claim'")}
