"""Order capture: idempotency, validation, cancellation, history."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests import retailer


def test_same_order_twice_is_one_order(client, hq, integration):
    retailer.load(client, hq, integration, stock=False)
    body = retailer.order("W-1001")
    first = client.post("/api/v1/orders", json=body, headers=integration)
    again = client.post("/api/v1/orders", json=body, headers=integration)
    assert first.status_code == 201, first.text
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other_channel = client.post("/api/v1/orders", json={**body, "channel": "app"}, headers=integration)
    assert other_channel.status_code == 201 and other_channel.json()["id"] != first.json()["id"]


def test_concurrent_retries_create_one_order(client, hq, integration):
    retailer.load(client, hq, integration, stock=False)
    body = retailer.order("W-RACE")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: client.post("/api/v1/orders", json=body, headers=integration), range(8)))
    assert sorted(r.status_code for r in results).count(201) == 1
    assert {r.json()["id"] for r in results} == {results[0].json()["id"]}


def test_order_reads_back_with_contract_fields(client, hq, integration):
    retailer.load(client, hq, integration, stock=False)
    created = client.post("/api/v1/orders", json=retailer.order("W-2", "next_day", lines=[("1", "SKU-1", 2),
                                                                                          ("2", "SKU-2", 1)]),
                          headers=integration).json()
    got = client.get(f"/api/v1/orders/{created['id']}", headers=integration)
    assert got.status_code == 200
    o = got.json()
    assert {"id", "channel", "external_id", "status", "delivery_method", "promise_by", "lines", "explanation",
            "history", "tracking_url"} <= set(o)
    assert o["delivery_method"] == "next_day" and o["promise_by"].endswith(("Z", "+00:00"))
    assert [(ln["line_id"], ln["sku"], ln["quantity"]) for ln in o["lines"]] == [("1", "SKU-1", 2), ("2", "SKU-2", 1)]
    assert o["history"][0]["kind"] == "order.created"


def test_bad_orders_get_a_reason_and_write_nothing(client, hq, integration):
    retailer.load(client, hq, integration, stock=False)
    cases = {
        "unknown_sku": retailer.order("B-1", lines=[("1", "NOPE", 1)]),
        "invalid_request": retailer.order("B-2", lines=[("1", "SKU-1", -1)]),
        "unknown_zip": retailer.order("B-3", ship_to={"zip": "00000"}),
        "unknown_location": retailer.order("B-4", "pickup", pickup_location="NOWHERE"),
        "pickup_not_offered": retailer.order("B-5", "pickup", pickup_location="W1"),
    }
    for code, body in cases.items():
        r = client.post("/api/v1/orders", json=body, headers=integration)
        assert 400 <= r.status_code < 500, (code, r.status_code, r.text)
        err = r.json()
        assert err["code"] == code, (code, err)
        assert err["message"] and isinstance(err["details"], dict)
    missing_ship_to = retailer.order("B-6")
    del missing_ship_to["ship_to"]
    r = client.post("/api/v1/orders", json=missing_ship_to, headers=integration)
    assert r.status_code == 422 and "ship_to" in r.json()["message"]
    r = client.post("/api/v1/orders", content=b"{not json", headers={**integration, "content-type": "application/json"})
    assert r.status_code == 422
    for ext in ("B-1", "B-2", "B-3", "B-4", "B-5", "B-6"):
        r = client.post("/api/v1/orders", json=retailer.order(ext), headers=integration)
        assert r.status_code == 201, "a refused order must leave nothing behind that blocks a corrected retry"


def test_oversized_body_is_refused(client, integration):
    huge = b'{"channel": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    r = client.post("/api/v1/orders", content=huge, headers={**integration, "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


def test_cancel_records_history_and_is_final(client, hq, integration):
    retailer.load(client, hq, integration, stock=False)
    o = client.post("/api/v1/orders", json=retailer.order("C-1"), headers=integration).json()
    r = client.post(f"/api/v1/orders/{o['id']}/cancel", json={"reason": "customer changed mind"}, headers=integration)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert all(ln["status"] == "cancelled" for ln in r.json()["lines"])
    kinds = [h["kind"] for h in r.json()["history"]]
    assert kinds[0] == "order.created" and kinds[-1] == "order.cancelled"
    again = client.post(f"/api/v1/orders/{o['id']}/cancel", headers=integration)
    assert again.status_code == 200 and [h["kind"] for h in again.json()["history"]].count("order.cancelled") == 1
    assert client.get("/api/v1/orders/nope", headers=integration).status_code == 404
