"""The order path's shortcuts (backend/services/orders.py, routing.py) answer exactly as the slow way would."""
from __future__ import annotations

from datetime import datetime

from tests import retailer


def test_the_created_order_reads_back_as_it_was_answered(client, hq, integration):
    """POST answers from what the transaction wrote; a GET reads the database: the same order either way."""
    retailer.load(client, hq, integration)
    for method, extra in (("standard", {}), ("pickup", {"pickup_location": "S1"}), ("same_day", {})):
        body = retailer.order(f"RB-{method}", method, lines=[("2", "SKU-1", 1), ("1", "SKU-2", 1)], **extra)
        if method == "pickup":
            body.pop("ship_to", None)
        r = client.post("/api/v1/orders", json=body, headers=integration)
        assert r.status_code == 201, r.text
        got = client.get(f"/api/v1/orders/{r.json()['id']}", headers=integration)
        assert got.status_code == 200
        posted, read = r.json(), got.json()
        # the same instant either way (the answer to the POST has always kept the promise's local offset)
        assert datetime.fromisoformat(posted.pop("promise_by")) == datetime.fromisoformat(read.pop("promise_by"))
        assert read == posted
        assert [ln["line_id"] for ln in posted["lines"]] == ["1", "2"]
        assert [h["kind"] for h in posted["history"]] == ["order.created", "order.routed"]


def test_real_time_routing_counts_this_process_orders_against_capacity_at_once(client, hq, integration):
    """Capacity used is re-counted at most once a second, but an order this process just placed counts at once:
    three same-day orders in a row never put more than S1's two orders a day on S1."""
    retailer.load(client, hq, integration)
    s1 = dict(retailer.LOCATIONS[0], daily_capacity=2)
    assert client.put("/api/v1/locations", json={"locations": [s1]}, headers=integration).status_code == 200
    placed = []
    for i in range(3):
        r = client.post("/api/v1/orders", json=retailer.order(f"CAP-{i}", "same_day", lines=[("1", "SKU-2", 1)]),
                        headers=integration)
        assert r.status_code == 201, r.text
        placed += [a["location"] for a in r.json()["lines"][0]["allocations"]]
    assert placed[0] == "S1" and placed.count("S1") <= 2, placed
