"""Warehouses, 3PLs and suppliers fulfil through the node API: keys scoped to their locations, a work feed with a
cursor, shipments confirmed exactly once, lines given back and re-routed at once."""
from __future__ import annotations

from tests.conftest import login
from tests.nodes import helpers as h


def test_node_keys_are_shown_once_scoped_to_their_locations_and_revocable(client, hq, integration):
    h.load(client, hq, integration)
    r = client.post("/api/v1/api-keys", json={"name": "W1 WMS", "role": "node", "locations": ["W1"]}, headers=hq)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["key"].startswith("sl_") and created["locations"] == ["W1"] and created["role"] == "node"
    w1 = {"X-API-Key": created["key"]}
    listed = client.get("/api/v1/api-keys", headers=hq).json()["items"]
    mine = [k for k in listed if k["id"] == created["id"]]
    assert mine and "key" not in mine[0] and created["key"] not in str(listed)

    assert client.get("/api/v1/locations/W1/work", headers=w1).status_code == 200
    other = client.get("/api/v1/locations/T1/work", headers=w1)
    assert other.status_code == 403 and other.json()["code"] == "wrong_location"
    assert client.post("/api/v1/locations/T1/rejections", headers=w1, json={"lines": [
        {"allocation_id": "alc_x", "reason": "damaged"}]}).status_code == 403
    assert client.get("/api/v1/locations/S1/work", headers=hq).json()["code"] == "not_a_node"
    assert client.get("/api/v1/locations/NOPE/work", headers=hq).status_code == 404
    assert client.get("/api/v1/locations/W1/work", headers=w1, params={"cursor": "x"}).status_code == 422
    assert client.get("/api/v1/orders", headers=w1).status_code in (403, 405)

    # Only HQ manages keys; a node key for a store, or without locations, is refused.
    assert client.post("/api/v1/api-keys", json={"name": "x"}, headers=integration).status_code == 403
    assert client.post("/api/v1/api-keys", json={"name": "x"}, headers=w1).status_code == 403
    mia = login(client, "s1-mia", "3333")
    assert client.get("/api/v1/api-keys", headers=mia).status_code == 403
    bad = client.post("/api/v1/api-keys", json={"name": "x", "role": "node", "locations": ["S1"]}, headers=hq)
    assert bad.status_code == 422 and bad.json()["code"] == "not_a_node"
    assert client.post("/api/v1/api-keys", json={"name": "x", "role": "node"}, headers=hq).status_code == 422

    r = client.post(f"/api/v1/api-keys/{created['id']}/revoke", headers=hq)
    assert r.status_code == 200 and r.json()["revoked"] is True
    assert client.get("/api/v1/locations/W1/work", headers=w1).status_code == 401


def test_work_feed_shipments_and_replays(client, hq, integration):
    h.load(client, hq, integration, w1=10)
    w1 = h.node_key(client, hq, "W1")
    o = h.order(client, integration, "N-1", qty=3)
    assert h.allocations(o) == [("W1", 3, "reserved")]
    page = client.get("/api/v1/locations/W1/work", headers=w1).json()
    assert page["items"] == [] and page["has_more"] is False, "reserved lines are not the node's work yet"
    assert h.release_all() >= 1

    page = client.get("/api/v1/locations/W1/work", headers=w1).json()
    [item] = page["items"]
    assert {k: item[k] for k in ("order_id", "order_number", "line_id", "sku", "quantity", "state",
                                 "delivery_method")} == {
        "order_id": o["id"], "order_number": "N-1", "line_id": "1", "sku": "SKU-9", "quantity": 3,
        "state": "released", "delivery_method": "standard"}
    assert item["ship_to"] == {"zip": "12207"} and item["promise_by"]
    cursor = page["cursor"]
    assert client.get("/api/v1/locations/W1/work", headers=w1, params={"cursor": cursor}).json()["items"] == []
    assert h.get_order(client, integration, o["id"])["status"] == "released"

    # Two of three shipped: the shipped units become their own fulfilled allocation, one stays to ship.
    body = {"shipment_id": "SHP-1", "carrier": "UPS", "tracking": ["1Z999"], "weight_kg": 2.8,
            "lines": [{"allocation_id": item["allocation_id"], "quantity": 2}]}
    r = client.post("/api/v1/locations/W1/shipments", json=body, headers=w1)
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["replayed"] is False and len(first["packages"]) == 1
    assert [(x["quantity"], x["order_status"]) for x in first["lines"]] == [(2, "released")]
    assert h.position("W1", "SKU-9") == (8, 1, False)
    assert sorted(h.allocations(h.get_order(client, integration, o["id"]))) == [("W1", 1, "released"),
                                                                              ("W1", 2, "fulfilled")]
    # The partner sends it again (a timeout on their side): same answer, nothing changes.
    again = client.post("/api/v1/locations/W1/shipments", json=body, headers=w1).json()
    assert again["replayed"] is True and {**again, "replayed": False} == first
    assert h.position("W1", "SKU-9") == (8, 1, False)

    changes = client.get("/api/v1/locations/W1/work", headers=w1, params={"cursor": cursor}).json()
    assert sorted((x["quantity"], x["state"]) for x in changes["items"]) == [(1, "released"), (2, "fulfilled")]

    # Bad lines refuse the whole shipment and change nothing.
    over = client.post("/api/v1/locations/W1/shipments", headers=w1, json={
        "shipment_id": "SHP-2", "carrier": "UPS", "lines": [{"order_id": o["id"], "line_id": "1", "quantity": 5}]})
    assert over.status_code == 409 and over.json()["code"] == "over_quantity"
    unknown = client.post("/api/v1/locations/W1/shipments", headers=w1, json={
        "shipment_id": "SHP-2", "carrier": "UPS", "lines": [{"allocation_id": "alc_nope", "quantity": 1}]})
    assert unknown.status_code == 404
    assert client.post("/api/v1/locations/W1/shipments", headers=w1, json={
        "shipment_id": "SHP-2", "carrier": "UPS", "lines": [{"quantity": 1}]}).status_code == 422

    # The last unit, named by order and line: the order is shipped, its history says so.
    r = client.post("/api/v1/locations/W1/shipments", headers=w1, json={
        "shipment_id": "SHP-2", "carrier": "UPS", "tracking": ["1Z998"],
        "lines": [{"order_id": o["id"], "line_id": "1", "quantity": 1}]})
    assert r.status_code == 200, r.text
    assert r.json()["lines"][0]["order_status"] == "shipped"
    done = h.get_order(client, integration, o["id"])
    assert done["status"] == "shipped" and done["lines"][0]["status"] == "shipped"
    kinds = [e["kind"] for e in done["history"]]
    assert kinds.count("shipment.confirmed") == 2 and kinds[-1] == "order.shipped"
    assert h.position("W1", "SKU-9") == (7, 0, False)


