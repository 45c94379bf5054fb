"""A retailer with nodes besides stores: warehouse W1 (from tests/retailer.py), 3PL T1 and supplier P1, and a SKU
that only those nodes stock, so routing sends its orders there."""
from __future__ import annotations

from typing import Any

from tests import retailer

NODES = [
    dict(code="T1", name="Albany 3PL", type="3pl", lat=42.70, lon=-73.80, timezone="America/New_York", ships=True,
         daily_capacity=5000, address="9 Dock Rd, Albany NY"),
    dict(code="P1", name="Boots Inc (drop-ship)", type="supplier", lat=41.50, lon=-74.00,
         timezone="America/New_York", ships=True, daily_capacity=5000, lead_days=2),
]
NODE_SKU = dict(sku="SKU-9", name="Expedition boot", barcodes=["0012345678936"], weight_kg=1.4)


def load(client, hq: dict[str, str], key: dict[str, str], w1: int = 10, t1: int = 0, p1: int = 0) -> None:
    retailer.load(client, hq, key)
    for path, body in (("/api/v1/locations", {"locations": NODES}), ("/api/v1/products", {"products": [NODE_SKU]})):
        r = client.put(path, json=body, headers=key)
        assert r.status_code == 200 and not r.json()["rejected"], r.text
    stock(client, key, W1=w1, T1=t1, P1=p1)


def stock(client, key: dict[str, str], sku: str = "SKU-9", **levels: int) -> None:
    rows = [dict(location=code, sku=sku, on_hand=n) for code, n in levels.items()]
    r = client.put("/api/v1/inventory/levels", json={"mode": "snapshot", "rows": rows}, headers=key)
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def node_key(client, hq: dict[str, str], *codes: str) -> dict[str, str]:
    r = client.post("/api/v1/api-keys", json={"name": f"wms {'+'.join(codes)}", "role": "node",
                                              "locations": list(codes)}, headers=hq)
    assert r.status_code == 201, r.text
    return {"X-API-Key": r.json()["key"]}


def order(client, key: dict[str, str], external_id: str, qty: int = 1, sku: str = "SKU-9", **kw: Any) -> dict:
    r = client.post("/api/v1/orders", json=retailer.order(external_id, kw.pop("method", "standard"),
                                                          lines=[("1", sku, qty)], **kw), headers=key)
    assert r.status_code == 201, r.text
    return r.json()


def release_all() -> int:
    """Let every hold window pass and release what is due (the scheduler's job)."""
    from backend import clock
    from backend.db import session_scope
    from backend.services import routing

    clock.shift(2 * 3600)
    with session_scope() as s:
        n = routing.release_due(s)
        s.commit()
    return n


def get_order(client, key: dict[str, str], order_id: str) -> dict:
    r = client.get(f"/api/v1/orders/{order_id}", headers=key)
    assert r.status_code == 200, r.text
    return r.json()


def allocations(o: dict, line: int = 0) -> list[tuple[str, int, str]]:
    return [(a["location"], a["quantity"], a["state"]) for a in o["lines"][line]["allocations"]]


def position(location: str, sku: str) -> tuple[int, int, bool]:
    """(on_hand, reserved, blocked) straight from the database."""
    from backend.db import session_scope
    from backend.models import InventoryPosition

    with session_scope() as s:
        p = s.get(InventoryPosition, (location, sku))
        assert p is not None
        return p.on_hand, p.reserved, p.blocked
