"""What-if: replay the orders of a past period under other routing weights, against that period's stock, and compare
with what really happened. Read-only: nothing is reserved or written.

How the replay is built (and where it is approximate, said in the answer's `notes` too):

* Stock: each position's ATP at `from` is rebuilt from today's on hand and reserved minus every StockMovement since
  `from`. During the period, movements that were not the replayed orders' own (feeds, counts, rejections' stock
  corrections, earlier orders' cancellations or re-routes) are applied when they happened; the replayed orders
  reserve from that stock in the order they came. Channel exposure rules and blocks are not replayed.
* Network: today's locations, capacities and store reliability; capacity restarts at each location's local midnight
  and same-day cut-offs are checked at each order's time.
* Batch: when on, the batch (backend/routing/optimiser.py) runs every `batch_interval_s` over the orders that came
  since its last run and are held back from release (routing's RELEASE_HOLD_MINUTES; same-day and pickup orders
  are released at once, so the batch never moves them). Each order takes part in one run.
* Actual: where each line ended up (after re-routes and the batch); rejections are not replayed.
* Both plans are priced with the routing setting in force now, day by day (the load term is per day), so a change
  of weights is judged by today's cost model, not by its own.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import bindparam, text
from sqlmodel import Session, col, select

from backend.config import get_settings
from backend.db import UTCDateTime
from backend.errors import DomainError
from backend.models import Allocation, Location, Order, OrderLine, StockMovement
from backend.principal import Principal
from backend.routing.cost import SHIPPING_TERMS, TERMS, CostModel, Network, OrderRequest, Plan, Weights, evaluate_plan
from backend.routing.cost import OrderLine as RLine
from backend.routing.realtime import route_order
from backend.services import reliability, routing_settings
from shared.enums import Role
from shared.hq import Comparison, Period, PlanFigures, WhatIfChange, WhatIfIn, WhatIfOut

MAX_ORDERS = 20_000
MAX_DAYS = 92
ENDED = ("replaced", "rejected")


@dataclass
class _Replay:
    orders: list[OrderRequest]
    created: list[datetime]
    network: Network
    cutoff_min: np.ndarray
    zones: list[tuple[ZoneInfo, np.ndarray]]  # each time zone and the indexes of its locations
    levels: dict[str, np.ndarray]  # ATP per SKU and location at `from`, moved by outside movements as time goes
    outside: list[tuple[datetime, str, int, int]]  # (at, sku, location index, ATP delta), in time order


def run(session: Session, body: WhatIfIn, p: Principal) -> WhatIfOut:
    p.check_role(Role.hq)
    started = time.perf_counter()
    f, t = body.from_, body.to
    if f >= t:
        raise DomainError("invalid_period", "'from' must be before 'to'", status=422)
    if t - f > timedelta(days=MAX_DAYS):
        raise DomainError("period_too_long", f"a what-if may replay at most {MAX_DAYS} days", status=422)
    current = routing_settings.latest(session)
    version = (current.version or 0) if current else 0
    base = routing_settings.weights_of(current)
    trial = routing_settings.parse_weights(body.weights, base)
    rp = _load(session, f, t)
    actual = _actual_plan(session, rp.orders)
    window = get_settings().batch_interval_s if body.batch else None
    plan, runs = _route(rp, trial, window)
    a_fig, w_fig = _figures(rp, actual, base), _figures(rp, plan, base)
    changed = [o.id for o in rp.orders if _where(actual, o.id) != _where(plan, o.id)]
    comparison = [Comparison(figure=k, actual=getattr(a_fig, k), whatif=getattr(w_fig, k),
                             change=round(getattr(w_fig, k) - getattr(a_fig, k), 4))
                  for k in ("total_cost", "shipping_cost", "packages", "split_rate", "promises_kept", "unfilled_lines")]
    return WhatIfOut(
        period=Period(from_=f, to=t), orders=len(rp.orders), batch=body.batch, batch_runs=runs,
        weights=trial.to_dict(),
        priced_with_version=version, actual=a_fig, whatif=w_fig,
        comparison=comparison, orders_changed=len(changed),
        examples=[WhatIfChange(order_id=o, actual=sorted(set(_where(actual, o).values())),
                               whatif=sorted(set(_where(plan, o).values()))) for o in changed[:20]],
        notes=[
            f"Stock: available to promise at {f.isoformat()} rebuilt from stock movements; feeds, counts and other "
            "orders' changes during the period applied when they happened.",
            "Locations, capacities and store reliability as they are now.",
            "Actual: where each line ended up, after re-routes and batch moves; rejections are not replayed.",
            f"Both plans priced with routing setting v{version}; promises kept are "
            "projected by the cost model (distance, same-day radius and cut-off).",
        ] + ([] if window is None else [f"Batch optimisation replayed every {window:g} s over the orders held back "
                                        f"from release ({runs} runs)."]),
        seconds=round(time.perf_counter() - started, 3),
    )


# -- loading --------------------------------------------------------------------------------------------------------
def _load(session: Session, f: datetime, t: datetime) -> _Replay:
    orders = list(session.exec(select(Order).where(Order.created_at >= f, Order.created_at < t)
                               .order_by(Order.created_at, Order.id).limit(MAX_ORDERS + 1)))
    if len(orders) > MAX_ORDERS:
        raise DomainError("too_many_orders", f"the period holds more than {MAX_ORDERS} orders; replay a shorter one",
                          {"max_orders": MAX_ORDERS}, status=422)
    lines: dict[str, list[OrderLine]] = defaultdict(list)
    ids = [o.id for o in orders]
    for i in range(0, len(ids), 1000):
        for ln in session.exec(select(OrderLine).where(col(OrderLine.order_id).in_(ids[i:i + 1000]))
                               .order_by(OrderLine.line_id)):
            lines[ln.order_id].append(ln)
    locs = list(session.exec(select(Location).order_by(Location.code)))
    trust = reliability.reliability_by_location(session)
    network = Network.from_records([dict(
        code=x.code, type=x.type, lat=x.lat, lon=x.lon, timezone=x.timezone, ships=x.ships, pickup=x.pickup,
        same_day_radius_km=x.same_day_radius_km, same_day_open=True, daily_capacity=x.daily_capacity,
        capacity_left=x.daily_capacity if x.active else 0, reliability=trust.get(x.code, reliability.PRIOR))
        for x in locs])
    requests, created = [], []
    for o in orders:
        try:
            requests.append(OrderRequest(
                id=o.id, delivery_method=o.delivery_method, priority=float(o.priority), lat=o.ship_lat,
                lon=o.ship_lon, pickup_location=o.pickup_location,
                lines=[RLine(ln.id, ln.sku, ln.quantity) for ln in lines[o.id]]))
            created.append(o.created_at)
        except ValueError:
            continue  # an order routing could never read (no lines, no ship-to): left out of both sides
    skus = sorted({ln.sku for r in requests for ln in r.lines})
    levels, outside = _stock(session, network, skus, {r.id for r in requests}, f, t)
    cutoff = np.array([_minutes(x.same_day_cutoff) for x in locs], dtype=float)
    by_zone: dict[str, list[int]] = defaultdict(list)
    for j, x in enumerate(locs):
        by_zone[x.timezone].append(j)
    zones = [(_zone(tz), np.asarray(idx, dtype=np.int64)) for tz, idx in by_zone.items()]
    return _Replay(requests, created, network, cutoff, zones, levels, outside)


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _minutes(hhmm: str) -> int:
    try:
        return int(hhmm[:2]) * 60 + int(hhmm[3:5])
    except ValueError:
        return 24 * 60


def _stock(session: Session, net: Network, skus: list[str], replayed: set[str], f: datetime,
           t: datetime) -> tuple[dict[str, np.ndarray], list[tuple[datetime, str, int, int]]]:
    """ATP per SKU at `from`, and the outside movements of ATP during the period."""
    levels: dict[str, np.ndarray] = {}
    outside: list[tuple[datetime, str, int, int]] = []
    n = len(net)
    for i in range(0, len(skus), 500):
        chunk = skus[i:i + 500]
        since: dict[tuple[str, str], tuple[int, int]] = {}
        for loc, sku, d_on, d_res in session.execute(text(
                "SELECT location, sku, SUM(on_hand_delta), SUM(reserved_delta) FROM stockmovement"
                " WHERE at >= :f AND sku IN :skus GROUP BY location, sku").bindparams(
                bindparam("f", type_=UTCDateTime()), bindparam("skus", expanding=True)), {"f": f, "skus": chunk}):
            since[(loc, sku)] = (int(d_on or 0), int(d_res or 0))
        for loc, sku, on_hand, reserved, safety, holdback in session.execute(text(
                "SELECT i.location, i.sku, i.on_hand, i.reserved, COALESCE(i.safety_stock, l.safety_stock),"
                " COALESCE(i.holdback, l.holdback) FROM inventory i JOIN location l ON l.code = i.location"
                " WHERE i.sku IN :skus").bindparams(bindparam("skus", expanding=True)), {"skus": chunk}):
            j = net.index.get(loc)
            if j is None:
                continue
            d_on, d_res = since.get((loc, sku), (0, 0))
            atp = (on_hand - d_on) - (reserved - d_res) - (safety or 0) - (holdback or 0)
            levels.setdefault(sku, np.zeros(n, dtype=np.int64))[j] = atp
        for at, loc, sku, d_on, d_res, cause, ref in session.exec(
                select(StockMovement.at, StockMovement.location, StockMovement.sku, StockMovement.on_hand_delta,
                       StockMovement.reserved_delta, StockMovement.cause, StockMovement.ref)
                .where(StockMovement.at >= f, StockMovement.at < t, col(StockMovement.sku).in_(chunk))
                .order_by(StockMovement.at, StockMovement.id)):
            j = net.index.get(loc)
            if j is None or cause == "fulfil" or ref in replayed:
                continue
            if d_on - d_res:
                outside.append((at, sku, j, d_on - d_res))
    outside.sort(key=lambda m: m[0])
    return levels, outside


def _actual_plan(session: Session, orders: Sequence[OrderRequest]) -> Plan:
    """Per line, the newest allocation that was not replaced or rejected: where the line really went."""
    ids = [o.id for o in orders]
    best: dict[str, Allocation] = {}
    for i in range(0, len(ids), 1000):
        for a in session.exec(select(Allocation).where(col(Allocation.order_id).in_(ids[i:i + 1000]),
                                                       col(Allocation.state).not_in(ENDED))
                              .order_by(Allocation.created_at, Allocation.id)):
            best[a.line_pk] = a
    plan: Plan = {o.id: [] for o in orders}
    for a in best.values():
        plan[a.order_id].append((a.line_pk, a.location, a.quantity))
    return plan


# -- replay ---------------------------------------------------------------------------------------------------------
def _route(rp: _Replay, weights: Weights, window_s: float | None) -> tuple[Plan, int]:
    """Route the orders one by one as they came. With `window_s`, the batch runs every `window_s` seconds over the
    orders that came since its last run and are still held back from release (each order takes part in one run)."""
    net = rp.network
    model = CostModel(net, weights)
    levels = {sku: arr.copy() for sku, arr in rp.levels.items()}
    active_cap = net.capacity_left.copy()
    day_of: dict[str, Any] = {}
    next_move = 0
    plan: Plan = {}
    held = _release_holds()
    window: list[int] = []
    runs = 0
    tick = rp.created[0] + timedelta(seconds=window_s) if window_s and rp.created else None
    for k, (order, at) in enumerate(zip(rp.orders, rp.created, strict=True)):
        if tick is not None and at >= tick:
            if window:
                _optimise(rp, model, window, plan, levels)
                window, runs = [], runs + 1
            tick += timedelta(seconds=window_s * (1 + int((at - tick).total_seconds() // window_s)))
        while next_move < len(rp.outside) and rp.outside[next_move][0] <= at:
            _, sku, j, delta = rp.outside[next_move]
            if sku not in levels:
                levels[sku] = np.zeros(len(net), dtype=np.int64)
            levels[sku][j] += delta
            next_move += 1
        _set_clock(rp, net, at, day_of, active_cap)
        stock = {ln.sku: np.maximum(levels[ln.sku], 0) for ln in order.lines if ln.sku in levels}
        decision = route_order(order, net, stock, weights, model=model, explain=False)
        plan[order.id] = list(decision.assignments)
        _take(net, order, plan[order.id], levels, +1)
        if tick is not None and held.get(order.delivery_method, 0) > 0:
            window.append(k)
    if window:
        _optimise(rp, model, window, plan, levels)
        runs += 1
    return plan, runs


def _release_holds() -> dict[str, float]:
    """Minutes each delivery method is held back before release (the batch can move only those orders)."""
    from backend.services import routing

    return dict(getattr(routing, "RELEASE_HOLD_MINUTES", {"next_day": 10, "standard": 60}))


def _set_clock(rp: _Replay, net: Network, at: datetime, day_of: dict[str, Any], active_cap: np.ndarray) -> None:
    """Capacity restarts at each location's local midnight; same-day is open before its local cut-off."""
    for zone, idx in rp.zones:
        local = at.astimezone(zone)
        if day_of.get(zone.key) != local.date():
            day_of[zone.key] = local.date()
            net.capacity_left[idx] = active_cap[idx]
        net.same_day_open[idx] = local.hour * 60 + local.minute < rp.cutoff_min[idx]


