"""Routing service: builds the routing domain's inputs from the database, asks it, and reserves the winner.

The domain (`backend/routing/`) is pure; this module does all I/O. One order is routed inside the order's own
transaction: the chosen units are reserved with conditional updates, so a racing order that took them first only
makes this one route again with that stock gone.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import ColumnElement, and_, func, or_, text
from sqlmodel import Session, col, select

from backend import events
from backend.clock import now
from backend.ids import new_id
from backend.models import Allocation, Location, Order, OrderLine
from backend.routing.cost import Network, OrderRequest, Weights, same_day_open_now
from backend.routing.cost import OrderLine as RLine
from backend.routing.explain import explain_decision
from backend.routing.realtime import Decision, route_order
from backend.routing.split import join_parts, split_short_lines
from backend.services import channels, order_status, reservations
from backend.services.reservations import ATP_SQL

log = logging.getLogger("storeline.routing")
MAX_RACE_RETRIES = 4
# How long a routed allocation stays re-plannable before it goes to the location's queue. Urgent orders go at the
# next batch run (which runs every minute by default) or after this many minutes, whichever comes first.
RELEASE_HOLD_MINUTES = {"same_day": 2, "pickup": 2, "next_day": 30, "standard": 60}
URGENT_METHODS = ("same_day", "pickup")


# ---------------------------------------------------------------------------------------------------------------
# The network: locations change rarely, so each process keeps a short-lived copy (the database stays the truth).
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class _NetworkCache:
    key: tuple
    network: Network
    cutoff_min: np.ndarray
    tz: list[ZoneInfo]
    loaded: float


_cache: dict[str, _NetworkCache] = {}
_cache_lock = threading.Lock()
NETWORK_TTL_S = 5.0


def _network_key(session: Session) -> tuple:
    row = session.execute(text("SELECT COUNT(*), MAX(updated_at) FROM location")).first()
    rel = session.execute(text("SELECT COUNT(*), MAX(updated_at) FROM storereliability")).first()
    return (tuple(row), tuple(rel))


def load_network(session: Session) -> _NetworkCache:
    url = str(session.get_bind().url)
    cached = _cache.get(url)
    if cached and time.monotonic() - cached.loaded < NETWORK_TTL_S:
        return cached
    key = _network_key(session)
    if cached and cached.key == key:
        cached.loaded = time.monotonic()
        return cached
    locs = list(session.exec(select(Location).where(Location.active == True).order_by(Location.code)))  # noqa: E712
    reliability = _reliability(session)
    records = [dict(code=x.code, type=x.type, lat=x.lat, lon=x.lon, timezone=x.timezone, ships=x.ships,
                    pickup=x.pickup, same_day_radius_km=x.same_day_radius_km, same_day_cutoff=x.same_day_cutoff,
                    daily_capacity=x.daily_capacity, reliability=reliability.get(x.code, 1.0)) for x in locs]
    network = Network.from_records(records, now_utc=now())
    cutoff = np.array([int(x.same_day_cutoff[:2]) * 60 + int(x.same_day_cutoff[3:5]) for x in locs], dtype=float)
    entry = _NetworkCache(key, network, cutoff, [ZoneInfo(x.timezone) for x in locs], time.monotonic())
    with _cache_lock:
        _cache[url] = entry
    return entry


def _reliability(session: Session) -> dict[str, float]:
    try:
        from backend.services.reliability import reliability_by_location
    except ImportError:
        return {}
    return reliability_by_location(session)


def _live_network(session: Session, nc: _NetworkCache, locations: set[str], *, exact: bool = True) -> Network:
    """The cached network with today's capacity left and same-day cut-offs as of now. `exact=False` (real-time
    routing): capacity used as counted at most CAPACITY_TTL_S ago, plus this process's new orders since."""
    net = nc.network
    moment = now()
    by_zone: dict[str, float] = {}
    offsets = np.array([by_zone.setdefault(tz.key, moment.astimezone(tz).utcoffset().total_seconds() / 60)
                        for tz in nc.tz])
    codes = [c for c in locations if c in net.index]
    used = _orders_today(session, codes, moment) if exact else _orders_today_recent(session, net, codes, moment)
    cap = net.daily_capacity.copy()
    for code, n in used.items():
        cap[net.index[code]] = max(0, cap[net.index[code]] - n)
    live = net.with_capacity(cap)
    live.same_day_open = same_day_open_now(nc.cutoff_min, offsets, moment)
    return live


