"""Availability near a customer, positions by role, and channel exposure rules."""
from __future__ import annotations

from tests import retailer
from tests.conftest import login
from tests.inventory.util import availability, feed

AVAIL = "/api/v1/inventory/availability"
CHANNELS = "/api/v1/channels"


def test_by_zip_with_radius_nearest_first(client, hq, integration):
    retailer.load(client, hq, integration)
    a = availability(client, integration, "SKU-1", channel="web", near="12207", radius_km=50)
    assert (a["sku"], a["channel"]) == ("SKU-1", "web")
    assert [x["location"] for x in a["locations"]] == ["S1", "S2"]  # W1 (Harrisburg) is ~370 km away
    assert [x["atp"] for x in a["locations"]] == [2, 1] and a["total_atp"] == 3
    d = [x["distance_km"] for x in a["locations"]]
    assert d == sorted(d) and d[0] < 5 and 15 < d[1] < 35
    wide = availability(client, integration, "SKU-1", near="12207", radius_km=1000)
    assert [x["location"] for x in wide["locations"]] == ["S1", "S2", "W1"] and wide["total_atp"] == 103


def test_by_lat_lon_and_without_a_point(client, hq, integration):
    retailer.load(client, hq, integration)
    lat, lon = retailer.TROY
    a = availability(client, hq, "SKU-1", near=f"{lat},{lon}", radius_km=30)
    assert [x["location"] for x in a["locations"]] == ["S1", "S2"]
    assert a["locations"][0]["distance_km"] < a["locations"][1]["distance_km"]
    every = availability(client, hq, "SKU-1")
    assert {x["location"] for x in every["locations"]} == {"S1", "S2", "W1"}
    assert all(x["distance_km"] is None for x in every["locations"])
    ana = login(client, "s1-ana", "1111")  # any authenticated caller
    assert availability(client, ana, "SKU-3")["total_atp"] == 104


def test_only_sellable_stock_shows(client, hq, integration):
    retailer.load(client, hq, integration)
    client.put("/api/v1/locations", json={"locations": [dict(retailer.LOCATIONS[1], active=False)]},
               headers=integration)
    feed(client, integration, [dict(location="S1", sku="SKU-1", on_hand=2, safety_stock=1, holdback=1)])
    a = availability(client, hq, "SKU-1", near="12207")
    assert [x["location"] for x in a["locations"]] == ["W1"]


def test_bad_queries(client, hq, integration):
    retailer.load(client, hq, integration)
    assert client.get(AVAIL, params={"sku": "SKU-1"}).status_code == 401
    cases = [({"sku": "NOPE"}, 404, "unknown_sku"), ({"sku": "SKU-1", "near": "00000"}, 422, "unknown_zip"),
             ({"sku": "SKU-1", "near": "95,10"}, 422, "invalid_point"),
             ({"sku": "SKU-1", "radius_km": 10}, 422, "near_required"), ({}, 422, "invalid_request")]
    for params, status, code in cases:
        r = client.get(AVAIL, params=params, headers=hq)
        assert (r.status_code, r.json()["code"]) == (status, code), params


