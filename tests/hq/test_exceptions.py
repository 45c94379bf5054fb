"""The exceptions queue: the scheduled scan raises each kind once, refreshes, auto-resolves and reopens; people
acknowledge and resolve; a manager sees only their store's."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from backend.db import session_scope
from backend.models import Allocation, ExceptionItem, Order, OrderLine, StockCount
from backend.services import exceptions
from tests.conftest import login
from tests.hq import data
from tests.hq.data import T0, alloc, count, order, reject, task


def _causes(s) -> None:
    # promise_at_risk: a same-day order still at pick with 60 min left (< 120), a packed one 30 min late,
    # and one with 10 hours left (fine)
    order(s, "risk1", "same_day", promise=T0 + timedelta(minutes=60), created=T0 - timedelta(hours=2))
    alloc(s, "risk1", "S1", "SKU-1", 1, "released", T0 - timedelta(hours=2))
    order(s, "late1", "next_day", promise=T0 - timedelta(minutes=30), created=T0 - timedelta(days=1), status="packed")
    alloc(s, "late1", "S2", "SKU-2", 1, "packed", T0 - timedelta(hours=20), T0 - timedelta(hours=19),
          T0 - timedelta(hours=18))
    order(s, "fine1", "standard", promise=T0 + timedelta(hours=10), created=T0 - timedelta(hours=1))
    alloc(s, "fine1", "S1", "SKU-2", 1, "released", T0 - timedelta(hours=1))
    # unfillable: a backordered line
    order(s, "bo1", "standard", promise=T0 + timedelta(days=3), status="backordered")
    s.add(OrderLine(id="lin_bo1", order_id="bo1", line_id="1", sku="SKU-3", quantity=2, status="backordered",
                    backorder_reason="no location has SKU SKU-3 in stock"))
    # repeated rejects: 3 of SKU-1 at S1 this week; 2 of SKU-2 at S2 (not enough)
    order(s, "rj", "standard", promise=T0 + timedelta(days=3), status="routed")
    for i, reason in enumerate(["not_found", "not_found", "damaged"]):
        a = alloc(s, "rj", "S1", "SKU-1", 1, "rejected", T0 - timedelta(days=2), rejected=1)
        reject(s, a, reason, T0 - timedelta(days=2 - i * 0.5), i)
    for i in range(2):
        a = alloc(s, "rj", "S2", "SKU-2", 1, "rejected", T0 - timedelta(days=2), rejected=1)
        reject(s, a, "not_found", T0 - timedelta(days=1), i)
    # stock mismatch: a count waiting for approval, and a large applied variance
    count(s, "cnt-pending", "S1", "SKU-2", 5, 2, T0 - timedelta(hours=3), status="pending_approval")
    count(s, "cnt-big", "S2", "SKU-1", 10, 2, T0 - timedelta(hours=5))
    count(s, "cnt-small", "S2", "SKU-3", 3, 2, T0 - timedelta(hours=5))
    # idle tasks: claimed and untouched 45 min (> 30); unclaimed 60 min (< 120, fine)
    task(s, "tsk-idle", "risk1", "S1", "pick", "s1-ana", T0 - timedelta(minutes=45))
    task(s, "tsk-wait", "fine1", "S1", "pick", None, T0 - timedelta(minutes=60))
    s.commit()


@pytest.fixture
def world(client, hq, integration):
    data.setup(client, hq, integration)
    mia, dan = login(client, "s1-mia", "3333"), login(client, "s2-dan", "5555")
    data.freeze()
    with session_scope() as s:
        _causes(s)
    return {"hq": hq, "mia": mia, "dan": dan}


def _items(client, headers, **params):
    r = client.get("/api/v1/exceptions", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return {i["kind"] + ":" + (i["location"] or i["order_id"] or ""): i for i in r.json()["items"]}


def test_scan_raises_each_kind_once_with_message_and_action(client, world):
    with session_scope() as s:
        assert exceptions.scan(s) == 7
    items = _items(client, world["hq"])
    assert sorted(items) == ["promise_at_risk:S1", "promise_at_risk:S2", "repeated_rejects:S1", "stock_mismatch:S1",
                             "stock_mismatch:S2", "task_idle:S1", "unfillable:bo1"]
    risk = items["promise_at_risk:S1"]
    assert (risk["order_id"], risk["severity"], risk["status"]) == ("risk1", "high", "open")
    assert "still at pick at S1" in risk["message"] and "Tue 10 Nov 11:00 EST" in risk["message"]
    assert risk["action"].startswith("Ask S1 to pick it now")
    late = items["promise_at_risk:S2"]
    assert "missed its next-day promise" in late["message"] and "still at handover" in late["message"]
    assert late["severity"] == "high" and "Tell the customer" in late["action"]
    rr = items["repeated_rejects:S1"]
    assert rr["sku"] == "SKU-1" and rr["message"] == ("S1 gave back SKU-1 3 times in the last 7 days "
                                                      "(not found 2, damaged 1).")
    assert rr["action"].startswith("Count SKU-1 at S1")
    assert "waits for a manager's approval" in items["stock_mismatch:S1"]["message"]
    assert "found 2 where 10 were expected (-8)" in items["stock_mismatch:S2"]["message"]
    assert items["stock_mismatch:S2"]["severity"] == "high"
    assert "claimed by s1-ana" in items["task_idle:S1"]["message"]
    bo = items["unfillable:bo1"]
    assert bo["sku"] == "SKU-3" and "2 x SKU-3 (no location has SKU SKU-3 in stock)" in bo["message"]
    # the order of the queue: high severity first
    severities = [i["severity"] for i in client.get("/api/v1/exceptions", headers=world["hq"]).json()["items"]]
    assert severities == sorted(severities, key=["high", "medium", "low"].index)


def test_a_second_scan_dedupes_and_gone_causes_resolve_themselves(client, world):
    with session_scope() as s:
        exceptions.scan(s)
        assert exceptions.scan(s) == 0
        assert len(s.exec(select(ExceptionItem)).all()) == 7
        # the at-risk order is handed over, the pending count approved, a count of SKU-1 at S1 after its rejections
        a = s.exec(select(Allocation).where(Allocation.order_id == "risk1")).one()
        a.state, a.fulfilled_at = "fulfilled", T0
        s.add(a)
        o = s.get(Order, "risk1")
        o.status = "shipped"
        s.add(o)
        c = s.get(StockCount, "cnt-pending")
        c.status = "approved"
        s.add(c)
        count(s, "cnt-after", "S1", "SKU-1", 3, 3, T0 - timedelta(minutes=1))
        s.commit()
        assert exceptions.scan(s) == 0
    items = _items(client, world["hq"], status="resolved")
    assert sorted(items) == ["promise_at_risk:S1", "repeated_rejects:S1", "stock_mismatch:S1", "task_idle:S1"]
    assert {i["resolved_by"] for i in items.values()} == {"system"}
    assert len(_items(client, world["hq"])) == 3

    # a cause that comes back reopens its item (same id, no duplicate)
    old = items["repeated_rejects:S1"]["id"]
    with session_scope() as s:
        for i in range(3):
            a = alloc(s, "rj", "S1", "SKU-1", 1, "rejected", T0, rejected=1)
            data.reject(s, a, "not_found", T0, 10 + i)
        s.commit()
        assert exceptions.scan(s) == 1
    again = _items(client, world["hq"])["repeated_rejects:S1"]
    assert (again["id"], again["status"]) == (old, "open") and "3 times" in again["message"]


def test_acknowledge_resolve_and_what_a_manager_sees(client, world):
    with session_scope() as s:
        exceptions.scan(s)
        # another service's kind (the inventory feed's) is never touched by the scan
        exceptions.raise_exception(s, exceptions.Draft("stock_shortfall", "stock_shortfall:S1:SKU-9", "short",
                                                       "count it", "high", location="S1", sku="SKU-9"))
        s.commit()
    mine = _items(client, world["mia"])
    assert sorted(mine) == ["promise_at_risk:S1", "repeated_rejects:S1", "stock_mismatch:S1", "stock_shortfall:S1",
                            "task_idle:S1"]
    assert client.get("/api/v1/exceptions?location=S2", headers=world["mia"]).status_code == 403
    s2_item = _items(client, world["hq"], location="S2")["stock_mismatch:S2"]
    assert client.post(f"/api/v1/exceptions/{s2_item['id']}/acknowledge", headers=world["mia"]).status_code == 404

    risk = mine["promise_at_risk:S1"]
    r = client.post(f"/api/v1/exceptions/{risk['id']}/acknowledge", headers=world["mia"])
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert _items(client, world["hq"], status="acknowledged").keys() == {"promise_at_risk:S1"}
    r = client.post(f"/api/v1/exceptions/{risk['id']}/resolve", headers=world["hq"])
    assert r.status_code == 200 and (r.json()["status"], r.json()["resolved_by"]) == ("resolved", "hq")
    assert client.post(f"/api/v1/exceptions/{risk['id']}/acknowledge", headers=world["hq"]).status_code == 409
    assert client.post("/api/v1/exceptions/nope/resolve", headers=world["hq"]).status_code == 404

    # a person's resolution holds while the cause persists; other kinds are left alone
    with session_scope() as s:
        assert exceptions.scan(s) == 0
    assert _items(client, world["hq"], status="resolved").keys() == {"promise_at_risk:S1"}
    assert "stock_shortfall:S1" in _items(client, world["hq"], kind="stock_shortfall")

    r = client.get("/api/v1/exceptions?format=csv&kind=stock_mismatch", headers=world["hq"])
    assert r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines()[0].startswith("id,kind,severity,order_id,location,sku,message,action,status")
    assert len(r.text.splitlines()) == 3
    assert client.get("/api/v1/exceptions?status=bogus", headers=world["hq"]).status_code == 422
