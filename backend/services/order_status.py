"""An order's and its lines' status words, derived from their allocations (one rule, used everywhere)."""
from __future__ import annotations

from sqlmodel import Session, select

from backend.clock import now
from backend.models import Allocation, Order, OrderLine

# Live allocation state -> line status, and the order of progress.
_LINE_FROM_STATE = {"reserved": "routed", "released": "released", "picked": "picked", "packed": "packed"}
PROGRESS = ["created", "backordered", "rejected", "routed", "released", "picked", "packed", "shipped", "collected"]


def line_status(line: OrderLine, allocs: list[Allocation], pickup: bool) -> str:
    if line.status == "cancelled":
        return "cancelled"
    live = [a for a in allocs if a.state in _LINE_FROM_STATE]
    fulfilled = sum(a.quantity - a.rejected for a in allocs if a.state == "fulfilled")
    if live:
        return min((_LINE_FROM_STATE[a.state] for a in live), key=PROGRESS.index)
    if fulfilled >= line.quantity:
        return "collected" if pickup else "shipped"
    if any(a.state == "rejected" for a in allocs) and line.status != "backordered":
        return "rejected"
    if line.status == "backordered" or allocs:
        return "backordered"
    return line.status


def refresh(session: Session, order: Order, *, lines: list[OrderLine] | None = None,
            allocations: list[Allocation] | None = None) -> str:
    """Recompute the lines' and the order's status from the allocations; returns the order status. A caller that
    holds every line and every allocation of the order (an order created in this transaction) may pass them."""
    if lines is None or allocations is None:
        lines = list(session.exec(select(OrderLine).where(OrderLine.order_id == order.id)))
        allocs = list(session.exec(select(Allocation).where(Allocation.order_id == order.id)))
    else:
        allocs = allocations
    by_line: dict[str, list[Allocation]] = {}
    for a in allocs:
        by_line.setdefault(a.line_pk, []).append(a)
    pickup = order.delivery_method == "pickup"
    statuses = []
    for ln in lines:
        st = line_status(ln, by_line.get(ln.id, []), pickup)
        if st != ln.status:
            ln.status = st
            session.add(ln)
        statuses.append(st)
    open_ = [s for s in statuses if s != "cancelled"]
    if not open_:
        status = "cancelled"
    elif all(s in ("shipped", "collected") for s in open_):
        status = "collected" if pickup else "shipped"
    elif all(s in ("backordered", "rejected") for s in open_):
        status = "backordered"
    else:
        moving = [s for s in open_ if s not in ("backordered", "rejected", "shipped", "collected")]
        status = min(moving, key=PROGRESS.index) if moving else "released"
    if status != order.status:
        order.status = status
        order.updated_at = now()
        if status in ("shipped", "collected", "cancelled"):
            order.closed_at = now()
        session.add(order)
        if status in ("shipped", "collected"):  # integrators' webhooks listen for these (services/webhooks.py)
            from backend import events

            events.record(session, f"order.{status}", "order", order.id, order_id=order.id,
                          data={"external_id": order.external_id, "channel": order.channel})
    return status
