"""Master data over the API: bulk upserts, row errors, CSV, listing."""
from __future__ import annotations

from tests import retailer


def test_locations_upsert_reports_bad_rows_and_applies_good_ones(client, integration):
    rows = [dict(retailer.LOCATIONS[0]), dict(code="", name="x", lat=1, lon=1),
            dict(retailer.LOCATIONS[1], same_day_cutoff="25:00"), dict(retailer.LOCATIONS[3], timezone="Mars/Base")]
    r = client.put("/api/v1/locations", json={"locations": rows}, headers=integration)
    assert r.status_code == 200
    body = r.json()
    assert body["upserted"] == 1
    assert [(x["row"], x["code"]) for x in body["rejected"]] == [(2, "invalid_row"), (3, "invalid_row"),
                                                                 (4, "invalid_row")]
    assert "same_day_cutoff" in body["rejected"][1]["message"] and "Mars/Base" in body["rejected"][2]["message"]
    listed = client.get("/api/v1/locations", headers=integration).json()
    assert [x["code"] for x in listed["items"]] == ["S1"] and listed["total"] == 1
    # Upsert by code: a second put changes the row, never duplicates it.
    changed = dict(retailer.LOCATIONS[0], daily_capacity=7)
    client.put("/api/v1/locations", json={"locations": [changed]}, headers=integration)
    items = client.get("/api/v1/locations", headers=integration).json()["items"]
    assert len(items) == 1 and items[0]["daily_capacity"] == 7


def test_locations_from_csv(client, integration):
    csv = ("code,name,type,lat,lon,timezone,ships,pickup,same_day_radius_km,same_day_cutoff,daily_capacity\n"
           "C1,Csv One,store,42.1,-73.9,America/New_York,true,true,20,15:00,80\n"
           "C2,Csv Two,store,not-a-number,-73.9,America/New_York,true,true,20,15:00,80\n")
    r = client.put("/api/v1/locations", content=csv, headers={**integration, "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["upserted"] == 1 and r.json()["rejected"][0]["row"] == 2
    loc = client.get("/api/v1/locations", headers=integration).json()["items"][0]
    assert (loc["code"], loc["pickup"], loc["daily_capacity"], loc["same_day_cutoff"]) == ("C1", True, 80, "15:00")


def test_products_and_barcodes(client, integration):
    r = client.put("/api/v1/products", json={"products": retailer.PRODUCTS + [
        dict(sku="", name="bad"), dict(sku="SKU-9", name="Thief", barcodes=["0012345678905"])]}, headers=integration)
    body = r.json()
    assert body["upserted"] == 3
    assert {(x["row"], x["code"]) for x in body["rejected"]} == {(4, "invalid_row"), (5, "duplicate_barcode")}
    page = client.get("/api/v1/products", params={"q": "jacket"}, headers=integration).json()
    assert [(p["sku"], p["barcodes"]) for p in page["items"]] == [("SKU-2", ["0012345678912"])]
    csv = "sku,name,barcodes,weight_kg\nSKU-4,Cap,4006381333931|4006381333948,0.2\n"
    r = client.put("/api/v1/products", content=csv, headers={**integration, "content-type": "text/csv"})
    assert r.json()["upserted"] == 1
    cap = client.get("/api/v1/products", params={"q": "SKU-4"}, headers=integration).json()["items"][0]
    assert cap["barcodes"] == ["4006381333931", "4006381333948"]


def test_users_need_known_stores_and_credentials(client, hq, integration):
    client.put("/api/v1/locations", json={"locations": retailer.LOCATIONS}, headers=integration)
    r = client.put("/api/v1/users", json={"users": [
        dict(username="ok-1", role="associate", store="S1", pin="4821"),
        dict(username="no-store", role="associate", store="ZZ", pin="4821"),
        dict(username="no-pin", role="manager", store="S1"),
        dict(username="dc-user", role="associate", store="W1", pin="4821"),
        dict(username="short-pin", role="associate", store="S1", pin="12"),
        dict(username="boss", role="hq", password="long-enough")]}, headers=hq).json()
    assert r["upserted"] == 2
    assert [(x["row"], x["code"]) for x in r["rejected"]] == [
        (2, "unknown_location"), (3, "missing_pin"), (4, "not_a_store"), (5, "invalid_row")]


def test_bulk_body_must_hold_the_list(client, integration):
    r = client.put("/api/v1/locations", json={"rows": []}, headers=integration)
    assert r.status_code == 422 and "locations" in r.json()["message"]