def _take(net: Network, order: OrderRequest, assignments: Sequence[tuple[str, str, int]],
          levels: dict[str, np.ndarray], sign: int) -> None:
    """Reserve (+1) or give back (-1) an order's units and packages in the replay's stock and capacity."""
    sku_of = {ln.key: ln.sku for ln in order.lines}
    for key, code, qty in assignments:
        j = net.index[code]
        sku = sku_of[key]
        if sku not in levels:
            levels[sku] = np.zeros(len(net), dtype=np.int64)
        levels[sku][j] -= sign * qty
    for code in {c for _, c, _ in assignments}:
        net.capacity_left[net.index[code]] -= sign


def _optimise(rp: _Replay, model: CostModel, window: list[int], plan: Plan, levels: dict[str, np.ndarray]) -> None:
    """Re-optimise one batch window of replayed orders, as the scheduled batch does with unreleased orders."""
    from backend.routing.optimiser import optimise_batch

    net = rp.network
    orders = [rp.orders[k] for k in window]
    for o in orders:  # the window's own units and packages are the batch's to re-assign
        _take(net, o, plan[o.id], levels, -1)
    skus = {ln.sku for o in orders for ln in o.lines}
    stock = {sku: np.maximum(levels[sku], 0) for sku in skus if sku in levels}
    current = {o.id: plan[o.id] for o in orders}
    result = optimise_batch(orders, current, net, stock, model.w, model=model, time_limit_s=5.0)
    for o in orders:
        plan[o.id] = list(result.assignment.get(o.id, []))
        _take(net, o, plan[o.id], levels, +1)