def test_a_node_gives_a_line_back_and_it_is_rerouted_at_once_never_back_there(client, hq, integration):
    h.load(client, hq, integration, w1=10, t1=5)
    o = h.order(client, integration, "N-2", qty=2)
    [(first_node, _, _)] = h.allocations(o)
    other = "T1" if first_node == "W1" else "W1"
    key = h.node_key(client, hq, first_node)
    h.release_all()
    [item] = client.get(f"/api/v1/locations/{first_node}/work", headers=key).json()["items"]

    r = client.post(f"/api/v1/locations/{first_node}/rejections", headers=key, json={"lines": [
        {"allocation_id": item["allocation_id"], "reason": "not_found"}]})
    assert r.status_code == 200, r.text
    [res] = r.json()["results"]
    assert res["quantity"] == 2 and res["reason"] == "not_found" and res["rerouted_to"] == [other]
    after = h.get_order(client, integration, o["id"])
    assert h.allocations(after)[0] == (first_node, 2, "rejected")
    assert [(loc, q) for loc, q, st in h.allocations(after) if st in ("reserved", "released")] == [(other, 2)]
    assert h.position(first_node, "SKU-9")[2] is True, "not found: that node's ATP is 0 until a count or feed"
    assert "line.rejected" in [e["kind"] for e in after["history"]]

    # The given-back allocation shows in the node's feed as rejected; it cannot be shipped or rejected again.
    feed = client.get(f"/api/v1/locations/{first_node}/work", headers=key).json()["items"]
    assert [(x["allocation_id"], x["state"]) for x in feed] == [(item["allocation_id"], "rejected")]
    again = client.post(f"/api/v1/locations/{first_node}/rejections", headers=key, json={"lines": [
        {"allocation_id": item["allocation_id"], "reason": "damaged"}]})
    assert again.status_code == 409 and again.json()["code"] == "allocation_not_live"
    ship = client.post(f"/api/v1/locations/{first_node}/shipments", headers=key, json={
        "shipment_id": "S", "carrier": "UPS", "lines": [{"allocation_id": item["allocation_id"], "quantity": 1}]})
    assert ship.status_code == 409

    # The other node, which got the line, gives one of two back as damaged: it has nowhere else to go.
    key2 = h.node_key(client, hq, other)
    h.release_all()
    [item2] = [x for x in client.get(f"/api/v1/locations/{other}/work", headers=key2).json()["items"]
               if x["state"] == "released"]
    on_hand = h.position(other, "SKU-9")[0]
    r = client.post(f"/api/v1/locations/{other}/rejections", headers=key2, json={"lines": [
        {"allocation_id": item2["allocation_id"], "quantity": 1, "reason": "damaged", "note": "crushed box"}]})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["rerouted_to"] == [], "nobody else has SKU-9 left"
    assert r.json()["results"][0]["line_status"] == "released", "the other unit is still on its way"
    assert h.position(other, "SKU-9")[0] == on_hand - 1, "damaged: written off"
    after = h.get_order(client, integration, o["id"])
    live = [(loc, q, st) for loc, q, st in h.allocations(after) if st in ("reserved", "released")]
    assert live == [(other, 1, "released")]
    bad = client.post(f"/api/v1/locations/{other}/rejections", headers=key2, json={"lines": [
        {"allocation_id": item2["allocation_id"], "reason": "other"}]})
    assert bad.status_code == 422, "reason 'other' needs a note"


