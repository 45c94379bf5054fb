"""Batch re-optimisation of allocations not yet released to a location.

Reads a snapshot, lets the optimiser (pure, `backend/routing/optimiser.py`) re-plan all held orders together, and
swaps reservations order by order inside one transaction. A swap whose new units were taken meanwhile by a
real-time order is undone (savepoint) and that order keeps its plan, so the result is never worse than the plan
it replaces and never oversells. One batch at a time across processes (an advisory lock on PostgreSQL).
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict

from sqlalchemy import text
from sqlmodel import Session, col, select

from backend import events
from backend.clock import now
from backend.db import is_sqlite
from backend.errors import Conflict
from backend.ids import new_id
from backend.models import Allocation, ChannelRule, Order, OrderLine
from backend.routing.cost import OrderLine as RLine
from backend.routing.cost import OrderRequest
from backend.routing.explain import explain_batch_change
from backend.routing.optimiser import optimise_batch
from backend.services import allocations, order_status, reservations
from backend.services.routing import _live_network, _stock, atp_rows, current_weights, load_network, release_due

log = logging.getLogger("storeline.batch")
BATCH_LOCK_ID = 727002


def _held_orders(session: Session) -> tuple[list[Order], dict[str, list[Allocation]], dict[str, OrderLine]]:
    """Orders whose every live allocation is still only reserved (nothing released), not overridden by a person."""
    reserved = list(session.exec(select(Allocation).where(Allocation.state == "reserved")))
    by_order: dict[str, list[Allocation]] = defaultdict(list)
    for a in reserved:
        by_order[a.order_id].append(a)
    if not by_order:
        return [], {}, {}
    frozen = set(session.exec(select(Allocation.order_id).where(
        col(Allocation.order_id).in_(list(by_order)),
        col(Allocation.state).in_(["released", "picked", "packed"]))).all())
    # An order of a channel that sees only part of the stock keeps its real-time plan (made within its share): the
    # batch plans over one shared pool of units and cannot hold each channel to its share.
    limited = {c.channel for c in session.exec(select(ChannelRule).where(ChannelRule.exposure_pct < 100))}
    orders = [o for o in session.exec(select(Order).where(col(Order.id).in_(list(by_order))))
              if o.id not in frozen and not o.override and o.status != "cancelled" and o.channel not in limited]
    keep = {o.id for o in orders}
    lines = {ln.id: ln for ln in session.exec(select(OrderLine).where(col(OrderLine.order_id).in_(list(keep))))}
    # A line split over several locations (after a partial rejection) stays as it is.
    per_line: dict[str, int] = defaultdict(int)
    for oid in keep:
        for a in by_order[oid]:
            per_line[a.line_pk] += 1
    split_orders = {lines[pk].order_id for pk, n in per_line.items() if n > 1}
    orders = [o for o in orders if o.id not in split_orders]
    return sorted(orders, key=lambda o: o.created_at), {o.id: by_order[o.id] for o in orders}, lines


def run_batch(session: Session, actor: str | None, time_limit_s: float = 10.0) -> dict:
    """Re-optimise every held order; commit; answer the contract's summary."""
    started = time.perf_counter()
    if not is_sqlite(session.get_bind()):
        got = session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": BATCH_LOCK_ID}).scalar()
        if not got:
            raise Conflict("batch_running", "a batch optimisation is already running; try again in a minute")
    orders, allocs, lines = _held_orders(session)
    if not orders:
        release_due(session, urgent_now=True)
        session.commit()
        return {"orders": 0, "changed": 0, "cost_before": 0.0, "cost_after": 0.0,
                "seconds": round(time.perf_counter() - started, 3)}
    requests, current = [], {}
    for o in orders:
        own = allocs[o.id]
        requests.append(OrderRequest(
            id=o.id, delivery_method=o.delivery_method, priority=float(o.priority), lat=o.ship_lat, lon=o.ship_lon,
            pickup_location=o.pickup_location,
            lines=[RLine(lines[a.line_pk].line_id, a.sku, a.quantity) for a in own],
            excluded={lines[a.line_pk].line_id: set(lines[a.line_pk].excluded_locations)
                      for a in own if lines[a.line_pk].excluded_locations}))
        current[o.id] = [(lines[a.line_pk].line_id, a.location, a.quantity) for a in own]
    nc = load_network(session)
    skus = sorted({a.sku for own in allocs.values() for a in own})
    rows = atp_rows(session, skus)
    # The held orders' own reservations and capacity are theirs to re-plan.
    rows += [(a.sku, a.location, a.quantity) for own in allocs.values() for a in own]
    network = _live_network(session, nc, {r[1] for r in rows})
    for o in orders:
        for code in {a.location for a in allocs[o.id]}:
            if code in network.index:
                network.capacity_left[network.index[code]] += 1
    result = optimise_batch(requests, current, network, _stock(network, rows), current_weights(session),
                            time_limit_s=time_limit_s)
    log.info("batch %s", result.summary())
    changed = _apply(session, orders, allocs, lines, result, actor) if result.improved else []
    session.flush()
    release_due(session, urgent_now=True)
    session.commit()
    summary = result.summary()
    summary.update(changed=len(changed), seconds=round(time.perf_counter() - started, 3))
    if len(changed) < len(result.changed):
        summary["cost_after"] = None  # some swaps were undone; the recorded after-cost would overstate the gain
        summary["skipped"] = len(result.changed) - len(changed)
    _observe(summary)
    return summary


