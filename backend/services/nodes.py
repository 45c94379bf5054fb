"""The node API: warehouses, 3PLs and drop-ship suppliers pull the lines released to them, confirm shipments and
give lines back, like a store does from its tablets.

The work feed is a per-location change feed. Every allocation released to a node, and every later change to it
(shipped, given back, cancelled, moved away), is stamped with `Allocation.node_seq` from the location's counter
(`storeversion.bump`, an UPDATE under a row lock held to commit), so sequence numbers commit in order per location
and a pull from a cursor never skips a change that committed late. A node's action at a location takes that same
lock first, so two deliveries of one shipment cannot both apply.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlmodel import Session, col, select

from backend import events
from backend.clock import now
from backend.errors import Conflict, DomainError, NotFound
from backend.ids import new_id
from backend.models import Allocation, Event, Location, Order, OrderLine, Package, Product
from backend.principal import Principal
from backend.services import order_status, reservations, storeversion
from backend.services.rejections import reject_allocation
from shared.enums import AllocationState, LocationType
from shared.nodes import (
    NodeRejectionsIn,
    NodeRejectionsOut,
    RejectedLineOut,
    ShipmentIn,
    ShipmentOut,
    ShippedLine,
    WorkItem,
    WorkPage,
)

SHIPPABLE = frozenset({AllocationState.released.value, AllocationState.picked.value, AllocationState.packed.value})
MAX_PAGE = 1000


# ------------------------------------------------------------------------------------------ routing's hook
def on_released(session: Session, allocations: list[Allocation]) -> None:
    """Routing released these allocations (any location): the ones at non-store locations enter their node's work
    feed, and a `work.available` event per (node, order) tells webhooks. No commit."""
    if not allocations:
        return
    codes = {a.location for a in allocations}
    nodes = {loc.code for loc in session.exec(select(Location).where(col(Location.code).in_(codes)))
             if loc.type != LocationType.store.value}
    groups: dict[tuple[str, str], list[Allocation]] = defaultdict(list)
    for a in sorted(allocations, key=lambda x: (x.location, x.order_id, x.id)):
        if a.location in nodes:
            a.node_seq = storeversion.bump(session, a.location)
            session.add(a)
            groups[(a.location, a.order_id)].append(a)
    for (code, order_id), allocs in groups.items():
        events.record(session, "work.available", "location", code, order_id=order_id, location=code,
                      data={"allocations": [{"allocation_id": a.id, "sku": a.sku, "quantity": a.quantity}
                                            for a in allocs], "seq": max(a.node_seq or 0 for a in allocs)})


# ------------------------------------------------------------------------------------------------ checks
def node_location(session: Session, code: str, actor: Principal) -> Location:
    """The node, if the caller may act for it: 404 unknown, 403 another node's, 422 a store."""
    loc = session.get(Location, code)
    if loc is None:
        raise NotFound("unknown_location", f"location {code} does not exist", {"location": code})
    actor.check_location(code)
    if loc.type == LocationType.store.value:
        raise DomainError("not_a_node", f"{code} is a store; stores work through the store app",
                          {"location": code}, status=422)
    return loc


def _cursor(cursor: str | None) -> int:
    if cursor in (None, ""):
        return 0
    try:
        value = int(cursor)
    except ValueError:
        value = -1
    if value < 0:
        raise DomainError("invalid_cursor", f"cursor {cursor!r} is not one this API gave out", {"cursor": cursor},
                          status=422)
    return value


# -------------------------------------------------------------------------------------------------- work
def work(session: Session, code: str, cursor: str | None, limit: int, actor: Principal) -> WorkPage:
    node_location(session, code, actor)
    after = _cursor(cursor)
    limit = max(1, min(limit, MAX_PAGE))
    rows = session.exec(select(Allocation).where(Allocation.location == code, col(Allocation.node_seq) > after)
                        .order_by(col(Allocation.node_seq)).limit(limit + 1)).all()
    has_more = len(rows) > limit
    rows = rows[:limit]
    items = work_items(session, rows)
    return WorkPage(cursor=str(rows[-1].node_seq if rows else after), has_more=has_more, items=items)


