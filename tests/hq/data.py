"""A small fixed dataset for the HQ figures, written with the models (not through the API), so that every figure can
be worked out by hand. The clock is set to T0 (Tue 10 Nov 2026, 15:00 UTC = 10:00 in Albany)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from backend import clock
from backend.models import Allocation, Location, Order, OrderLine, Rejection, StockCount, StoreReliability, Task
from tests import retailer

T0 = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)
B1 = T0 - timedelta(days=2)  # S1's day: Sun 8 Nov 15:00 UTC
B2 = T0 - timedelta(days=1)  # S2's day: Mon 9 Nov 15:00 UTC


def at(base: datetime, minutes: float) -> datetime:
    return base + timedelta(minutes=minutes)


def freeze(when: datetime = T0) -> None:
    """Move the backend clock to `when` (log in before: tokens are checked against real time)."""
    clock.shift((when - clock.now()).total_seconds())


def setup(client, hq, integration) -> None:
    retailer.load(client, hq, integration, stock=False)


def order(session: Session, oid: str, method: str = "standard", promise: datetime | None = None,
          created: datetime | None = None, status: str = "released", pickup: str | None = None,
          ext: str | None = None) -> Order:
    o = Order(id=oid, channel="web", external_id=ext or f"W-{oid}", status=status, delivery_method=method,
              promise_by=promise, created_at=created or B1, updated_at=created or B1, pickup_location=pickup,
              ship_lat=None if method == "pickup" else retailer.ALBANY[0],
              ship_lon=None if method == "pickup" else retailer.ALBANY[1])
    session.add(o)
    session.flush()
    return o


def alloc(session: Session, oid: str, loc: str, sku: str, qty: int, state: str, released: datetime | None = None,
          picked: datetime | None = None, packed: datetime | None = None, fulfilled: datetime | None = None,
          rejected: int = 0, line_id: str | None = None, created: datetime | None = None,
          line_status: str | None = None) -> Allocation:
    n = len(session.info.setdefault("lines", [])) + 1
    line_pk = f"lin_{oid}_{n}"
    session.info["lines"].append(line_pk)
    session.add(OrderLine(id=line_pk, order_id=oid, line_id=line_id or str(n), sku=sku, quantity=qty,
                          status=line_status or {"fulfilled": "shipped"}.get(state, state)))
    session.flush()
    a = Allocation(id=f"alc_{oid}_{n}", order_id=oid, line_pk=line_pk, location=loc, sku=sku, quantity=qty,
                   state=state, rejected=rejected, created_at=created or released or B1, released_at=released,
                   picked_at=picked, packed_at=packed, fulfilled_at=fulfilled)
    session.add(a)
    session.flush()
    return a


def reject(session: Session, a: Allocation, reason: str, when: datetime, n: int | None = None) -> None:
    session.add(Rejection(id=f"rej_{a.id}_{when.timestamp():.0f}_{n or 0}", allocation_id=a.id, order_id=a.order_id,
                          line_id="1", location=a.location, sku=a.sku, quantity=a.quantity, reason=reason, at=when))


def count(session: Session, cid: str, loc: str, sku: str, expected: int, counted: int, when: datetime,
          status: str = "applied") -> None:
    session.add(StockCount(id=cid, location=loc, sku=sku, expected=expected, counted=counted,
                           variance=counted - expected, status=status, at=when))


def task(session: Session, tid: str, oid: str, loc: str, step: str, assignee: str | None, touched: datetime) -> None:
    session.add(Task(id=tid, order_id=oid, location=loc, step=step, assignee=assignee, created_at=touched,
                     updated_at=touched))


def performance_dataset(session: Session) -> None:
    """See tests/hq/test_performance.py for the figures each row leads to."""
    session.add(Location(code="S9", name="Closed store", type="store", lat=42.7, lon=-73.8, active=False))
    session.flush()
    # S1, Sunday
    order(session, "o1", "standard", promise=at(B1, 24 * 60))
    alloc(session, "o1", "S1", "SKU-1", 2, "fulfilled", at(B1, 0), at(B1, 10), at(B1, 30), at(B1, 60))
    order(session, "o2", "same_day", promise=at(B1, 120))
    alloc(session, "o2", "S1", "SKU-1", 1, "fulfilled", at(B1, 0), at(B1, 20), at(B1, 50), at(B1, 150))
    alloc(session, "o2", "S1", "SKU-2", 3, "fulfilled", at(B1, 5), at(B1, 40), at(B1, 50), at(B1, 150))
    order(session, "o3", "pickup", promise=at(B1, 300), pickup="S1")
    alloc(session, "o3", "S1", "SKU-2", 1, "packed", at(B1, 0), at(B1, 30), at(B1, 35))
    order(session, "o4")
    a = alloc(session, "o4", "S1", "SKU-3", 2, "rejected", at(B1, 0), rejected=2)
    reject(session, a, "not_found", at(B1, 15))
    alloc(session, "o4", "S1", "SKU-1", 1, "released", at(B1, 0))
    order(session, "o5")
    alloc(session, "o5", "S1", "SKU-1", 1, "picked", at(B1, 0), at(B1, 5))
    a = alloc(session, "o5", "S1", "SKU-2", 1, "rejected", at(B1, 0), rejected=1)
    reject(session, a, "damaged", at(B1, 10))
    # ten days ago: outside the default period
    order(session, "o0", promise=T0 - timedelta(days=9), created=T0 - timedelta(days=10))
    old = T0 - timedelta(days=10)
    alloc(session, "o0", "S1", "SKU-1", 5, "fulfilled", old, at(old, 1), at(old, 2), at(old, 3))
    # S2, Monday (o7 is split: its W1 part is not a store's work)
    order(session, "o6", "next_day", promise=at(B2, 2 * 24 * 60), created=B2)
    alloc(session, "o6", "S2", "SKU-1", 1, "fulfilled", at(B2, 0), at(B2, 60), at(B2, 90), at(B2, 100))
    order(session, "o7", "standard", promise=at(B2, 30), created=B2)
    alloc(session, "o7", "S2", "SKU-2", 1, "fulfilled", at(B2, 0), at(B2, 20), at(B2, 25), at(B2, 45))
    alloc(session, "o7", "W1", "SKU-3", 1, "fulfilled", at(B2, 0), at(B2, 1), at(B2, 2), at(B2, 3))
    count(session, "c1", "S2", "SKU-1", 4, 4, at(B2, 10))
    count(session, "c2", "S2", "SKU-2", 5, 3, at(B2, 20))
    count(session, "c3", "S2", "SKU-3", 2, 3, at(B2, 30))
    count(session, "c0", "S2", "SKU-3", 10, 5, T0 - timedelta(days=20))
    # the inactive store's work counts nowhere
    order(session, "o99", created=B2)
    alloc(session, "o99", "S9", "SKU-1", 1, "fulfilled", at(B2, 0), at(B2, 1), at(B2, 2), at(B2, 3))
    # today (Albany's Tuesday started at 05:00 UTC)
    order(session, "o8", created=T0 - timedelta(hours=1))
    alloc(session, "o8", "S1", "SKU-1", 1, "released", T0 - timedelta(hours=1))
    order(session, "o9", created=T0 - timedelta(minutes=30))
    alloc(session, "o9", "S2", "SKU-2", 1, "released", T0 - timedelta(minutes=30))
    session.add(StoreReliability(location="S1", sku_class="general", good=8, bad=2, updated_at=T0))
    session.commit()