def _apply(session: Session, orders: list[Order], allocs: dict[str, list[Allocation]], lines: dict[str, OrderLine],
           result, actor: str | None) -> list[str]:  # noqa: ANN001
    """Swap the changed orders' reservations: all at once (orders often trade units with each other); if a unit was
    taken meanwhile, fall back to order by order, keeping the old plan of any order whose new units are gone."""
    by_id = {o.id: o for o in orders}
    changed = list(result.changed)
    whole = session.begin_nested()
    if _swap(session, changed, allocs, lines, result, actor):
        whole.commit()
        done = changed
    else:
        whole.rollback()
        done = []
        for oid in changed:
            one = session.begin_nested()
            if _swap(session, [oid], allocs, lines, result, actor):
                one.commit()
                done.append(oid)
            else:
                one.rollback()
    for oid in done:
        _record(session, by_id[oid], allocs[oid], lines, result, actor)
    return done


def _swap(session: Session, oids: list[str], allocs: dict[str, list[Allocation]], lines: dict[str, OrderLine],
          result, actor: str | None) -> bool:  # noqa: ANN001
    for oid in oids:
        for a in allocs[oid]:
            allocations.end(session, a, "replaced", reason="moved by the batch optimisation", actor=actor)
    for oid in oids:
        by_line_id = {lines[a.line_pk].line_id: lines[a.line_pk] for a in allocs[oid]}
        first = min(a.created_at for a in allocs[oid])
        for line_id, code, qty in result.assignment.get(oid, []):
            ln = by_line_id[line_id]
            if not reservations.reserve(session, code, ln.sku, qty, ref=oid, actor=actor):
                return False
            session.add(Allocation(id=new_id("alc"), order_id=oid, line_pk=ln.id, location=code, sku=ln.sku,
                                   quantity=qty, state="reserved", decided_by="batch", created_at=first))
    session.flush()
    return True


def _record(session: Session, order: Order, old: list[Allocation], lines: dict[str, OrderLine], result,
            actor: str | None) -> None:  # noqa: ANN001
    placed = {k for k, _, _ in result.assignment.get(order.id, [])}
    for a in old:
        ln = lines[a.line_pk]
        if ln.line_id not in placed:
            ln.status, ln.backorder_reason = "backordered", "the batch left this line unfilled"
            session.add(ln)
    reason = result.reasons.get(order.id)
    if reason is not None:
        change = explain_batch_change(reason)
        change["at"] = now().isoformat()
        order.explanation = {**(order.explanation or {}), "batch": change}
        session.add(order)
        events.record(session, "order.rebatched", "order", order.id, order_id=order.id, actor=actor,
                      data={"summary": change["summary"], "from": reason.before.get("locations"),
                            "to": reason.after.get("locations")})
    order_status.refresh(session, order)


def _observe(summary: dict) -> None:
    try:
        from backend import metrics
    except ImportError:
        return
    metrics.BATCH_SECONDS.observe(summary["seconds"])


def run_scheduled_batch(session: Session) -> None:
    """Scheduled job: re-optimise, then release what is due."""
    try:
        run_batch(session, actor="scheduler")
    except Conflict:
        session.rollback()