def test_a_cancelled_order_shows_in_the_feed_and_cannot_be_shipped(client, hq, integration):
    h.load(client, hq, integration, w1=10)
    w1 = h.node_key(client, hq, "W1")
    o = h.order(client, integration, "N-3", qty=1)
    h.release_all()
    page = client.get("/api/v1/locations/W1/work", headers=w1).json()
    [item] = page["items"]
    assert client.post(f"/api/v1/orders/{o['id']}/cancel", headers=integration).status_code == 200
    changes = client.get("/api/v1/locations/W1/work", headers=w1, params={"cursor": page["cursor"]}).json()
    assert [(x["allocation_id"], x["state"]) for x in changes["items"]] == [(item["allocation_id"], "cancelled")]
    r = client.post("/api/v1/locations/W1/shipments", headers=w1, json={
        "shipment_id": "S-9", "carrier": "UPS", "lines": [{"allocation_id": item["allocation_id"], "quantity": 1}]})
    assert r.status_code == 409 and "do not ship" in r.json()["message"]


def test_the_work_feed_pages_in_order(client, hq, integration):
    h.load(client, hq, integration, w1=50)
    w1 = h.node_key(client, hq, "W1")
    ids = [h.order(client, integration, f"N-P{i}")["id"] for i in range(5)]
    h.release_all()
    seen, cursor, pages = [], None, 0
    while True:
        page = client.get("/api/v1/locations/W1/work", headers=w1, params={"cursor": cursor, "limit": 2}).json()
        seen += [x["order_id"] for x in page["items"]]
        cursor, pages = page["cursor"], pages + 1
        if not page["has_more"]:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5 and pages == 3
    assert client.get("/api/v1/locations/W1/work", headers=w1, params={"cursor": cursor}).json()["items"] == []


def test_a_line_left_partly_placed_by_a_rejection_gets_its_rest_when_stock_arrives(client, hq, integration):
    h.load(client, hq, integration, w1=2)
    o = h.order(client, integration, "N-PART", qty=2)
    assert h.allocations(o) == [("W1", 2, "reserved")]
    w1 = h.node_key(client, hq, "W1")
    h.release_all()
    [item] = client.get("/api/v1/locations/W1/work", headers=w1).json()["items"]
    r = client.post("/api/v1/locations/W1/rejections", headers=w1, json={"lines": [
        {"allocation_id": item["allocation_id"], "quantity": 1, "reason": "damaged"}]})
    assert r.status_code == 200 and r.json()["results"][0]["rerouted_to"] == [], r.text

    h.stock(client, integration, T1=3)  # the feed retries waiting lines of SKU-9, partly placed ones too
    after = h.get_order(client, integration, o["id"])
    live = sorted((loc, q) for loc, q, st in h.allocations(after) if st in ("reserved", "released"))
    assert live == [("T1", 1), ("W1", 1)], h.allocations(after)
    assert h.position("T1", "SKU-9") == (3, 1, False)


def test_a_line_no_single_node_can_fill_is_shared_by_two(client, hq, integration):
    h.load(client, hq, integration, w1=3, t1=4)
    r = client.post("/api/v1/promise", headers=integration, json={
        "channel": "web", "ship_to": {"zip": "12207"}, "lines": [{"sku": "SKU-9", "quantity": 5}]})
    standard = next(x for x in r.json()["options"] if x["delivery_method"] == "standard")
    assert standard["available"] and standard["packages"] == 2, "the web shop is promised what routing will do"
    assert sorted(p["location"] for p in standard["plan"]) == ["T1", "W1"]
    o = h.order(client, integration, "N-SHARE", qty=5)
    assert sorted(h.allocations(o)) == [("T1", 4, "reserved"), ("W1", 1, "reserved")], "fewest packages"
    assert o["lines"][0]["status"] == "routed" and o["status"] == "routed"
    assert h.position("T1", "SKU-9") == (4, 4, False) and h.position("W1", "SKU-9") == (3, 1, False)
    too_many = h.order(client, integration, "N-SHARE-2", qty=3)  # 2 left in the chain
    assert too_many["lines"][0]["status"] == "backordered" and h.allocations(too_many) == []
