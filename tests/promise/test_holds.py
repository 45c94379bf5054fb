"""Soft holds: a quote keeps its units for a few minutes; the order placed with it gets that plan."""
from __future__ import annotations

from datetime import datetime

from tests import retailer
from tests.promise.test_options import ask, option


def atp(client, key, sku: str) -> dict[str, int]:
    body = client.get("/api/v1/inventory/availability", params={"sku": sku, "channel": "web"}, headers=key).json()
    return {x["location"]: x["atp"] for x in body["locations"]}


def place(client, key, ext: str, method: str, lines, status=201, **kw) -> dict:
    r = client.post("/api/v1/orders", json=retailer.order(ext, method, lines=lines, **kw), headers=key)
    assert r.status_code == status, r.text
    return r.json()


def allocations(o: dict) -> list[tuple[str, str, int]]:
    return sorted((ln["line_id"], a["location"], a["quantity"]) for ln in o["lines"] for a in ln["allocations"]
                  if a["state"] not in ("cancelled", "replaced", "rejected"))


def test_a_held_quote_is_honoured_by_the_order_placed_with_it(client, hq, integration):
    retailer.load(client, hq, integration)
    before = atp(client, integration, "SKU-1")
    assert before["S1"] == 2
    # Both of S1's units of SKU-1, for pickup at S1: the hold takes them off the shelf for everyone else.
    q = ask(client, integration, [("SKU-1", 2)], hold=True)
    s1 = option(q, "pickup", "S1")
    assert q["held"] and s1["held"] and s1["plan"] == [{"location": "S1", "lines": [{"sku": "SKU-1", "quantity": 2}]}]
    assert atp(client, integration, "SKU-1").get("S1", 0) == 0

    # Another customer's same-day order next door cannot have them.
    other = place(client, integration, "H-OTHER", "same_day", [("1", "SKU-1", 2)])
    assert "S1" not in {loc for _, loc, _ in allocations(other)}

    o = place(client, integration, "H-1", "pickup", [("1", "SKU-1", 2)], pickup_location="S1", quote_id=q["quote_id"])
    assert allocations(o) == [("1", "S1", 2)]
    assert o["explanation"]["decided_by"] == "quote"
    assert datetime.fromisoformat(o["promise_by"]) == datetime.fromisoformat(s1["promise_by"]), \
        "the order keeps the promise the customer was shown"
    got = client.get(f"/api/v1/promise/{q['quote_id']}", headers=integration).json()
    assert got["status"] == "taken" and got["order_id"] == o["id"] and got["held"] is False
    # Only the order's own units stay reserved: what the hold kept for the other options went back.
    after = atp(client, integration, "SKU-1")
    assert after.get("S1", 0) == 0
    assert after["W1"] == before["W1"] - sum(q for _, loc, q in allocations(other) if loc == "W1")
    # A quote serves one order: a second order with it is routed on its own.
    o2 = place(client, integration, "H-2", "standard", [("1", "SKU-1", 2)], quote_id=q["quote_id"])
    assert o2["explanation"]["decided_by"] == "realtime"


def test_an_unheld_quote_is_honoured_when_its_units_are_still_there(client, hq, integration):
    retailer.load(client, hq, integration)
    q = ask(client, integration, [("SKU-2", 1), ("SKU-3", 1)])
    std = option(q, "standard")
    assert q["held"] is False and std["available"] and not std["held"]
    planned = sorted((ln["sku"], stop["location"]) for stop in std["plan"] for ln in stop["lines"])
    o = place(client, integration, "U-1", "standard", [("a", "SKU-2", 1), ("b", "SKU-3", 1)], quote_id=q["quote_id"])
    assert o["explanation"]["decided_by"] == "quote"
    sku_of = {"a": "SKU-2", "b": "SKU-3"}
    assert sorted((sku_of[ln], loc) for ln, loc, _ in allocations(o)) == planned


def test_a_quote_for_another_cart_or_method_releases_its_hold(client, hq, integration):
    retailer.load(client, hq, integration)
    before = atp(client, integration, "SKU-2")
    q = ask(client, integration, [("SKU-2", 3)], hold=True)
    assert q["held"] and atp(client, integration, "SKU-2") != before
    o = place(client, integration, "X-1", "standard", [("1", "SKU-2", 1)], quote_id=q["quote_id"])  # other cart
    assert o["explanation"]["decided_by"] == "realtime"
    assert client.get(f"/api/v1/promise/{q['quote_id']}", headers=integration).json()["status"] == "released"
    after = atp(client, integration, "SKU-2")
    assert sum(before.values()) - sum(after.values()) == 1, "only the order's one unit stays reserved"


def test_an_expired_hold_is_released_by_the_scheduled_job(client, hq, integration):
    from backend import clock
    from backend.scheduler import run_job

    retailer.load(client, hq, integration)
    before = atp(client, integration, "SKU-1")
    q = ask(client, integration, [("SKU-1", 2)], hold=True)
    assert q["held"] and atp(client, integration, "SKU-1") != before
    clock.shift(9 * 60)
    assert run_job("holds") == "ran"
    assert atp(client, integration, "SKU-1") != before, "still within its 10 minutes"
    clock.shift(2 * 60)
    assert run_job("holds") == "ran"
    assert atp(client, integration, "SKU-1") == before
    got = client.get(f"/api/v1/promise/{q['quote_id']}", headers=integration).json()
    assert got["status"] == "expired" and got["held"] is False
    assert all(not o["held"] for o in got["options"])
    # The order that comes too late is routed on its own, and nothing is released twice.
    o = place(client, integration, "E-1", "pickup", [("1", "SKU-1", 2)], pickup_location="S1",
              quote_id=q["quote_id"])
    assert o["explanation"]["decided_by"] == "realtime"
    assert allocations(o) == [("1", "S1", 2)]
    assert atp(client, integration, "SKU-1")["W1"] == before["W1"]


def test_an_expired_hold_is_released_when_the_quote_is_read(client, hq, integration):
    from backend import clock

    retailer.load(client, hq, integration)
    before = atp(client, integration, "SKU-2")
    q = ask(client, integration, [("SKU-2", 1)], hold=True)
    assert atp(client, integration, "SKU-2") != before
    clock.shift(11 * 60)
    got = client.get(f"/api/v1/promise/{q['quote_id']}", headers=integration).json()
    assert got["status"] == "expired"
    assert atp(client, integration, "SKU-2") == before
    assert client.get("/api/v1/promise/quo_nope", headers=integration).status_code == 404
