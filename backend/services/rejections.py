"""Giving units of an allocation back, wherever it was (a store, a warehouse, a 3PL, a supplier).

One rule for every location: the rejected units end (the whole allocation, or a split-off part of it), the
location's stock is corrected for the reason (`backend.services.inventory.apply_rejection`), the line never goes
back there, and it is re-routed at once, all in the caller's transaction (no commit here).
The store tablets' reject action (backend/services/actions.py) follows the same steps for a task's lines.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from backend import events
from backend.clock import now
from backend.errors import Conflict, DomainError
from backend.ids import new_id
from backend.models import Allocation, Order, OrderLine, Rejection
from backend.services import allocations as alloc_svc
from backend.services import order_status, reservations, storeversion
from shared.enums import AllocationState, RejectReason

LIVE = frozenset({AllocationState.reserved.value, AllocationState.released.value, AllocationState.picked.value,
                  AllocationState.packed.value})


@dataclass
class Rejected:
    allocation: Allocation  # the allocation that ended with the rejected units (the original, or its split part)
    line: OrderLine
    quantity: int
    reason: str
    rerouted_to: list[str] = field(default_factory=list)


def unpicked(a: Allocation) -> int:
    return max(0, a.quantity - a.picked) if a.state in LIVE else 0


def reject_allocation(session: Session, alloc: Allocation, qty: int | None, reason: str, note: str | None,
                      actor: str | None, *, reroute: bool = True) -> Rejected:
    """Give back `qty` unpicked units of `alloc` (all of them when None) for `reason`. No commit.

    Raises Conflict when the allocation is no longer live or has fewer unpicked units, DomainError (422) for a
    bad reason or a missing note."""
    try:
        reason = RejectReason(reason).value
    except ValueError as e:
        raise DomainError("invalid_reason", f"{reason!r} is not a rejection reason",
                          {"reasons": [r.value for r in RejectReason]}, status=422) from e
    note = (note or "").strip() or None
    if reason == RejectReason.other.value and not note:
        raise DomainError("note_required", "reason 'other' needs a note", status=422)
    if alloc.state not in LIVE:
        raise Conflict("allocation_not_live", f"allocation {alloc.id} is already {alloc.state}",
                       {"allocation_id": alloc.id, "state": alloc.state})
    left = unpicked(alloc)
    qty = left if qty is None else qty
    if qty < 1 or qty > left:
        raise Conflict("over_quantity", f"allocation {alloc.id} has {left} units to give back, not {qty}",
                       {"allocation_id": alloc.id, "open": left, "quantity": qty})
    line = session.get(OrderLine, alloc.line_pk)
    assert line is not None
    loc = alloc.location
    why = f"rejected at {loc}: {reason}" + (f" ({note})" if note else "")
    if qty == alloc.quantity:
        alloc_svc.end(session, alloc, AllocationState.rejected.value, reason=why, actor=actor)
        alloc.rejected = qty
        session.add(alloc)
        ended = alloc
    else:
        ended = _split(session, alloc, qty, why, actor)
        session.flush()  # the split-off allocation exists before its Rejection row points at it
    session.add(Rejection(id=new_id("rej"), allocation_id=ended.id, order_id=alloc.order_id, line_id=line.line_id,
                          location=loc, sku=line.sku, quantity=qty, reason=reason, note=note, actor=actor))
    if loc not in (line.excluded_locations or []):
        line.excluded_locations = [*(line.excluded_locations or []), loc]
        session.add(line)
    events.record(session, "line.rejected", "order_line", line.id, order_id=alloc.order_id, location=loc,
                  actor=actor, data={"line_id": line.line_id, "sku": line.sku, "quantity": qty, "reason": reason,
                                     "note": note, "allocation_id": ended.id})
    session.flush()
    _stock_effect(session, loc, line.sku, qty, reason, actor, alloc.order_id)
    out = Rejected(allocation=ended, line=line, quantity=qty, reason=reason)
    order = session.get(Order, alloc.order_id)
    if reroute:
        from backend.services import routing

        decision = routing.reroute_line(session, line, exclude=[loc], actor=actor)
        out.rerouted_to = sorted({code for _pk, code, _q in decision.assignments})
        session.flush()
    if order is not None:
        order_status.refresh(session, order)
    return out


def _split(session: Session, x: Allocation, take: int, why: str, actor: str | None) -> Allocation:
    """The rejected units leave `x` as a new, ended allocation; the rest stays live in `x`."""
    at = now()
    reservations.unreserve(session, x.location, x.sku, take, cause="rejected", ref=x.order_id, actor=actor)
    part = Allocation(id=new_id("alc"), order_id=x.order_id, line_pk=x.line_pk, location=x.location, sku=x.sku,
                      quantity=take, state=AllocationState.rejected.value, task_id=x.task_id, rejected=take,
                      cost=x.cost, decided_by=x.decided_by, created_at=x.created_at, released_at=x.released_at,
                      ended_at=at, end_reason=why)
    x.quantity -= take
    if x.picked >= x.quantity and x.state == AllocationState.released.value:
        x.state = AllocationState.picked.value
        x.picked_at = x.picked_at or at
    if x.node_seq is not None:  # a node sees the smaller quantity and the given-back part in its work feed
        x.node_seq = storeversion.bump(session, x.location)
        part.node_seq = storeversion.bump(session, x.location)
    session.add_all([x, part])
    events.record(session, "allocation.rejected", "allocation", part.id, order_id=x.order_id, location=x.location,
                  actor=actor, data={"sku": x.sku, "quantity": take, "reason": why, "split_from": x.id})
    if x.task_id:
        session.flush()
        alloc_svc.touch_task(session, x.task_id)
    return part


def _stock_effect(session: Session, location: str, sku: str, qty: int, reason: str, actor: str | None,
                  ref: str | None) -> None:
    try:
        from backend.services.inventory import apply_rejection
    except ImportError:
        return
    apply_rejection(session, location, sku, qty, reason, actor, ref)
