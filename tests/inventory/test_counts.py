"""Counts: small variances apply at once, large ones wait for a manager of that store."""
from __future__ import annotations

from sqlmodel import select

from backend.models import Event, StockMovement
from backend.services import counts, reliability
from tests import retailer
from tests.conftest import login
from tests.inventory.util import position

COUNTS = "/api/v1/stores/{}/counts"


def test_small_variance_applies_at_once(client, hq, integration, session):
    retailer.load(client, hq, integration)  # S1 SKU-1 on hand 2
    ana = login(client, "s1-ana", "1111")
    r = client.post(COUNTS.format("S1"), json={"sku": "SKU-1", "counted": 3}, headers=ana)
    assert r.status_code == 201, r.text
    c = r.json()
    assert (c["location"], c["expected"], c["counted"], c["variance"], c["status"]) == ("S1", 2, 3, 1, "applied")
    assert position(client, hq, "S1", "SKU-1")["on_hand"] == 3
    move = session.exec(select(StockMovement).where(StockMovement.cause == "count")).one()
    assert (move.on_hand_delta, move.ref, move.actor) == (1, c["id"], "s1-ana")
    assert session.exec(select(Event).where(Event.kind == "count.applied", Event.entity_id == c["id"])).one()


def test_large_variance_waits_for_a_manager(client, hq, integration):
    retailer.load(client, hq, integration)  # S1 SKU-2 on hand 5
    ana, mia = login(client, "s1-ana", "1111"), login(client, "s1-mia", "3333")
    c = client.post(COUNTS.format("S1"), json={"sku": "SKU-2", "counted": 0}, headers=ana).json()
    assert (c["expected"], c["variance"], c["status"]) == (5, -5, "pending_approval")
    assert position(client, hq, "S1", "SKU-2")["on_hand"] == 5
    pending = client.get(COUNTS.format("S1"), params={"status": "pending_approval"}, headers=mia).json()
    assert [x["id"] for x in pending["items"]] == [c["id"]]
    r = client.post(f"{COUNTS.format('S1')}/{c['id']}/approve", headers=ana)
    assert r.status_code == 403 and r.json()["code"] == "forbidden_role"
    before = reliability.PRIOR
    r = client.post(f"{COUNTS.format('S1')}/{c['id']}/approve", headers=mia)
    assert r.status_code == 200 and r.json()["status"] == "approved" and r.json()["decided_by"] == "s1-mia"
    assert position(client, hq, "S1", "SKU-2")["on_hand"] == 0
    again = client.post(f"{COUNTS.format('S1')}/{c['id']}/approve", headers=mia)
    assert again.status_code == 409 and again.json()["code"] == "count_not_pending"
    assert client.get(COUNTS.format("S1"), params={"status": "pending_approval"}, headers=mia).json()["items"] == []
    from backend.db import session_scope

    with session_scope() as s:
        assert reliability.reliability_by_location(s)["S1"] < before


def test_declined_count_changes_nothing(client, hq, integration):
    retailer.load(client, hq, integration)
    ana = login(client, "s1-ana", "1111")
    c = client.post(COUNTS.format("S1"), json={"sku": "SKU-2", "counted": 20}, headers=ana).json()
    assert c["status"] == "pending_approval"
    r = client.post(f"{COUNTS.format('S1')}/{c['id']}/decline", headers=hq)
    assert r.status_code == 200 and r.json()["status"] == "declined"
    assert position(client, hq, "S1", "SKU-2")["on_hand"] == 5


def test_other_stores_staff_are_refused(client, hq, integration):
    retailer.load(client, hq, integration)
    cai, dan = login(client, "s2-cai", "4444"), login(client, "s2-dan", "5555")
    r = client.post(COUNTS.format("S1"), json={"sku": "SKU-1", "counted": 1}, headers=cai)
    assert r.status_code == 403 and r.json()["code"] == "wrong_location"
    c = client.post(COUNTS.format("S1"), json={"sku": "SKU-2", "counted": 0}, headers=hq).json()
    assert c["status"] == "pending_approval" and c["expected"] == 5
    r = client.post(f"{COUNTS.format('S1')}/{c['id']}/approve", headers=dan)
    assert r.status_code == 403 and r.json()["code"] == "wrong_location"
    assert client.get(COUNTS.format("S1"), headers=dan).status_code == 403
    r = client.post(COUNTS.format("S1"), json={"sku": "NOPE", "counted": 1}, headers=hq)
    assert r.status_code == 422 and r.json()["code"] == "unknown_sku"
    r = client.post(COUNTS.format("S9"), json={"sku": "SKU-1", "counted": 1}, headers=hq)
    assert r.status_code == 404 and r.json()["code"] == "unknown_location"
    assert client.post(COUNTS.format("S1"), json={"sku": "SKU-1", "counted": -1}, headers=hq).status_code == 422


def test_a_new_count_supersedes_a_pending_one_and_a_count_of_an_unknown_position_creates_it(client, hq, integration):
    retailer.load(client, hq, integration)
    ana = login(client, "s1-ana", "1111")
    first = client.post(COUNTS.format("S1"), json={"sku": "SKU-2", "counted": 0}, headers=ana).json()
    second = client.post(COUNTS.format("S1"), json={"sku": "SKU-2", "counted": 4}, headers=ana).json()
    assert second["status"] == "applied"
    listed = {x["id"]: x["status"] for x in client.get(COUNTS.format("S1"), headers=ana).json()["items"]}
    assert listed == {first["id"]: "declined", second["id"]: "applied"}
    c = client.post(COUNTS.format("S1"), json={"sku": "SKU-3", "counted": 1}, headers=ana).json()
    assert (c["expected"], c["status"]) == (0, "applied")
    assert position(client, hq, "S1", "SKU-3")["on_hand"] == 1


def test_core_without_commit_leaves_the_transaction_to_the_caller(client, hq, integration, session):
    retailer.load(client, hq, integration)
    out = counts.record_count(session, "S1", "SKU-1", 3, "s1-ana", commit=False)
    assert out.status == "applied" and out.expected == 2
    session.rollback()
    assert position(client, hq, "S1", "SKU-1")["on_hand"] == 2
    counts.record_count(session, "S1", "SKU-1", 3, "s1-ana", commit=False)
    session.commit()
    assert position(client, hq, "S1", "SKU-1")["on_hand"] == 3