def test_channel_exposure_rules(client, hq, integration):
    retailer.load(client, hq, integration)
    feed(client, integration, [dict(location="S2", sku="SKU-1", on_hand=10)])
    r = client.put(CHANNELS, json={"channels": [
        dict(code="web", name="Web shop", rules=[dict(location_type="store", exposure_pct=50),
                                                 dict(location="S1", exposure_pct=0)]),
        dict(code="market", rules=[dict(exposure_pct=10)]),
        dict(code="bad", rules=[dict(location="NOWHERE", exposure_pct=5)]),
        dict(code="worse", rules=[dict(location="S1", location_type="store", exposure_pct=5)]),
        dict(code="pct", rules=[dict(exposure_pct=150)]),
    ]}, headers=hq)
    assert r.status_code == 200, r.text
    assert r.json()["upserted"] == 2
    assert [(x["row"], x["code"]) for x in r.json()["rejected"]] == [
        (3, "unknown_location"), (4, "invalid_row"), (5, "invalid_row")]
    web = availability(client, hq, "SKU-1", channel="web")
    assert {x["location"]: x["atp"] for x in web["locations"]} == {"S2": 5, "W1": 100}  # S1 hidden, S2 half
    market = availability(client, hq, "SKU-1", channel="market")
    assert {x["location"]: x["atp"] for x in market["locations"]} == {"W1": 10, "S2": 1}
    untouched = availability(client, hq, "SKU-1", channel="callcentre")
    assert untouched["total_atp"] == 2 + 10 + 100
    listed = client.get(CHANNELS, headers=integration).json()["channels"]
    assert [(c["code"], len(c["rules"])) for c in listed] == [("market", 1), ("web", 2)]
    # Upsert by code: rules given replace the old ones; rules omitted keep them.
    client.put(CHANNELS, json={"channels": [dict(code="web", rules=[])]}, headers=hq)
    client.put(CHANNELS, json={"channels": [dict(code="market", name="Marketplace")]}, headers=hq)
    listed = {c["code"]: c for c in client.get(CHANNELS, headers=hq).json()["channels"]}
    assert listed["web"]["rules"] == [] and listed["market"]["name"] == "Marketplace"
    assert len(listed["market"]["rules"]) == 1
    assert availability(client, hq, "SKU-1", channel="web")["total_atp"] == 112
    r = client.put(CHANNELS, json={"channels": [dict(code="x")]}, headers=integration)
    assert r.status_code == 403


def test_positions_by_role(client, hq, integration):
    retailer.load(client, hq, integration)
    page = client.get("/api/v1/inventory/positions", params={"limit": 2, "offset": 2}, headers=integration).json()
    assert page["total"] == 7 and [(x["location"], x["sku"]) for x in page["items"]] == [("S2", "SKU-1"),
                                                                                          ("S3", "SKU-3")]
    ana = login(client, "s1-ana", "1111")
    mine = client.get("/api/v1/inventory/positions", headers=ana).json()
    assert {x["location"] for x in mine["items"]} == {"S1"} and mine["total"] == 2
    assert {"on_hand", "reserved", "safety_stock", "holdback", "blocked", "atp"} <= set(mine["items"][0])
    r = client.get("/api/v1/inventory/positions", params={"location": "S2"}, headers=ana)
    assert r.status_code == 403 and r.json()["code"] == "wrong_location"


def test_routing_and_promises_keep_each_channel_to_its_share(client, hq, integration):
    """The marketplace may not sell Albany's (S1) stock: its same-day promise and its orders go without it."""
    from tests.promise.test_options import next_weekday, set_local_time

    retailer.load(client, hq, integration)
    set_local_time(next_weekday(1, 10))  # a Tuesday morning in Albany, well before the same-day cut-off
    r = client.put(CHANNELS, json={"channels": [dict(code="market", rules=[dict(location="S1", exposure_pct=0)])]},
                   headers=hq)
    assert r.status_code == 200 and not r.json()["rejected"], r.text

    def same_day(channel: str) -> dict:
        body = {"channel": channel, "ship_to": {"zip": "12207"}, "lines": [{"sku": "SKU-2", "quantity": 1}]}
        r = client.post("/api/v1/promise", json=body, headers=integration)
        assert r.status_code == 200, r.text
        return next(o for o in r.json()["options"] if o["delivery_method"] == "same_day")

    assert same_day("web")["available"], "S1 holds 5 of SKU-2 a few km away"
    assert not same_day("market")["available"], "S1's stock is not the marketplace's to sell"

    def placed(external_id: str, channel: str) -> list[str]:
        r = client.post("/api/v1/orders", json=retailer.order(external_id, "same_day", lines=[("1", "SKU-2", 1)],
                                                              channel=channel), headers=integration)
        assert r.status_code == 201, r.text
        return [a["location"] for a in r.json()["lines"][0]["allocations"]]

    assert placed("CH-W1", "web") == ["S1"]
    assert "S1" not in placed("CH-M1", "market")