def _day_start(moment):  # noqa: ANN001, ANN202
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _orders_today(session: Session, codes: list[str], moment) -> dict[str, int]:  # noqa: ANN001
    """Orders each location has taken today (UTC day): allocations not replaced or cancelled, counted exactly."""
    if not codes:
        return {}
    since = _day_start(moment)
    rows = session.execute(select(Allocation.location, text("COUNT(DISTINCT allocation.order_id)"))
                           .where(col(Allocation.location).in_(codes), Allocation.created_at >= since,
                                  col(Allocation.state).not_in(["replaced", "cancelled"]))
                           .group_by(Allocation.location)).all()
    return {r[0]: int(r[1]) for r in rows}


# Capacity used today, for real-time routing. Counting it exactly for every order reads every allocation of the day
# at the candidate locations (its cost grows all day long, in the database), so each process counts all locations
# at most every CAPACITY_TTL_S seconds and adds its own new orders in between (`_took`). Capacity is a planning
# figure: another process's orders of the last second can be missed, and the minute's batch re-plans with exact
# counts. Stock, by contrast, is always reserved exactly (conditional updates, backend/services/reservations.py).
CAPACITY_TTL_S = 1.0


@dataclass
class _DayLoad:
    network: Network
    since: object
    expires: float
    used: dict[str, int]


_day_load: dict[str, _DayLoad] = {}


def _orders_today_recent(session: Session, net: Network, codes: list[str], moment) -> dict[str, int]:  # noqa: ANN001
    url = str(session.get_bind().url)
    since = _day_start(moment)
    entry = _day_load.get(url)
    if entry is None or entry.network is not net or entry.since != since or entry.expires < time.monotonic():
        entry = _DayLoad(net, since, time.monotonic() + CAPACITY_TTL_S, _orders_today(session, list(net.codes), moment))
        with _cache_lock:
            _day_load[url] = entry
    return {c: entry.used[c] for c in codes if c in entry.used}


def _took(session: Session, locations: set[str]) -> None:
    """A new order took capacity at these locations (real-time routing's count until its next re-count)."""
    entry = _day_load.get(str(session.get_bind().url))
    if entry is not None:
        with _cache_lock:
            for code in locations:
                entry.used[code] = entry.used.get(code, 0) + 1


def forget_caches() -> None:
    """Drop the per-process copies (network, capacity used): tests that reuse one database URL for other data."""
    with _cache_lock:
        _cache.clear()
        _day_load.clear()


def current_weights(session: Session) -> Weights:
    try:
        from backend.services.routing_settings import current_weights as from_settings
    except ImportError:
        return Weights()
    return from_settings(session)


def atp_rows(session: Session, skus: list[str]) -> list[tuple[str, str, int]]:
    """(sku, location, atp) for active locations holding any of these SKUs."""
    if not skus:
        return []
    params = {f"s{i}": s for i, s in enumerate(skus)}
    sql = text(f"SELECT i.sku, i.location, {ATP_SQL} AS atp FROM inventory i JOIN location l ON l.code = i.location"
               f" WHERE l.active AND i.sku IN ({', '.join(':' + k for k in params)})")
    return [(r[0], r[1], int(r[2])) for r in session.execute(sql, params) if r[2] > 0]