def work_items(session: Session, allocs: list[Allocation]) -> list[WorkItem]:
    if not allocs:
        return []
    orders = {o.id: o for o in session.exec(select(Order).where(col(Order.id).in_({a.order_id for a in allocs})))}
    lines = {ln.id: ln for ln in session.exec(select(OrderLine).where(col(OrderLine.id).in_({a.line_pk
                                                                                             for a in allocs})))}
    products = {p.sku: p for p in session.exec(select(Product).where(col(Product.sku).in_({a.sku for a in allocs})))}
    pickups = {o.pickup_location for o in orders.values() if o.pickup_location}
    stores = {loc.code: loc for loc in session.exec(select(Location).where(col(Location.code).in_(pickups)))}
    out = []
    for a in allocs:
        o, ln, p = orders[a.order_id], lines[a.line_pk], products.get(a.sku)
        out.append(WorkItem(
            allocation_id=a.id, order_id=a.order_id, order_number=o.external_id, line_id=ln.line_id, sku=a.sku,
            quantity=a.quantity, shipped=a.quantity if a.state == AllocationState.fulfilled.value else 0,
            state=a.state, delivery_method=o.delivery_method, promise_by=o.promise_by,
            ship_to=_ship_to(o, stores), channel=o.channel, name=p.name if p else None,
            weight_kg=p.weight_kg if p else None, seq=a.node_seq or 0))
    return out


def _ship_to(o: Order, stores: dict[str, Location]) -> dict[str, Any] | None:
    if o.ship_to:
        return dict(o.ship_to)
    store = stores.get(o.pickup_location or "")
    if store is None:
        return None
    return {"pickup_location": store.code, "name": store.name, "address": store.address, "lat": store.lat,
            "lon": store.lon}


# ---------------------------------------------------------------------------------------------- shipments
def _ref(code: str, shipment_id: str) -> str:
    return f"{code}:{shipment_id}"


def confirm_shipment(session: Session, code: str, body: ShipmentIn, actor: Principal) -> ShipmentOut:
    """The node shipped these units: allocations fulfilled (split when partial), stock consumed, packages
    recorded, orders' status refreshed. Idempotent by (location, shipment_id): a replay answers the first result."""
    node_location(session, code, actor)
    storeversion.bump(session, code)  # this node's actions one at a time, on fresh rows
    ref = _ref(code, body.shipment_id)
    first = _recorded(session, ref)
    if first is not None:
        return first
    wanted = _resolve_shipment_lines(session, code, body)
    at = now()
    shipped: list[tuple[Allocation, int]] = []
    for a, qty in wanted:
        reservations.consume(session, code, a.sku, qty, ref=a.order_id, actor=actor.username)
        if qty < a.quantity:  # partial: the shipped units become their own fulfilled allocation
            done = Allocation(id=new_id("alc"), order_id=a.order_id, line_pk=a.line_pk, location=code, sku=a.sku,
                              quantity=qty, state=AllocationState.fulfilled.value, picked=qty, cost=a.cost,
                              decided_by=a.decided_by, created_at=a.created_at, released_at=a.released_at,
                              fulfilled_at=at, node_seq=storeversion.bump(session, code))
            a.quantity -= qty
            session.add(done)
        else:
            a.state, a.picked, a.fulfilled_at, done = AllocationState.fulfilled.value, a.quantity, at, a
        a.node_seq = storeversion.bump(session, code)
        session.add(a)
        shipped.append((done, qty))
        _record_fulfilled(session, code, a.sku, qty)
    session.flush()
    by_order: dict[str, list[tuple[Allocation, int]]] = defaultdict(list)
    for done, qty in shipped:
        by_order[done.order_id].append((done, qty))
    n = max(1, len(body.tracking))
    weight = round(body.weight_kg / n, 3) if body.weight_kg is not None else None
    line_ids = {ln.id: ln.line_id for ln in session.exec(select(OrderLine).where(
        col(OrderLine.id).in_({d.line_pk for d, _ in shipped})))}
    orders = sorted(by_order)
    ev = events.record(session, "shipment.confirmed", "shipment", ref, location=code, actor=actor.username,
                       order_id=orders[0] if len(orders) == 1 else None)  # its data: the result, below
    packages: list[str] = []
    statuses: dict[str, str] = {}
    for order_id, items in by_order.items():
        content = [{"line_id": line_ids[d.line_pk], "sku": d.sku, "quantity": q, "allocation_id": d.id}
                   for d, q in items]
        for i in range(n):
            pkg = Package(id=new_id("pkg"), task_id=None, order_id=order_id, location=code, weight_kg=weight,
                          carrier=body.carrier, tracking=body.tracking[i] if i < len(body.tracking) else None,
                          shipment_ref=ref, lines=content if i == 0 else [], created_at=at, shipped_at=at)
            session.add(pkg)
            packages.append(pkg.id)
        order = session.get(Order, order_id)
        assert order is not None
        statuses[order_id] = order_status.refresh(session, order)
    out = ShipmentOut(
        shipment_id=body.shipment_id, location=code, carrier=body.carrier, tracking=body.tracking,
        packages=packages,
        lines=[ShippedLine(allocation_id=d.id, order_id=d.order_id, line_id=line_ids[d.line_pk], sku=d.sku,
                           quantity=q, order_status=statuses[d.order_id]) for d, q in shipped])
    ev.data = out.model_dump(mode="json")
    session.add(ev)
    session.commit()
    return out