# -- figures --------------------------------------------------------------------------------------------------------
def _where(plan: Plan, order_id: str) -> dict[str, str]:
    return {key: code for key, code, _ in plan.get(order_id, [])}


def _figures(rp: _Replay, plan: Plan, weights: Weights) -> PlanFigures:
    """Price a plan day by day (capacity and the load term are daily) with one cost model."""
    net = rp.network
    daily = net.with_capacity(net.daily_capacity.copy())
    model = CostModel(daily, weights)
    by_day: dict[Any, list[OrderRequest]] = defaultdict(list)
    for o, at in zip(rp.orders, rp.created, strict=True):
        by_day[at.date()].append(o)
    terms = dict.fromkeys(TERMS, 0.0)
    load: dict[str, int] = defaultdict(int)
    kept: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    multi = split = unfilled = packages = 0
    for orders in by_day.values():
        ev = evaluate_plan(orders, plan, daily, model=model)
        for k, v in ev.terms.items():
            terms[k] += v
        for j in np.flatnonzero(ev.packages_by_location):
            load[net.codes[j]] += int(ev.packages_by_location[j])
        packages += ev.packages
        unfilled += ev.unfilled_lines
        for o in orders:
            oe = ev.orders[o.id]
            kept[o.delivery_method][0] += oe.promise_kept
            kept[o.delivery_method][1] += 1
            if len(o.lines) >= 2:
                multi += 1
                split += len(oe.packages) >= 2
    n_kept, n = sum(v[0] for v in kept.values()), sum(v[1] for v in kept.values())
    return PlanFigures(
        total_cost=round(sum(terms.values()), 2), shipping_cost=round(sum(terms[k] for k in SHIPPING_TERMS), 2),
        terms={k: round(v, 2) for k, v in terms.items()}, packages=packages,
        split_rate=round(split / multi, 4) if multi else 0.0, promises_kept=round(n_kept / n, 4) if n else 0.0,
        promises_kept_by_method={m: round(k / c, 4) for m, (k, c) in sorted(kept.items())},
        unfilled_lines=unfilled, store_load=dict(sorted(load.items())),
    )


__all__ = ["MAX_ORDERS", "run"]
