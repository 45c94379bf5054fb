"""Promise accuracy on a simulated clock: orders promised, handed over on time or late, checked by hand."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import select

from tests import retailer
from tests.promise.test_options import NY, next_weekday, set_local_time


def _fulfil(order_id: str, status: str) -> None:
    """Hand the order over now (the simulated clock's now), as the store's last step would."""
    from backend.clock import now
    from backend.db import session_scope
    from backend.models import Allocation, Order

    with session_scope() as s:
        at = now()
        for a in s.exec(select(Allocation).where(Allocation.order_id == order_id)):
            if a.state in ("reserved", "released", "picked", "packed"):
                a.state, a.fulfilled_at = "fulfilled", at
                s.add(a)
        o = s.get(Order, order_id)
        o.status, o.closed_at = status, at
        s.add(o)
        s.commit()


def test_promise_accuracy_matches_hand_computed_figures(client, hq, integration):
    retailer.load(client, hq, integration)
    t0 = next_weekday(0, 8, 0)  # a Monday, 08:00 in New York
    set_local_time(t0)

    def place(ext: str, method: str, promise_h: float, sku: str = "SKU-1", qty: int = 5, **kw) -> str:
        promise = (t0 + timedelta(hours=promise_h)).isoformat()
        r = client.post("/api/v1/orders", json=retailer.order(ext, method, lines=[("1", sku, qty)],
                                                              promise_by=promise, **kw), headers=integration)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    # 5 x SKU-1 only W1 holds (S1 has 2, S2 1): those orders are W1's. The pickup is S1's own.
    a = place("A", "standard", 48)
    b = place("B", "standard", 48)
    c = place("C", "next_day", 24)
    place("D", "next_day", 24)
    e = place("E", "pickup", 48, sku="SKU-2", qty=1, pickup_location="S1")
    f = place("F", "standard", 48)
    place("G", "standard", 240)
    place("H", "standard", 480)  # outside the period asked below
    assert client.post(f"/api/v1/orders/{f}/cancel", headers=integration).status_code == 200

    set_local_time(t0 + timedelta(hours=24))
    _fulfil(a, "shipped")  # 24 h early: kept
    _fulfil(e, "collected")  # kept
    set_local_time(t0 + timedelta(hours=25))
    _fulfil(c, "shipped")  # 1 h late
    set_local_time(t0 + timedelta(hours=51))
    _fulfil(b, "shipped")  # 3 h late
    set_local_time(t0 + timedelta(hours=72))  # D never handed over: overdue; G still ahead: pending

    period = {"from": t0.isoformat(), "to": (t0 + timedelta(days=14)).isoformat()}
    r = client.get("/api/v1/hq/promises", params={**period, "group": "method"}, headers=hq)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == {"orders": 7, "kept": 2, "late": 2, "overdue": 1, "pending": 1, "cancelled": 1,
                             "share_kept": 0.4, "avg_late_hours": 2.0}
    by = {g["key"]: g for g in body["groups"]}
    assert set(by) == {"standard", "next_day", "pickup"}
    assert (by["standard"]["kept"], by["standard"]["late"], by["standard"]["pending"], by["standard"]["cancelled"],
            by["standard"]["share_kept"], by["standard"]["avg_late_hours"]) == (1, 1, 1, 1, 0.5, 3.0)
    assert (by["next_day"]["late"], by["next_day"]["overdue"], by["next_day"]["share_kept"],
            by["next_day"]["avg_late_hours"]) == (1, 1, 0.0, 1.0)
    assert (by["pickup"]["kept"], by["pickup"]["share_kept"]) == (1, 1.0)

    stores = {g["key"]: g for g in client.get("/api/v1/hq/promises", params={**period, "group": "store"},
                                              headers=hq).json()["groups"]}
    assert (stores["W1"]["kept"], stores["W1"]["late"], stores["W1"]["overdue"], stores["W1"]["pending"],
            stores["W1"]["share_kept"]) == (1, 2, 1, 1, 0.25)
    assert (stores["S1"]["kept"], stores["S1"]["share_kept"]) == (1, 1.0)
    assert stores["unassigned"]["cancelled"] == 1, "the cancelled order kept no allocation"

    weeks = client.get("/api/v1/hq/promises", params={**period, "group": "week"}, headers=hq).json()["groups"]
    iso = t0.isocalendar()
    first = next(g for g in weeks if g["key"] == f"{iso.year}-W{iso.week:02d}")
    assert (first["orders"], first["kept"], first["share_kept"]) == (6, 2, 0.4)
    assert [g["pending"] for g in weeks if g is not first] == [1]

    bad = client.get("/api/v1/hq/promises", params={"from": period["to"], "to": period["from"]}, headers=hq)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_period"
    assert client.get("/api/v1/hq/promises", params={"group": "colour"}, headers=hq).status_code == 422
    assert client.get("/api/v1/hq/promises", headers=integration).status_code == 403


def test_orders_at_risk_are_offered_to_the_exceptions_queue(client, hq, integration, session):
    from backend.services.promise import orders_at_risk

    retailer.load(client, hq, integration)
    t0 = next_weekday(2, 9, 0)  # a Wednesday, 09:00 in New York
    set_local_time(t0)
    soon = (t0 + timedelta(hours=3)).isoformat()
    r = client.post("/api/v1/orders", json=retailer.order("R-1", "same_day", lines=[("1", "SKU-2", 1)],
                                                          promise_by=soon), headers=integration)
    late = r.json()["id"]
    r = client.post("/api/v1/orders", json=retailer.order("R-2", "standard", lines=[("1", "SKU-1", 5)],
                                                          promise_by=(t0 + timedelta(days=9)).isoformat()),
                    headers=integration)
    relaxed = r.json()["id"]
    assert [x.order_id for x in orders_at_risk(session, t0)] == []
    risky = orders_at_risk(session, t0 + timedelta(hours=1, minutes=30))
    assert [x.order_id for x in risky] == [late], "30 min to its hand-over deadline, more work than that to do"
    x = risky[0]
    assert (x.location, x.severity, x.external_id) == ("S1", "high", "R-1")
    assert 0 < x.minutes_left < x.work_minutes
    assert "R-1" in x.reason and "S1" in x.reason
    overdue = orders_at_risk(session, t0 + timedelta(days=8))
    assert {o.order_id for o in overdue} == {late, relaxed}
    assert all(o.minutes_left < 0 for o in overdue if o.order_id == late)
    assert datetime.fromisoformat(x.promise_by.isoformat()).astimezone(NY) == t0 + timedelta(hours=3)