def _stock(network: Network, rows: list[tuple[str, str, int]]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for sku, code, atp in rows:
        i = network.index.get(code)
        if i is not None:
            out.setdefault(sku, np.zeros(len(network), dtype=np.int64))[i] += atp
    return out


# ---------------------------------------------------------------------------------------------------------------
# Real time
# ---------------------------------------------------------------------------------------------------------------
def _request(order: Order, lines: list[OrderLine], qty: dict[str, int] | None = None) -> OrderRequest:
    return OrderRequest(
        id=order.id, delivery_method=order.delivery_method, priority=float(order.priority),
        lat=order.ship_lat, lon=order.ship_lon, pickup_location=order.pickup_location,
        lines=[RLine(ln.line_id, ln.sku, (qty or {}).get(ln.line_id, ln.quantity)) for ln in lines],
        excluded={ln.line_id: set(ln.excluded_locations or []) for ln in lines if ln.excluded_locations},
    )


def _decide_and_reserve(session: Session, order: Order, lines: list[OrderLine], actor: str | None,
                        decided_by: str, qty: dict[str, int] | None = None,
                        exact_capacity: bool = True) -> tuple[Decision, list[Allocation]]:
    """Route `lines` of `order`, reserving the chosen units. Lines it cannot place are marked backordered.
    Returns the decision and the allocations it made."""
    nc = load_network(session)
    skus = sorted({ln.sku for ln in lines})
    rows = atp_rows(session, skus)
    weights = current_weights(session)
    by_key = {ln.line_id: ln for ln in lines}
    exposure = channels.exposure_for(session, order.channel)  # the channel's share of each location's stock
    for _attempt in range(MAX_RACE_RETRIES):
        network = _live_network(session, nc, {r[1] for r in rows} | ({order.pickup_location} - {None}),
                                exact=exact_capacity)
        stock = exposure.limit(_stock(network, rows), network.codes, network.types)
        t0 = time.perf_counter()
        request = split_short_lines(_request(order, lines, qty), network, stock)  # a line several must share
        decision = join_parts(route_order(request, network, stock, weights))
        _observe(time.perf_counter() - t0, decision)
        taken: list[tuple[str, str, int]] = []
        lost = None
        for line_key, code, units in decision.assignments:
            if reservations.reserve(session, code, by_key[line_key].sku, units, ref=order.id, actor=actor):
                taken.append((line_key, code, units))
            else:
                lost = (by_key[line_key].sku, code)
                break
        if lost is None:
            break
        # Another order took those units first: give back what this attempt reserved and route again without them.
        for line_key, code, units in taken:
            reservations.unreserve(session, code, by_key[line_key].sku, units, cause="race", ref=order.id)
        rows = [r for r in rows if (r[0], r[1]) != lost]
    else:
        decision = route_order(_request(order, lines, qty), network, {}, weights)  # everything unfilled
    return decision, _apply(session, order, decision, by_key, actor, decided_by)


def _observe(seconds: float, decision: Decision) -> None:
    try:
        from backend import metrics
    except ImportError:
        return
    metrics.ROUTING_LATENCY.observe(seconds)
    metrics.ROUTING_DECISIONS.labels(outcome="unfilled" if decision.unfilled else "routed").inc()


def _apply(session: Session, order: Order, decision: Decision, by_key: dict[str, OrderLine], actor: str | None,
           decided_by: str) -> list[Allocation]:
    """Write the decision: allocations, line statuses, the explanation and an event (flushed by the caller's next
    query or commit, all in one go). Returns the allocations made."""
    created = now()
    per_line_cost = decision.total_cost / max(1, len(decision.assignments))
    made: list[Allocation] = []
    for line_key, code, qty in decision.assignments:
        ln = by_key[line_key]
        made.append(Allocation(id=new_id("alc"), order_id=order.id, line_pk=ln.id, location=code, sku=ln.sku,
                               quantity=qty, state="reserved", cost=round(per_line_cost, 2), decided_by=decided_by,
                               created_at=created))
        session.add(made[-1])
        ln.status, ln.backorder_reason = "routed", None
        session.add(ln)
    for line_key, reason in decision.unfilled:
        ln = by_key[line_key]
        ln.status, ln.backorder_reason = "backordered", reason
        session.add(ln)
    explanation = explain_decision(decision)
    explanation["decided_by"] = decided_by
    explanation["at"] = created.isoformat()
    if decided_by == "realtime" or order.explanation is None:
        order.explanation = explanation
    else:
        order.explanation = {**order.explanation, "latest": explanation}
    session.add(order)
    events.record(session, "order.routed" if decision.assignments else "order.backordered", "order", order.id,
                  order_id=order.id, actor=actor,
                  data={"by": decided_by, "summary": explanation.get("summary"),
                        "allocations": [{"line_id": k, "location": c, "quantity": q}
                                        for k, c, q in decision.assignments],
                        "unfilled": [{"line_id": k, "reason": r} for k, r in decision.unfilled]})
    return made


def route_new_order(session: Session, order: Order, *, actor: str | None, quote_id: str | None = None,
                    lines: list[OrderLine] | None = None) -> list[Allocation] | None:
    """Route a just-created order inside its transaction, then release what is due at once. `lines`: the order's
    lines when the caller has just written them (read from the database otherwise). Returns the order's
    allocations when they are all known here (None when a release ran and they should be read again)."""
    if lines is None:
        lines = list(session.exec(select(OrderLine).where(OrderLine.order_id == order.id)))
    lines = sorted(lines, key=lambda ln: ln.line_id)
    quoted = None
    if quote_id:  # a live delivery quote: its plan, units already held or reserved now (backend/services/promise.py)
        from backend.services.promise import take_quote

        quoted = take_quote(session, quote_id, order)
    if quoted is not None:
        allocs = _apply(session, order, quoted, {ln.line_id: ln for ln in lines}, actor, "quote")
    else:
        allocs = _decide_and_reserve(session, order, lines, actor, "realtime", exact_capacity=False)[1]
    _took(session, {a.location for a in allocs})
    if RELEASE_HOLD_MINUTES.get(order.delivery_method, 0) <= 0:
        # Its allocations were all made just now, so only a method without a hold window has any due yet.
        session.flush()
        release_due(session, order_ids=[order.id])
        order_status.refresh(session, order)
        return None
    order_status.refresh(session, order, lines=lines, allocations=allocs)
    return allocs


def reroute_line(session: Session, line: OrderLine, *, exclude: list[str], actor: str | None) -> Decision:
    """Route one line again at once (after a rejection), never back to the excluded locations."""
    line.excluded_locations = sorted(set(line.excluded_locations or []) | set(exclude))
    session.add(line)
    order = session.get(Order, line.order_id)
    assert order is not None
    remaining = line.quantity - _placed_quantity(session, line)
    if remaining <= 0:
        return route_order(_request(order, []), load_network(session).network, {}, current_weights(session))
    decision = _decide_and_reserve(session, order, [line], actor, "reroute", qty={line.line_id: remaining})[0]
    session.flush()
    release_due(session, order_ids=[order.id])
    order_status.refresh(session, order)
    return decision


PLACED_STATES = ("reserved", "released", "picked", "packed", "fulfilled")


def _placed_quantity(session: Session, line: OrderLine) -> int:
    """Units of the line still allocated (live) or already fulfilled."""
    allocs = session.exec(select(Allocation).where(Allocation.line_pk == line.id)).all()
    return sum(a.quantity - a.rejected for a in allocs if a.state in PLACED_STATES)


def waiting_line() -> ColumnElement[bool]:
    """The condition on OrderLine of a line waiting for stock: backordered or given back whole, or partly placed
    (a partial rejection nobody could take over) with the rest still short."""
    placed_units = (select(func.coalesce(func.sum(Allocation.quantity - Allocation.rejected), 0))
                    .where(Allocation.line_pk == OrderLine.id, col(Allocation.state).in_(PLACED_STATES))
                    .correlate(OrderLine).scalar_subquery())
    return or_(col(OrderLine.status).in_(["backordered", "rejected"]),
               and_(col(OrderLine.status).not_in(["cancelled", "shipped", "collected"]),
                    OrderLine.quantity > placed_units))


def retry_backorders(session: Session, skus: list[str] | None = None, actor: str | None = "system") -> int:
    """Try again to place backordered lines (of these SKUs), in the order of the allocation policy in force
    (backend/services/allocation_policy.py). Does not commit."""
    q = select(OrderLine).where(waiting_line())
    if skus is not None:
        if not skus:
            return 0
        q = q.where(col(OrderLine.sku).in_(skus))
    placed = 0
    lines = list(session.exec(q))
    orders = {o.id: o for o in session.exec(select(Order).where(col(Order.id).in_({ln.order_id for ln in lines})))}
    from backend.services.allocation_policy import order_waiting_lines, place

    waiting = [ln for ln in lines if orders[ln.order_id].status != "cancelled"]
    for rank, (ln, rule) in enumerate(order_waiting_lines(session, waiting), start=1):
        placed += place(session, ln, rule, rank, actor)
    return placed


def retry_all_backorders(session: Session) -> None:
    """Scheduled job."""
    retry_backorders(session, None)
    session.commit()


# ---------------------------------------------------------------------------------------------------------------
# Release to locations
# ---------------------------------------------------------------------------------------------------------------
def release_due(session: Session, order_ids: list[str] | None = None, urgent_now: bool = False) -> int:
    """Release reserved allocations whose hold window has passed (with `urgent_now`, every same-day and pickup
    allocation: the batch has just had its chance to re-plan them). Does not commit."""
    q = select(Allocation, Order).join(Order, Order.id == Allocation.order_id).where(
        Allocation.state == "reserved", Allocation.held == False)  # noqa: E712  (held: a person's override)
    if order_ids is not None:
        q = q.where(col(Allocation.order_id).in_(order_ids))
    moment = now()
    due: list[Allocation] = []
    for a, o in session.exec(q):
        hold = RELEASE_HOLD_MINUTES.get(o.delivery_method, 0)
        if a.created_at <= moment - timedelta(minutes=hold) or (urgent_now and o.delivery_method in URGENT_METHODS):
            a.state, a.released_at = "released", moment
            session.add(a)
            due.append(a)
    if not due:
        return 0
    session.flush()
    for a in due:
        events.record(session, "allocation.released", "allocation", a.id, order_id=a.order_id, location=a.location,
                      data={"sku": a.sku, "quantity": a.quantity})
    try:
        from backend.services.fulfilment import on_released
    except ImportError:
        on_released = None
    if on_released is not None:
        on_released(session, due)
    from backend.services import nodes

    nodes.on_released(session, due)  # warehouses, 3PLs, suppliers: their work feed
    for oid in {a.order_id for a in due}:
        o = session.get(Order, oid)
        if o is not None:
            order_status.refresh(session, o)
    return len(due)


def run_scheduled_batch(session: Session) -> None:
    """Scheduled job (see backend/scheduler.py): batch optimisation, then releases."""
    from backend.services.batch import run_scheduled_batch as run

    run(session)
