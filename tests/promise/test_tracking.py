"""The customer's tracking page: readable without login, only that order, revocable, rate-limited."""
from __future__ import annotations

import re

from tests import retailer
from tests.fulfilment.helpers import Tablet, act, released

BARCODE_2 = "0012345678912"  # SKU-2


def _path(url: str) -> str:
    return "/track/" + url.rsplit("/track/", 1)[1]


def test_tracking_page_shows_the_order_in_words_and_nothing_else(client, hq, integration):
    retailer.load(client, hq, integration)
    r = client.post("/api/v1/orders", json=retailer.order("T-1", "same_day", lines=[("1", "SKU-1", 1)]),
                    headers=integration)
    o = r.json()
    other = client.post("/api/v1/orders", json=retailer.order("T-OTHER", "standard"), headers=integration).json()
    assert o["tracking_url"] and o["tracking_url"] != other["tracking_url"]
    page = client.get(_path(o["tracking_url"]))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    html = page.text
    assert 'name="viewport"' in html, "readable on a phone"
    assert "Order T-1" in html and "Trail runner 42" in html and "Arrives by" in html
    assert re.search(r"Order received|Being prepared", html)
    for secret in (o["id"], other["id"], "T-OTHER", "ord_", "alc_", "tsk_", "S1", "W1", "12207"):
        assert secret not in html, f"the page leaks {secret!r}"


def test_shipped_order_lists_its_packages_with_carrier_and_tracking(client, hq, integration):
    retailer.load(client, hq, integration)
    oid, tid = released(client, integration, "T-2", "same_day", lines=[("1", "SKU-2", 1)])
    ana = Tablet(client, "s1-ana")
    ana.applied(act("pick", tid, line_id="1", quantity=1, barcode=BARCODE_2))
    ana.applied(act("pack", tid, packages=2))
    ana.applied(act("handover_carrier", tid, carrier="UPS", tracking=["1Z999AA10123456784", "1Z999AA10123456785"]))
    url = client.get(f"/api/v1/orders/{oid}", headers=integration).json()["tracking_url"]
    html = client.get(_path(url)).text
    assert "On its way" in html and "UPS" in html and "Arrives by" in html
    assert "1Z999AA10123456784" in html and "1Z999AA10123456785" in html and "Package 2" in html


def _pickup_code(task_id: str) -> str:
    from backend.db import session_scope
    from backend.models import Task

    with session_scope() as s:
        return s.get(Task, task_id).pickup_code


def test_pickup_page_shows_the_store_and_the_code_once_ready(client, hq, integration):
    retailer.load(client, hq, integration)
    hours = "Mon-Sat 9:00-21:00, Sun 10:00-18:00"
    s1 = dict(retailer.LOCATIONS[0], hours=hours)
    assert client.put("/api/v1/locations", json={"locations": [s1]}, headers=integration).status_code == 200
    oid, tid = released(client, integration, "T-3", "pickup", lines=[("1", "SKU-2", 2)], pickup_location="S1")
    path = _path(client.get(f"/api/v1/orders/{oid}", headers=integration).json()["tracking_url"])
    html = client.get(path).text
    assert "Albany Central" in html and "1 State St, Albany NY" in html and hours in html
    assert "Ready for pickup by" in html and "Your pickup code" not in html

    ana = Tablet(client, "s1-ana")
    ana.applied(act("pick", tid, line_id="1", quantity=2, barcode=BARCODE_2))
    code = _pickup_code(tid)
    html = client.get(path).text
    assert "Ready to collect" in html and "Your pickup code" in html and f">{code}<" in html

    ana.applied(act("handover_customer", tid, pickup_code=code))
    html = client.get(path).text
    assert "Collected" in html and code not in html


def test_forged_and_revoked_tokens_get_404(client, hq, integration):
    retailer.load(client, hq, integration)
    o = client.post("/api/v1/orders", json=retailer.order("T-4"), headers=integration).json()
    old = _path(o["tracking_url"])
    for forged in ("/track/" + "A" * 32, "/track/short", "/track/" + old[-32:-1] + "x", "/track/%3Cscript%3E"):
        r = client.get(forged)
        assert r.status_code == 404 and "Order not found" in r.text and "<script>" not in r.text

    r = client.post(f"/api/v1/orders/{o['id']}/tracking/revoke", headers=integration)
    assert r.status_code == 200
    new = r.json()["tracking_url"]
    assert new and _path(new) != old and r.json()["order_id"] == o["id"]
    assert client.get(old).status_code == 404
    assert client.get(_path(new)).status_code == 200
    assert client.get(f"/api/v1/orders/{o['id']}", headers=integration).json()["tracking_url"] == new

    r = client.post(f"/api/v1/orders/{o['id']}/tracking/revoke", json={"reissue": False}, headers=hq)
    assert r.status_code == 200 and r.json()["tracking_url"] is None
    assert client.get(_path(new)).status_code == 404
    history = client.get(f"/api/v1/orders/{o['id']}", headers=integration).json()["history"]
    assert [h["kind"] for h in history].count("order.tracking_revoked") == 2

    assert client.post("/api/v1/orders/ord_nope/tracking/revoke", headers=hq).status_code == 404
    assert client.post(f"/api/v1/orders/{o['id']}/tracking/revoke").status_code == 401
    ana = client.post("/api/v1/auth/token", data={"username": "s1-ana", "password": "1111"}).json()
    r = client.post(f"/api/v1/orders/{o['id']}/tracking/revoke",
                    headers={"Authorization": f"Bearer {ana['access_token']}"})
    assert r.status_code == 403


def test_tracking_requests_are_rate_limited_per_client(client, hq, integration, monkeypatch):
    monkeypatch.setenv("STORELINE_TRACKING_REQUESTS_PER_MINUTE", "5")
    retailer.load(client, hq, integration)
    o = client.post("/api/v1/orders", json=retailer.order("T-5"), headers=integration).json()
    path = _path(o["tracking_url"])
    codes = [client.get(path).status_code for _ in range(5)]
    assert codes == [200] * 5
    r = client.get(path)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert client.get("/track/" + "B" * 32).status_code == 429, "guessing costs the same budget"
