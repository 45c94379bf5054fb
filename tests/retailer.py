"""A small retailer of the tests' own, loaded through the public API only (not the demo seed)."""
from __future__ import annotations

from typing import Any

ALBANY = (42.6526, -73.7562)
SCHENECTADY = (42.8142, -73.9396)
TROY = (42.7284, -73.6918)
HARRISBURG = (40.2732, -76.8867)

LOCATIONS: list[dict[str, Any]] = [
    dict(code="S1", name="Albany Central", type="store", lat=ALBANY[0], lon=ALBANY[1], pickup=True,
         same_day_radius_km=40, same_day_cutoff="23:59", daily_capacity=100, address="1 State St, Albany NY"),
    dict(code="S2", name="Schenectady", type="store", lat=SCHENECTADY[0], lon=SCHENECTADY[1], pickup=True,
         same_day_radius_km=40, same_day_cutoff="23:59", daily_capacity=100),
    dict(code="S3", name="Troy", type="store", lat=TROY[0], lon=TROY[1], pickup=True,
         same_day_radius_km=40, same_day_cutoff="23:59", daily_capacity=100),
    dict(code="W1", name="Harrisburg DC", type="warehouse", lat=HARRISBURG[0], lon=HARRISBURG[1], pickup=False,
         daily_capacity=10_000),
]
for loc in LOCATIONS:
    loc.setdefault("timezone", "America/New_York")
    loc.setdefault("ships", True)

PRODUCTS = [
    dict(sku="SKU-1", name="Trail runner 42", barcodes=["0012345678905"], weight_kg=0.9),
    dict(sku="SKU-2", name="Rain jacket M", barcodes=["0012345678912"], weight_kg=0.6),
    dict(sku="SKU-3", name="Wool socks", barcodes=["0012345678929"], weight_kg=0.1),
]

USERS = [
    dict(username="s1-ana", role="associate", store="S1", pin="1111", name="Ana"),
    dict(username="s1-ben", role="associate", store="S1", pin="2222", name="Ben"),
    dict(username="s1-mia", role="manager", store="S1", pin="3333", name="Mia"),
    dict(username="s2-cai", role="associate", store="S2", pin="4444", name="Cai"),
    dict(username="s2-dan", role="manager", store="S2", pin="5555", name="Dan"),
]

STOCK = [
    dict(location="S1", sku="SKU-1", on_hand=2), dict(location="S1", sku="SKU-2", on_hand=5),
    dict(location="S2", sku="SKU-1", on_hand=1), dict(location="S3", sku="SKU-3", on_hand=4),
    dict(location="W1", sku="SKU-1", on_hand=100), dict(location="W1", sku="SKU-2", on_hand=100),
    dict(location="W1", sku="SKU-3", on_hand=100),
]


def load(client, hq: dict[str, str], key: dict[str, str], stock: bool = True) -> None:
    for path, body in (("/api/v1/locations", {"locations": LOCATIONS}), ("/api/v1/products", {"products": PRODUCTS})):
        r = client.put(path, json=body, headers=key)
        assert r.status_code == 200 and not r.json()["rejected"], r.text
    r = client.put("/api/v1/users", json={"users": USERS}, headers=hq)
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    if stock:
        r = client.put("/api/v1/inventory/levels", json={"mode": "snapshot", "rows": STOCK}, headers=key)
        assert r.status_code == 200 and not r.json()["rejected"], r.text


def order(external_id: str, method: str = "standard", lines=(("1", "SKU-1", 1),), **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = dict(channel="web", external_id=external_id, delivery_method=method,
                                lines=[dict(line_id=i, sku=s, quantity=q) for i, s, q in lines])
    if method == "pickup":
        body["pickup_location"] = kw.pop("pickup_location", "S1")
    else:
        body["ship_to"] = kw.pop("ship_to", {"zip": "12207"})
    body.update(kw)
    return body
