"""A person overrides routing for one line: move it to another location, hold it, release the hold.

HQ may override any line; a store manager only lines at their store (moving them away, holding them) or lines
they move to their store. Every override is recorded (`line.overridden`, with its reason), marks the order
`override` so the batch optimisation leaves it alone, and counts in the override rate HQ watches.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from backend import events
from backend.clock import now
from backend.errors import Conflict, DomainError, Forbidden, NotFound
from backend.ids import new_id
from backend.models import Allocation, Event, Location, Order, OrderLine
from backend.principal import Principal
from backend.services import allocations as alloc_svc
from backend.services import order_status, reservations, storeversion
from backend.services.reservations import ATP_SQL
from shared.enums import AllocationState, Role
from shared.nodes import OverrideIn, OverrideReasonCount, OverrideStats, OverrideWeek

LIVE = (AllocationState.reserved.value, AllocationState.released.value, AllocationState.picked.value,
        AllocationState.packed.value)
MOVABLE = (AllocationState.reserved.value, AllocationState.released.value)
CLOSED = ("shipped", "collected", "cancelled")


def override_line(session: Session, order_id: str, line_id: str, body: OverrideIn, actor: Principal) -> Order:
    if actor.role not in (Role.hq, Role.manager):
        raise Forbidden("forbidden_role", "only HQ and store managers may override routing")
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound("unknown_order", f"order {order_id} does not exist", {"order_id": order_id})
    line = session.exec(select(OrderLine).where(OrderLine.order_id == order_id, OrderLine.line_id == line_id)).first()
    if line is None:
        raise NotFound("unknown_line", f"order {order.external_id} has no line {line_id}",
                       {"order_id": order_id, "line_id": line_id})
    live = _live(session, line)
    here = sorted({a.location for a in live})
    target = body.location if body.action == "move" else None
    _check_scope(actor, here, target, order)
    if order.status in CLOSED or line.status == "cancelled":
        raise Conflict("order_closed", f"order {order.external_id} is {order.status}; nothing to override",
                       {"status": order.status})
    for code in sorted(set(here) | ({target} if target else set())):  # lock the stores' queues, then re-read
        storeversion.bump(session, code)
    live = _live(session, line)
    reason = body.reason.strip()
    why = f"override by {actor.username}: {reason}"
    if body.action == "move":
        assert target is not None
        qty = _move(session, order, line, live, target, why, actor)
        data = {"from": here, "to": target, "quantity": qty}
    elif body.action == "hold":
        data = {"at": here, "quantity": _hold(session, order, line, live, why, actor)}
    else:
        data = {"at": here, "quantity": _release_hold(session, order, line, live)}
    order.override = True
    order.updated_at = now()
    session.add(order)
    session.flush()
    order_status.refresh(session, order)
    events.record(session, "line.overridden", "order_line", line.id, order_id=order.id,
                  location=target or (here[0] if len(here) == 1 else None), actor=actor.username,
                  data={"action": body.action, "line_id": line.line_id, "sku": line.sku, "reason": reason,
                        "note": body.note, **data})
    session.commit()
    return order


def _live(session: Session, line: OrderLine) -> list[Allocation]:
    return list(session.exec(select(Allocation).where(Allocation.line_pk == line.id, col(Allocation.state).in_(LIVE))
                             .order_by(Allocation.created_at, Allocation.id)
                             .execution_options(populate_existing=True)))


def _check_scope(actor: Principal, here: list[str], target: str | None, order: Order) -> None:
    if actor.is_hq:
        return
    store = actor.store
    if store in here or (target is not None and target == store):
        return
    raise Forbidden("wrong_location", f"a store manager may override only lines at their store ({store}); "
                    f"order {order.external_id}'s line is at {', '.join(here) or 'no location'}",
                    {"store": store, "locations": here})


def _no_picked(live: list[Allocation], line: OrderLine) -> None:
    picked = [a for a in live if a.state not in MOVABLE or a.picked > 0]
    if picked:
        a = picked[0]
        raise Conflict("already_picked", f"line {line.line_id} is already {a.state} at {a.location}; "
                       "the store must reject it before it can move or wait",
                       {"location": a.location, "state": a.state})


def atp_at(session: Session, code: str, sku: str) -> int:
    row = session.execute(text(f"SELECT {ATP_SQL} FROM inventory i JOIN location l ON l.code = i.location"
                               " WHERE i.location = :l AND i.sku = :s"), {"l": code, "s": sku}).first()
    return max(0, int(row[0])) if row else 0


def _reserve(session: Session, order: Order, line: OrderLine, code: str, qty: int, held: bool,
             actor: Principal) -> Allocation:
    if not reservations.reserve(session, code, line.sku, qty, ref=order.id, actor=actor.username):
        atp = atp_at(session, code, line.sku)
        raise Conflict("insufficient_stock", f"{code} has {atp} of {line.sku} available to promise; "
                       f"line {line.line_id} needs {qty}",
                       {"location": code, "sku": line.sku, "available": atp, "needed": qty})
    a = Allocation(id=new_id("alc"), order_id=order.id, line_pk=line.id, location=code, sku=line.sku, quantity=qty,
                   state=AllocationState.reserved.value, decided_by="override", held=held, created_at=now())
    session.add(a)
    return a


def _fulfilled(session: Session, line: OrderLine) -> int:
    return sum(a.quantity - a.rejected for a in session.exec(select(Allocation).where(
        Allocation.line_pk == line.id, Allocation.state == AllocationState.fulfilled.value)))


def _move(session: Session, order: Order, line: OrderLine, live: list[Allocation], target: str, why: str,
          actor: Principal) -> int:
    loc = session.get(Location, target)
    if loc is None:
        raise NotFound("unknown_location", f"location {target} does not exist", {"location": target})
    if not loc.active:
        raise DomainError("inactive_location", f"location {target} is not active", {"location": target}, status=422)
    _no_picked(live, line)
    if live and all(a.location == target for a in live):
        raise Conflict("already_there", f"line {line.line_id} is already allocated to {target}", {"location": target})
    qty = line.quantity - _fulfilled(session, line)
    held = any(a.held for a in live)
    for a in live:
        alloc_svc.end(session, a, AllocationState.replaced.value, reason=why, actor=actor.username)
    session.flush()
    _reserve(session, order, line, target, qty, held, actor)
    line.status, line.backorder_reason = "routed", None
    session.add(line)
    session.flush()
    from backend.services import routing

    routing.release_due(session, order_ids=[order.id])  # released now or after the method's hold window
    return qty


def _hold(session: Session, order: Order, line: OrderLine, live: list[Allocation], why: str,
          actor: Principal) -> int:
    if not live:
        raise Conflict("nothing_to_hold", f"line {line.line_id} has no allocation to hold (it is {line.status})",
                       {"status": line.status})
    _no_picked(live, line)
    qty = 0
    for a in live:
        qty += a.quantity
        if a.state == AllocationState.reserved.value:
            a.held = True
            session.add(a)
            continue
        # Released already: take it back from the location's queue, keep the units reserved there, held.
        alloc_svc.end(session, a, AllocationState.replaced.value, reason=why, actor=actor.username)
        session.flush()
        _reserve(session, order, line, a.location, a.quantity, True, actor)
    return qty


def _release_hold(session: Session, order: Order, line: OrderLine, live: list[Allocation]) -> int:
    held = [a for a in live if a.held]
    if not held:
        raise Conflict("not_held", f"line {line.line_id} is not on hold", {"status": line.status})
    for a in held:
        a.held = False
        session.add(a)
    session.flush()
    from backend.services import routing

    routing.release_due(session, order_ids=[order.id])
    return sum(a.quantity for a in held)


# ------------------------------------------------------------------------------------------------- figures
def week_start(d: datetime) -> datetime:
    d = d.astimezone(UTC)
    return (d - timedelta(days=d.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)


def override_stats(session: Session, weeks: int) -> OverrideStats:
    """Per ISO week (UTC, newest last): orders created, override actions, overridden orders and the rate, by
    reason; and the reasons over the whole period."""
    weeks = max(1, min(weeks, 104))
    first = week_start(now()) - timedelta(weeks=weeks - 1)
    starts = [first + timedelta(weeks=i) for i in range(weeks)]
    evs = session.exec(select(Event).where(Event.kind == "line.overridden", Event.at >= first)).all()
    per_week: dict[datetime, list[Event]] = defaultdict(list)
    for e in evs:
        per_week[week_start(e.at)].append(e)
    out = []
    total_orders = 0
    overridden_total: set[str] = set()
    for s in starts:
        n = session.exec(select(func.count()).select_from(Order).where(
            Order.created_at >= s, Order.created_at < s + timedelta(weeks=1))).one()
        items = per_week.get(s, [])
        orders = {e.order_id for e in items if e.order_id}
        overridden_total |= orders
        total_orders += int(n)
        iso = s.isocalendar()
        out.append(OverrideWeek(week=f"{iso.year}-W{iso.week:02d}", start=s.date().isoformat(), orders=int(n),
                                overrides=len(items), overridden_orders=len(orders),
                                rate=round(len(orders) / n, 4) if n else 0.0,
                                by_reason=dict(Counter(_reason(e) for e in items).most_common())))
    reasons = Counter(_reason(e) for e in evs)
    return OverrideStats(
        weeks=out, orders=total_orders, overrides=len(evs),
        rate=round(len(overridden_total) / total_orders, 4) if total_orders else 0.0,
        reasons=[OverrideReasonCount(reason=r, overrides=c, share=round(c / len(evs), 4))
                 for r, c in reasons.most_common()])


def _reason(e: Event) -> str:
    return str((e.data or {}).get("reason") or "unspecified").strip().lower()
