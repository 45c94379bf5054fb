"""Routing through the API: real-time decisions, reservations, release, explanations, backorders."""
from __future__ import annotations

from tests import retailer


def _atp(client, key, sku: str) -> dict[str, int]:
    body = client.get("/api/v1/inventory/availability", params={"sku": sku, "channel": "web"}, headers=key).json()
    return {x["location"]: x["atp"] for x in body["locations"]}


def test_same_day_order_goes_to_the_near_store_and_is_released_by_the_next_batch(client, hq, integration):
    retailer.load(client, hq, integration)
    r = client.post("/api/v1/orders", json=retailer.order("RT-1", "same_day", lines=[("1", "SKU-1", 1)]),
                    headers=integration)
    assert r.status_code == 201, r.text
    o = r.json()
    assert [(a["location"], a["quantity"], a["state"]) for a in o["lines"][0]["allocations"]] == [("S1", 1, "reserved")]
    assert o["status"] == "routed"
    assert o["explanation"]["summary"]
    assert any(c["location"] == "S1" and c["chosen"] for c in o["explanation"]["candidates"])
    assert _atp(client, integration, "SKU-1")["S1"] == 1, "one of S1's two units is now reserved"
    assert [h["kind"] for h in o["history"]][:2] == ["order.created", "order.routed"]
    batch = client.post("/api/v1/routing/batch", headers=hq)
    assert batch.status_code == 200, batch.text
    assert set(batch.json()) >= {"orders", "changed", "cost_before", "cost_after", "seconds"}
    o = client.get(f"/api/v1/orders/{o['id']}", headers=integration).json()
    assert [a["state"] for a in o["lines"][0]["allocations"]] == ["released"] and o["status"] == "released"


def test_standard_order_is_reserved_and_held_before_release(client, hq, integration):
    retailer.load(client, hq, integration)
    o = client.post("/api/v1/orders", json=retailer.order("RT-2", "standard", lines=[("1", "SKU-2", 1)]),
                    headers=integration).json()
    states = [a["state"] for a in o["lines"][0]["allocations"]]
    assert states == ["reserved"] and o["status"] == "routed"


def test_order_nobody_can_fill_is_backordered_with_a_reason_then_filled_when_stock_arrives(client, hq, integration):
    retailer.load(client, hq, integration)
    client.put("/api/v1/products", json={"products": [dict(sku="SKU-NEW", name="New", barcodes=["4006381333931"])]},
               headers=integration)
    o = client.post("/api/v1/orders", json=retailer.order("RT-3", "next_day", lines=[("1", "SKU-NEW", 2)]),
                    headers=integration).json()
    assert o["status"] == "backordered" and o["lines"][0]["status"] == "backordered"
    assert o["lines"][0]["backorder_reason"]
    feed = client.put("/api/v1/inventory/levels", json={"mode": "delta", "rows": [
        dict(location="W1", sku="SKU-NEW", delta=5)]}, headers=integration)
    assert feed.status_code == 200 and feed.json()["applied"] == 1
    after = client.get(f"/api/v1/orders/{o['id']}", headers=integration).json()
    assert after["lines"][0]["status"] in ("routed", "released")
    assert [(a["location"], a["quantity"]) for a in after["lines"][0]["allocations"]] == [("W1", 2)]


def test_cancel_gives_the_units_back(client, hq, integration):
    retailer.load(client, hq, integration)
    o = client.post("/api/v1/orders", json=retailer.order("RT-4", "same_day", lines=[("1", "SKU-1", 2)]),
                    headers=integration).json()
    assert _atp(client, integration, "SKU-1").get("S1", 0) == 0
    client.post(f"/api/v1/orders/{o['id']}/cancel", headers=integration)
    assert _atp(client, integration, "SKU-1")["S1"] == 2
    got = client.get(f"/api/v1/orders/{o['id']}", headers=integration).json()
    assert [a["state"] for a in got["lines"][0]["allocations"]] == ["cancelled"]


def test_last_units_are_never_sold_twice(client, hq, integration):
    retailer.load(client, hq, integration)
    # S2 holds one SKU-1; W1 has plenty. Five same-day orders near S2: exactly one gets S2.
    ship_to = {"lat": 42.8142, "lon": -73.9396}
    placed = []
    for i in range(5):
        o = client.post("/api/v1/orders", json=retailer.order(f"RT-5-{i}", "same_day", lines=[("1", "SKU-1", 1)],
                                                              ship_to=ship_to), headers=integration).json()
        placed += [a["location"] for a in o["lines"][0]["allocations"]]
    assert len(placed) == 5
    assert placed.count("S2") <= 1 and placed.count("S1") <= 2


def test_batch_gives_the_last_store_units_to_the_same_day_order(client, hq, integration):
    """The motivating case: a standard order takes a store's last unit, then a same-day order needs it."""
    retailer.load(client, hq, integration)
    nyc = dict(retailer.LOCATIONS[1], code="S9", name="New York", lat=40.7143, lon=-74.006)
    assert client.put("/api/v1/locations", json={"locations": [nyc]}, headers=integration).json()["upserted"] == 1
    client.put("/api/v1/products", json={"products": [dict(sku="SKU-M", name="Last one", barcodes=["4006381333900"])]},
               headers=integration)
    client.put("/api/v1/inventory/levels", json={"mode": "snapshot", "rows": [
        dict(location="S1", sku="SKU-M", on_hand=1), dict(location="S9", sku="SKU-M", on_hand=1)]}, headers=integration)
    near_s1 = {"lat": 42.66, "lon": -73.77}
    std = client.post("/api/v1/orders", json=retailer.order("MOT-STD", "standard", lines=[("1", "SKU-M", 1)],
                                                            ship_to=near_s1), headers=integration).json()
    assert [a["location"] for a in std["lines"][0]["allocations"]] == ["S1"], std["explanation"]["summary"]
    sd = client.post("/api/v1/orders", json=retailer.order("MOT-SD", "same_day", lines=[("1", "SKU-M", 1)],
                                                           ship_to=near_s1), headers=integration).json()
    assert [a["location"] for a in sd["lines"][0]["allocations"]] == ["S9"], "real time alone cannot help it"
    result = client.post("/api/v1/routing/batch", headers=hq).json()
    assert result["changed"] == 2 and result["cost_after"] < result["cost_before"]
    sd = client.get(f"/api/v1/orders/{sd['id']}", headers=integration).json()
    std = client.get(f"/api/v1/orders/{std['id']}", headers=integration).json()
    live = [a for a in sd["lines"][0]["allocations"] if a["state"] != "replaced"]
    assert [(a["location"], a["state"]) for a in live] == [("S1", "released")]
    assert [a["location"] for a in std["lines"][0]["allocations"] if a["state"] == "reserved"] == ["S9"]
    assert "batch" in std["explanation"] and std["explanation"]["batch"]["summary"]
    assert "order.rebatched" in [h["kind"] for h in std["history"]]