def _recorded(session: Session, ref: str) -> ShipmentOut | None:
    ev = session.exec(select(Event).where(Event.entity == "shipment", Event.entity_id == ref,
                                          Event.kind == "shipment.confirmed")).first()
    if ev is None:
        return None
    return ShipmentOut(**{**ev.data, "replayed": True})


def _resolve_shipment_lines(session: Session, code: str, body: ShipmentIn) -> list[tuple[Allocation, int]]:
    """(allocation, units) to ship; all checked before anything changes (a bad line refuses the whole shipment)."""
    want: dict[str, int] = defaultdict(int)
    allocs: dict[str, Allocation] = {}
    for i, ln in enumerate(body.lines, start=1):
        if ln.allocation_id:
            a = _allocation_at(session, code, ln.allocation_id, i)
            allocs[a.id] = a
            want[a.id] += ln.quantity
            continue
        line = session.exec(select(OrderLine).where(OrderLine.order_id == ln.order_id,
                                                    OrderLine.line_id == ln.line_id)).first()
        if line is None:
            raise NotFound("unknown_line", f"line {i}: order {ln.order_id} has no line {ln.line_id}",
                           {"line": i, "order_id": ln.order_id, "line_id": ln.line_id})
        live = session.exec(select(Allocation).where(
            Allocation.line_pk == line.id, Allocation.location == code, col(Allocation.state).in_(SHIPPABLE))
            .order_by(Allocation.created_at, Allocation.id).execution_options(populate_existing=True)).all()
        todo = ln.quantity
        for a in live:
            allocs[a.id] = a
            take = min(todo, a.quantity - want[a.id])
            if take > 0:
                want[a.id] += take
                todo -= take
        if todo > 0:
            open_units = sum(a.quantity for a in live)
            raise Conflict("over_quantity", f"line {i}: order {ln.order_id} line {ln.line_id} has {open_units} "
                           f"units released to {code}, not {ln.quantity}",
                           {"line": i, "open": open_units, "quantity": ln.quantity})
    out = []
    for aid, qty in want.items():
        a = allocs[aid]
        if a.state not in SHIPPABLE:
            raise Conflict("allocation_not_live", _not_live_message(a), {"allocation_id": a.id, "state": a.state})
        if qty > a.quantity:
            raise Conflict("over_quantity", f"allocation {a.id} has {a.quantity} units to ship, not {qty}",
                           {"allocation_id": a.id, "open": a.quantity, "quantity": qty})
        out.append((a, qty))
    return out


def _allocation_at(session: Session, code: str, allocation_id: str, i: int) -> Allocation:
    a = session.get(Allocation, allocation_id, populate_existing=True)
    if a is None or a.location != code:
        raise NotFound("unknown_allocation", f"line {i}: allocation {allocation_id} is not {code}'s work",
                       {"line": i, "allocation_id": allocation_id})
    return a


def _not_live_message(a: Allocation) -> str:
    if a.state == AllocationState.reserved.value:
        return f"allocation {a.id} is not released to {a.location} yet"
    if a.state in (AllocationState.cancelled.value, AllocationState.replaced.value):
        return f"allocation {a.id} was {a.state} ({a.end_reason or 'no reason given'}); do not ship it"
    return f"allocation {a.id} is already {a.state}"


def _record_fulfilled(session: Session, code: str, sku: str, qty: int) -> None:
    try:
        from backend.services.reliability import record_fulfilled
    except ImportError:
        return
    record_fulfilled(session, code, sku, qty)


# -------------------------------------------------------------------------------------------- rejections
def reject_lines(session: Session, code: str, body: NodeRejectionsIn, actor: Principal) -> NodeRejectionsOut:
    """The node gives lines back: same consequences as a store's rejection, all lines or none."""
    node_location(session, code, actor)
    storeversion.bump(session, code)
    results = []
    for i, ln in enumerate(body.lines, start=1):
        a = _allocation_at(session, code, ln.allocation_id, i)
        if a.state not in SHIPPABLE:
            raise Conflict("allocation_not_live", _not_live_message(a), {"allocation_id": a.id, "state": a.state})
        r = reject_allocation(session, a, ln.quantity, ln.reason.value, ln.note, actor.username)
        results.append(RejectedLineOut(allocation_id=r.allocation.id, order_id=a.order_id, line_id=r.line.line_id,
                                       sku=r.line.sku, quantity=r.quantity, reason=r.reason,
                                       line_status=r.line.status, rerouted_to=r.rerouted_to))
    session.commit()
    return NodeRejectionsOut(results=results)
