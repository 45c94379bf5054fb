"""Order capture (idempotent by channel and external id), reading and cancelling."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend import events
from backend.clock import now
from backend.config import get_settings
from backend.errors import Conflict, DomainError, NotFound
from backend.ids import new_id
from backend.models import Allocation, Event, Location, Order, OrderLine, Product
from backend.principal import Principal
from backend.services.geocode import zip_point
from shared.enums import DeliveryMethod, LocationType, OrderStatus, Role
from shared.orders import AllocationOut, HistoryEntry, LineOut, OrderCreate, OrderOut

# session.info key: {order id: (lines, allocations, events)} of orders this session has just created and committed
_WRITTEN = "orders_written"
CLOSED = {OrderStatus.shipped.value, OrderStatus.collected.value, OrderStatus.cancelled.value}


def default_promise(method: DeliveryMethod, created: datetime, tz: str) -> datetime:
    """The promise when the channel sends none: end of today (same day), tomorrow, +5 days; pickup in 4 hours."""
    local = created.astimezone(ZoneInfo(tz))
    end_of_day = local.replace(hour=21, minute=0, second=0, microsecond=0)
    if method == DeliveryMethod.same_day:
        return end_of_day if local < end_of_day else end_of_day + timedelta(days=1)
    if method == DeliveryMethod.next_day:
        return end_of_day + timedelta(days=1)
    if method == DeliveryMethod.pickup:
        return created + timedelta(hours=4)
    return end_of_day + timedelta(days=5)


def create_order(session: Session, body: OrderCreate, actor: Principal) -> tuple[Order, bool]:
    """Returns (order, created). A retry of the same (channel, external_id) returns the first order."""
    found = _by_external(session, body.channel, body.external_id)
    if found is not None:
        return found, False
    lat, lon, tz = _ship_point(session, body)
    _check_skus(session, body)
    created = now()
    order = Order(
        id=new_id("ord"), channel=body.channel, external_id=body.external_id, status=OrderStatus.created.value,
        delivery_method=body.delivery_method.value, pickup_location=body.pickup_location, priority=body.priority,
        customer_tier=body.customer_tier,
        promise_by=body.promise_by or default_promise(body.delivery_method, created, tz),
        ship_to=body.ship_to.model_dump(exclude_none=True) if body.ship_to else None,
        ship_lat=lat, ship_lon=lon, tracking_token=secrets.token_urlsafe(24), created_at=created, updated_at=created,
    )
    session.add(order)
    lines = [OrderLine(id=new_id("lin"), order_id=order.id, line_id=ln.line_id, sku=ln.sku, quantity=ln.quantity,
                       status="created") for ln in body.lines]
    session.add_all(lines)
    recorded: list[Event] = []
    session.info[events.SINK] = recorded  # keep this order's events for order_out
    try:
        events.record(session, "order.created", "order", order.id, order_id=order.id, actor=actor.username,
                      data={"channel": body.channel, "external_id": body.external_id,
                            "delivery_method": body.delivery_method.value,
                            "lines": [ln.model_dump() for ln in body.lines]})
        try:
            session.flush()
        except IntegrityError:
            # Another process created the same (channel, external_id) a moment ago: answer with that one.
            session.rollback()
            found = _by_external(session, body.channel, body.external_id)
            if found is None:
                raise
            return found, False
        from backend.services import routing

        allocs = routing.route_new_order(session, order, actor=actor.username, quote_id=body.quote_id, lines=lines)
        session.commit()
    finally:
        session.info.pop(events.SINK, None)
    if allocs is not None:  # order_out answers from these rather than reading back what was just written
        history = [e for e in recorded if e.order_id == order.id]
        session.info.setdefault(_WRITTEN, {})[order.id] = (lines, allocs, history)
    return order, True


def _by_external(session: Session, channel: str, external_id: str) -> Order | None:
    return session.exec(select(Order).where(Order.channel == channel, Order.external_id == external_id)).first()


def _ship_point(session: Session, body: OrderCreate) -> tuple[float, float, str]:
    if body.delivery_method == DeliveryMethod.pickup:
        loc = session.get(Location, body.pickup_location)
        if loc is None:
            raise DomainError("unknown_location", f"pickup store {body.pickup_location} is not a known location",
                              {"pickup_location": body.pickup_location}, status=422)
        if loc.type != LocationType.store.value or not loc.pickup or not loc.active:
            raise DomainError("pickup_not_offered", f"location {loc.code} does not offer store pickup",
                              {"pickup_location": loc.code}, status=422)
        return loc.lat, loc.lon, loc.timezone
    st = body.ship_to
    assert st is not None
    if st.lat is not None and st.lon is not None:
        tz = (zip_point(st.zip) or (0, 0, "America/New_York"))[2] if st.zip else "America/New_York"
        return st.lat, st.lon, tz
    p = zip_point(st.zip or "")
    if p is None:
        raise DomainError("unknown_zip", f"ship_to ZIP {st.zip!r} is not a known US ZIP code; send lat and lon instead",
                          {"zip": st.zip}, status=422)
    return p


def _check_skus(session: Session, body: OrderCreate) -> None:
    skus = {ln.sku for ln in body.lines}
    known = {p.sku: p.active for p in session.exec(select(Product).where(col(Product.sku).in_(skus)))}
    missing = sorted(skus - set(known))
    if missing:
        raise DomainError("unknown_sku", f"SKU {missing[0]} is not in the catalogue", {"skus": missing}, status=422)
    inactive = sorted(s for s, active in known.items() if not active)
    if inactive:
        raise DomainError("inactive_sku", f"SKU {inactive[0]} is no longer sold", {"skus": inactive}, status=422)


def get_order(session: Session, order_id: str, actor: Principal) -> Order:
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound("unknown_order", f"order {order_id} does not exist", {"order_id": order_id})
    if actor.role in (Role.associate, Role.manager, Role.node):
        locations = set(session.exec(select(Allocation.location).where(Allocation.order_id == order_id)).all())
        if order.pickup_location:
            locations.add(order.pickup_location)
        if not any(actor.can_see_location(loc) for loc in locations):
            raise NotFound("unknown_order", f"order {order_id} does not exist", {"order_id": order_id})
    return order


def order_out(session: Session, order: Order) -> OrderOut:
    written = session.info.get(_WRITTEN, {}).pop(order.id, None)
    if written is not None:  # created by this session a moment ago: every line, allocation and event is in hand
        lines = sorted(written[0], key=lambda ln: ln.line_id)
        allocs = sorted(written[1], key=lambda a: (a.created_at, a.id))
        history = sorted(written[2], key=lambda e: e.id or 0)
    else:
        lines = session.exec(select(OrderLine).where(OrderLine.order_id == order.id)
                             .order_by(OrderLine.line_id)).all()
        allocs = session.exec(select(Allocation).where(Allocation.order_id == order.id)
                              .order_by(Allocation.created_at, Allocation.id)).all()
        history = session.exec(select(Event).where(Event.order_id == order.id).order_by(Event.id)).all()
    by_line: dict[str, list[Allocation]] = {}
    for a in allocs:
        by_line.setdefault(a.line_pk, []).append(a)
    return OrderOut(
        id=order.id, channel=order.channel, external_id=order.external_id, status=order.status,
        delivery_method=order.delivery_method, pickup_location=order.pickup_location, priority=order.priority,
        promise_by=order.promise_by, ship_to=order.ship_to, created_at=order.created_at,
        lines=[LineOut(line_id=ln.line_id, sku=ln.sku, quantity=ln.quantity, status=ln.status,
                       backorder_reason=ln.backorder_reason,
                       allocations=[AllocationOut(id=a.id, location=a.location, quantity=a.quantity, state=a.state,
                                                  created_at=a.created_at) for a in by_line.get(ln.id, [])])
               for ln in lines],
        explanation=order.explanation,
        history=[HistoryEntry(at=e.at, kind=e.kind, actor=e.actor, data=e.data) for e in history],
        tracking_url=f"{get_settings().public_url.rstrip('/')}/track/{order.tracking_token}"
        if order.tracking_token else None,
    )


def cancel_order(session: Session, order_id: str, reason: str, actor: Principal) -> Order:
    order = get_order(session, order_id, actor)
    if order.status == OrderStatus.cancelled.value:
        return order
    if order.status in CLOSED:
        raise Conflict("order_closed", f"order {order_id} is already {order.status} and cannot be cancelled",
                       {"status": order.status})
    from backend.services import allocations

    live = allocations.live_for_order(session, order.id)
    if any(a.state == "packed" for a in live):
        raise Conflict("order_packed", f"order {order_id} is packed at a store; hand it back before cancelling",
                       {"status": order.status})
    for a in live:
        allocations.end(session, a, "cancelled", reason=f"order cancelled: {reason}", actor=actor.username)
    for ln in session.exec(select(OrderLine).where(OrderLine.order_id == order.id)):
        ln.status = "cancelled"
        session.add(ln)
    order.status = OrderStatus.cancelled.value
    order.closed_at = order.updated_at = now()
    session.add(order)
    events.record(session, "order.cancelled", "order", order.id, order_id=order.id, actor=actor.username,
                  data={"reason": reason})
    session.commit()
    return order
