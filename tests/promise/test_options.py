"""Delivery options before checkout: what is offered, by when, and why not."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests import retailer

NY = ZoneInfo("America/New_York")
HOURS = "Mon-Sat 9:00-21:00, Sun 10:00-18:00"


def ask(client, key, lines, ship_to=None, hold=False, status=200) -> dict:
    body = {"channel": "web", "ship_to": ship_to or {"zip": "12207"}, "hold": hold,
            "lines": [{"sku": s, "quantity": q} for s, q in lines]}
    r = client.post("/api/v1/promise", json=body, headers=key)
    assert r.status_code == status, r.text
    return r.json()


def option(body: dict, method: str, pickup: str | None = None) -> dict:
    return next(o for o in body["options"] if o["delivery_method"] == method
                and (pickup is None or o.get("pickup_location") == pickup))


def set_local_time(when: datetime) -> None:
    """Move the process clock so that now() is `when` (an aware datetime)."""
    from backend import clock

    clock.reset()
    clock.shift((when - datetime.now(UTC)).total_seconds())


def next_weekday(weekday: int, hour: int, minute: int = 0) -> datetime:
    """The next given weekday (Monday = 0), at least two days ahead, at a New York wall-clock time."""
    d = datetime.now(NY).date() + timedelta(days=2)
    while d.weekday() != weekday:
        d += timedelta(days=1)
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=NY)


def test_every_method_is_answered_and_unavailable_ones_say_why(client, hq, integration):
    retailer.load(client, hq, integration)
    # S3 (Troy) holds 4 of SKU-3; nobody near Albany holds 5; W1 (Harrisburg, ~400 km) holds 100.
    body = ask(client, integration, [("SKU-3", 5)])
    assert body["quote_id"] and body["expires_at"] and body["held"] is False
    same = option(body, "same_day")
    assert same["available"] is False and same["promise_by"] is None and same["plan"] == []
    assert same["reason"] == "no store within 40 km holds 5 of SKU-3 (at most 4 in one place)"
    for method in ("next_day", "standard"):
        o = option(body, method)
        assert o["available"] and o["reason"] is None and o["packages"] == 1 and o["cost"] > 0
        assert o["plan"] == [{"location": "W1", "lines": [{"sku": "SKU-3", "quantity": 5}]}]
    assert datetime.fromisoformat(option(body, "next_day")["promise_by"]) <= datetime.fromisoformat(
        option(body, "standard")["promise_by"])

    # A SKU nobody holds: every method says so in words.
    client.put("/api/v1/products", json={"products": [dict(sku="SKU-NEW", name="New", barcodes=["4006381333931"])]},
               headers=integration)
    none = ask(client, integration, [("SKU-NEW", 1)])
    assert option(none, "standard")["reason"] == "SKU-NEW is out of stock"
    assert option(none, "next_day")["reason"] == "no location within 800 km holds 1 of SKU-NEW"
    pickup = [o for o in none["options"] if o["delivery_method"] == "pickup"]
    assert len(pickup) == 1 and pickup[0]["available"] is False
    assert pickup[0]["reason"] == "no store within 25 km holds 1 of SKU-NEW, and no location can send it there"

    far = ask(client, integration, [("SKU-1", 1)], ship_to={"zip": "99501"})  # Anchorage
    assert option(far, "same_day")["reason"] == "no store delivers the same day to this address"
    assert option(far, "pickup")["reason"] == "no pickup store within 25 km"


def test_bad_carts_are_refused_plainly(client, hq, integration):
    retailer.load(client, hq, integration)
    r = client.post("/api/v1/promise", json={"channel": "web", "ship_to": {"zip": "12207"},
                                             "lines": [{"sku": "NOPE", "quantity": 1}]}, headers=integration)
    assert r.status_code == 422 and r.json()["code"] == "unknown_sku"
    r = client.post("/api/v1/promise", json={"channel": "web", "ship_to": {"zip": "00000"},
                                             "lines": [{"sku": "SKU-1", "quantity": 1}]}, headers=integration)
    assert r.status_code == 422 and r.json()["code"] == "unknown_zip"
    r = client.post("/api/v1/promise", json={"channel": "web", "lines": []}, headers=integration)
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    assert client.post("/api/v1/promise", json={}).status_code == 401
    ana = client.post("/api/v1/auth/token", data={"username": "s1-ana", "password": "1111"}).json()
    r = client.post("/api/v1/promise", json={"channel": "web", "ship_to": {"zip": "12207"},
                                             "lines": [{"sku": "SKU-1", "quantity": 1}]},
                    headers={"Authorization": f"Bearer {ana['access_token']}"})
    assert r.status_code == 403


def test_pickup_offers_the_nearest_stores_that_hold_the_cart_first(client, hq, integration):
    retailer.load(client, hq, integration)
    # SKU-1: S1 (Albany) holds 2, S2 (Schenectady) 1, S3 (Troy) none; W1 plenty.
    body = ask(client, integration, [("SKU-1", 1)])
    pickups = [o for o in body["options"] if o["delivery_method"] == "pickup"]
    assert [o["pickup_location"] for o in pickups] == ["S1", "S2", "S3"]
    s1, s2, s3 = pickups
    assert s1["plan"] == [{"location": "S1", "lines": [{"sku": "SKU-1", "quantity": 1}]}]
    assert s2["plan"][0]["location"] == "S2"
    assert s3["plan"][0]["location"] != "S3", "Troy holds none: it is sent there"
    assert datetime.fromisoformat(s3["promise_by"]) > datetime.fromisoformat(s1["promise_by"])
    assert s1["pickup_store"]["name"] == "Albany Central" and s1["pickup_store"]["address"] == "1 State St, Albany NY"
    assert s1["pickup_store"]["distance_km"] < s2["pickup_store"]["distance_km"]
    # 2 units: only S1 holds 2 on its shelf, so it comes first, before nearer-or-not stores that need a transfer.
    two = [o for o in ask(client, integration, [("SKU-1", 2)])["options"] if o["delivery_method"] == "pickup"]
    assert two[0]["pickup_location"] == "S1" and two[0]["plan"][0]["location"] == "S1"


def test_a_promise_is_never_earlier_than_the_cut_off_allows(client, hq, integration):
    retailer.load(client, hq, integration)
    locs = [dict(loc, same_day_cutoff="16:00", hours=HOURS) for loc in retailer.LOCATIONS]
    r = client.put("/api/v1/locations", json={"locations": locs}, headers=integration)
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    tuesday_morning = next_weekday(1, 10, 0)
    tuesday_evening = tuesday_morning.replace(hour=17, minute=30)
    wed, thu = tuesday_morning.date() + timedelta(days=1), tuesday_morning.date() + timedelta(days=2)

    set_local_time(tuesday_morning)
    early = ask(client, integration, [("SKU-2", 1)])  # S1 holds 5 of SKU-2
    assert option(early, "same_day")["available"]
    assert datetime.fromisoformat(option(early, "same_day")["promise_by"]).astimezone(NY) == \
        tuesday_morning.replace(hour=21)
    assert datetime.fromisoformat(option(early, "next_day")["promise_by"]).astimezone(NY).date() == wed
    s1 = option(early, "pickup", "S1")
    ready = datetime.fromisoformat(s1["promise_by"]).astimezone(NY)
    assert tuesday_morning.replace(hour=12) <= ready <= tuesday_morning.replace(hour=12, minute=15), \
        "ready two hours after the order (rounded up to the quarter hour)"

    set_local_time(tuesday_evening)  # past every location's 16:00 cut-off
    late = ask(client, integration, [("SKU-2", 1)])
    same = option(late, "same_day")
    assert same["available"] is False and "cut-off" in same["reason"]
    assert datetime.fromisoformat(option(late, "next_day")["promise_by"]).astimezone(NY).date() == thu, \
        "hands over tomorrow, arrives the day after"
    s1 = option(late, "pickup", "S1")
    assert datetime.fromisoformat(s1["promise_by"]).astimezone(NY) == datetime(wed.year, wed.month, wed.day, 11,
                                                                                tzinfo=NY), \
        "prepared when the store opens (9:00) the next day, plus two hours"
    for o in late["options"]:
        if o["available"]:
            assert datetime.fromisoformat(o["promise_by"]).astimezone(NY).date() >= wed


def test_same_day_promise_keeps_a_lead_time_and_store_hours_count(client, hq, integration):
    retailer.load(client, hq, integration)
    locs = [dict(loc, same_day_cutoff="20:00", hours="Mon-Sat 9:00-21:00, Sun closed") for loc in retailer.LOCATIONS]
    assert client.put("/api/v1/locations", json={"locations": locs}, headers=integration).status_code == 200
    saturday = next_weekday(5, 19, 50)
    set_local_time(saturday)
    body = ask(client, integration, [("SKU-2", 1)])
    same = option(body, "same_day")
    assert same["available"]
    assert datetime.fromisoformat(same["promise_by"]).astimezone(NY) == saturday.replace(hour=22, minute=0), \
        "two hours from now (rounded to the quarter hour), later than the usual 21:00"
    s1 = option(body, "pickup", "S1")
    monday = saturday.date() + timedelta(days=2)
    assert datetime.fromisoformat(s1["promise_by"]).astimezone(NY) == datetime(
        monday.year, monday.month, monday.day, 11, tzinfo=NY), "closes at 21:00, closed on Sunday: Monday 11:00"


def test_a_store_with_no_capacity_left_today_is_not_promised(client, hq, integration, monkeypatch):
    monkeypatch.setenv("STORELINE_PROMISE_LIVE_CACHE_SECONDS", "0")  # read by the first quote (caches are fresh)
    retailer.load(client, hq, integration)
    s1 = dict(retailer.LOCATIONS[0], daily_capacity=1)
    assert client.put("/api/v1/locations", json={"locations": [s1]}, headers=integration).status_code == 200
    before = ask(client, integration, [("SKU-2", 1)])  # only S1 (among stores) holds SKU-2
    assert option(before, "same_day")["plan"][0]["location"] == "S1"
    assert option(before, "pickup", "S1")["plan"][0]["location"] == "S1"
    r = client.post("/api/v1/orders", json=retailer.order("CAP-1", "same_day", lines=[("1", "SKU-2", 1)]),
                    headers=integration)
    assert [a["location"] for a in r.json()["lines"][0]["allocations"]] == ["S1"]  # S1's one order today

    after = ask(client, integration, [("SKU-2", 1)])
    same = option(after, "same_day")
    assert same["available"] is False and same["reason"] == "the locations holding SKU-2 are fully booked today"
    s1_pickup = option(after, "pickup", "S1")
    assert s1_pickup["plan"][0]["location"] == "W1", "sent from the warehouse instead"
    assert datetime.fromisoformat(s1_pickup["promise_by"]) > datetime.fromisoformat(
        option(before, "pickup", "S1")["promise_by"])


def test_kept_rules_agree_with_the_cost_model(client, hq, integration):
    """The quote finds where a method's promise can be kept without pricing everything; same rules as routing."""
    from backend.db import session_scope
    from backend.services import promise
    from shared.promise import PromiseRequest

    retailer.load(client, hq, integration)
    for zip_code in ("12207", "12345", "17101", "10001", "99501"):
        body = PromiseRequest(channel="web", ship_to={"zip": zip_code},
                              lines=[{"sku": "SKU-1", "quantity": 1}, {"sku": "SKU-3", "quantity": 2}])
        with session_scope() as s:
            ctx = promise._context(s, body)
        for method in promise.SHIPPED:
            expected = ctx.model.order_costs(promise._request(ctx, method), None).kept
            assert (promise._kept(ctx, method) == expected).all(), (zip_code, method)
