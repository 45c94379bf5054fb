"""Helpers for the inventory tests: read positions and feed stock through the public API."""
from __future__ import annotations

from typing import Any

LEVELS = "/api/v1/inventory/levels"


def position(client, headers: dict[str, str], location: str, sku: str) -> dict[str, Any] | None:
    r = client.get("/api/v1/inventory/positions", params={"location": location, "sku": sku}, headers=headers)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    return items[0] if items else None


def feed(client, headers: dict[str, str], rows: list[dict[str, Any]], mode: str = "snapshot") -> dict[str, Any]:
    r = client.put(LEVELS, json={"mode": mode, "rows": rows}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def availability(client, headers: dict[str, str], sku: str, **params: Any) -> dict[str, Any]:
    r = client.get("/api/v1/inventory/availability", params={"sku": sku, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()
