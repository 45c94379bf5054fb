"""One view of stock: positions, availability per channel near a customer, the effects of store rejections,
and the shortfall exceptions raised when on hand drops under what is already reserved.

Feeds live in `backend.services.feeds`, counts in `backend.services.counts`, channel exposure in
`backend.services.channels`, store reliability in `backend.services.reliability`.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import bindparam, text
from sqlmodel import Session, select

from backend import events
from backend.clock import now
from backend.db import UTCDateTime
from backend.errors import DomainError, NotFound
from backend.ids import new_id
from backend.models import InventoryPosition, Location, OrderLine, Product, StockMovement
from backend.principal import Principal
from backend.services import channels, reliability
from backend.services.geocode import resolve_point
from backend.services.reservations import ATP_SQL
from shared.enums import RejectReason, Role
from shared.inventory import Availability, PositionOut
from shared.masterdata import Page

EARTH_KM = 6371.0088


class RejectionEffect(NamedTuple):
    stock: str  # "block": ATP 0 until the next count or feed | "write_off": on hand -= qty | "none"
    bad: bool  # counts against the store's reliability


# What a store's rejection of a line does to its stock: the one place to change it.
REJECTION_EFFECTS: dict[str, RejectionEffect] = {
    RejectReason.not_found.value: RejectionEffect("block", True),
    RejectReason.damaged.value: RejectionEffect("write_off", True),
    RejectReason.wrong_item.value: RejectionEffect("write_off", True),
    RejectReason.customer_hold.value: RejectionEffect("none", False),
    RejectReason.other.value: RejectionEffect("none", False),
}


# --- rejections -------------------------------------------------------------------------------------------------

def apply_rejection(session: Session, location: str, sku: str, qty: int, reason: str, actor: str | None,
                    ref: str | None) -> None:
    """A store gave back `qty` units of `sku` for `reason`: correct its stock and its reliability (REJECTION_EFFECTS).

    No commit: part of the caller's rejection transaction. Call it after the allocation's reservation was freed
    (allocations.end), so a write-off is not mistaken for a shortfall against the rejected line's own units."""
    reason = RejectReason(reason).value
    effect = REJECTION_EFFECTS[reason]
    if effect.bad:
        reliability.record_bad(session, location, sku, f"reject:{reason}")
    if effect.stock == "none":
        return
    pos = _locked_position(session, location, sku)
    if pos is None:
        return
    if effect.stock == "block":
        pos.blocked = True
        delta = 0
    else:
        new = max(0, pos.on_hand - max(0, qty))
        delta, pos.on_hand = new - pos.on_hand, new
    pos.updated_at = now()
    session.add(pos)
    session.add(StockMovement(location=location, sku=sku, on_hand_delta=delta, cause="reject", ref=ref, actor=actor))
    events.record(session, "stock.blocked" if effect.stock == "block" else "stock.written_off", "inventory",
                  f"{location}/{sku}", location=location, actor=actor,
                  data={"sku": sku, "quantity": qty, "reason": reason, "on_hand_delta": delta, "ref": ref})
    if pos.on_hand < pos.reserved:
        raise_shortfalls(session, [(location, sku, pos.on_hand, pos.reserved)])


def _locked_position(session: Session, location: str, sku: str) -> InventoryPosition | None:
    return session.exec(select(InventoryPosition).where(
        InventoryPosition.location == location, InventoryPosition.sku == sku)
        .with_for_update().execution_options(populate_existing=True)).first()


# --- shortfalls and backorders ----------------------------------------------------------------------------------

_SHORTFALL = text(
    "INSERT INTO exception_item (id, dedupe_key, kind, severity, location, sku, message, action, status, raised_at,"
    " updated_at) VALUES (:id, :key, 'stock_shortfall', 'high', :l, :s, :msg, :action, 'open', :now, :now)"
    " ON CONFLICT (dedupe_key) DO UPDATE SET message = excluded.message, action = excluded.action,"
    " severity = excluded.severity, updated_at = excluded.updated_at, resolved_by = NULL,"
    " raised_at = CASE WHEN exception_item.status = 'open' THEN exception_item.raised_at ELSE excluded.raised_at END,"
    " status = 'open'"
).bindparams(bindparam("now", type_=UTCDateTime()))


def raise_shortfalls(session: Session, items: Iterable[tuple[str, str, int, int]]) -> int:
    """Open (or refresh) a `stock_shortfall` exception per (location, sku, on_hand, reserved) with on hand below
    reserved: the reservations are kept, someone must count or re-route. Returns how many were raised."""
    at = now()
    params = [{"id": new_id("exc"), "key": f"stock_shortfall:{loc}:{sku}", "l": loc, "s": sku, "now": at,
               "msg": f"{loc} has {on_hand} of {sku} on hand but {reserved} reserved for orders",
               "action": f"Count {sku} at {loc}; if the units are gone, reject the open lines so they re-route"}
              for loc, sku, on_hand, reserved in items if on_hand < reserved]
    if params:
        session.execute(_SHORTFALL, params)
    return len(params)


def retry_backorders(session: Session, skus: Iterable[str]) -> None:
    """Stock arrived for these SKUs: let routing retry the lines waiting for them (same transaction)."""
    wanted = set(skus)
    if not wanted:
        return
    from backend.services import routing

    # Only SKUs something waits for (a feed may name the whole catalogue; few lines wait at any time).
    waiting = set(session.exec(select(OrderLine.sku).where(routing.waiting_line()).distinct()))
    wanted = sorted(wanted & waiting)
    if not wanted:
        return

    retry = getattr(routing, "retry_backorders", None)
    if retry is not None:
        retry(session, wanted)


# --- positions --------------------------------------------------------------------------------------------------

_POSITION_COLS = (
    "i.location, i.sku, i.on_hand, i.reserved, COALESCE(i.safety_stock, l.safety_stock),"
    f" COALESCE(i.holdback, l.holdback), i.blocked, {ATP_SQL}, i.updated_at"
)


def positions(session: Session, actor: Principal, location: str | None, sku: str | None, offset: int,
              limit: int) -> Page[PositionOut]:
    """Stock rows, newest figures. HQ and integrations see every location; store staff only their store."""
    if actor.role not in (Role.hq, Role.integration):
        if location is None:
            location = actor.store or (next(iter(actor.locations)) if len(actor.locations) == 1 else None)
        if location is None:
            raise DomainError("location_required", "name the location whose stock you want to see", status=422)
        actor.check_location(location)
    where, params = [], {}
    if location:
        where.append("i.location = :l")
        params["l"] = location
    if sku:
        where.append("i.sku = :s")
        params["s"] = sku
    cond = f"WHERE {' AND '.join(where)}" if where else ""
    total = session.execute(text(f"SELECT COUNT(*) FROM inventory i {cond}"), params).scalar_one()
    rows = session.execute(text(
        f"SELECT {_POSITION_COLS} FROM inventory i JOIN location l ON l.code = i.location {cond}"
        " ORDER BY i.location, i.sku LIMIT :lim OFFSET :off").columns(updated_at=UTCDateTime),
        {**params, "lim": limit, "off": offset}).all()
    items = [PositionOut(location=r[0], sku=r[1], on_hand=r[2], reserved=r[3], safety_stock=r[4], holdback=r[5],
                         blocked=bool(r[6]), atp=max(0, int(r[7])), updated_at=r[8]) for r in rows]
    return Page[PositionOut](items=items, total=total, offset=offset, limit=limit)


# --- availability -----------------------------------------------------------------------------------------------

_AVAILABLE = text(
    f"SELECT i.location, l.type, l.lat, l.lon, {ATP_SQL} AS atp FROM inventory i"
    " JOIN location l ON l.code = i.location"
    f" WHERE i.sku = :s AND l.active AND NOT i.blocked AND {ATP_SQL} > 0"
)


def haversine_km(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    p1, p2 = math.radians(lat), np.radians(lats)
    dlat, dlon = p2 - p1, np.radians(lons) - math.radians(lon)
    a = np.sin(dlat / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def availability(session: Session, sku: str, channel: str, near: str | None = None,
                 radius_km: float | None = None) -> Availability:
    """ATP of one SKU for one channel at every active location that has some; nearest first when `near` is given."""
    return Availability.model_validate(availability_data(session, sku, channel, near, radius_km))


def availability_data(session: Session, sku: str, channel: str, near: str | None = None,
                      radius_km: float | None = None) -> dict[str, Any]:
    """`availability` as plain data (the web shop asks often: no per-location model on this path)."""
    if radius_km is not None and not near:
        raise DomainError("near_required", "radius_km needs near (a ZIP code or lat,lon)", status=422)
    point = resolve_point(near) if near else None
    rows = session.execute(_AVAILABLE, {"s": sku}).all()
    if not rows and session.get(Product, sku) is None:
        raise NotFound("unknown_sku", f"SKU {sku} is not in the catalogue", {"sku": sku})
    exposure = channels.exposure_for(session, channel)
    if not exposure.is_full:
        rows = [(r[0], r[1], r[2], r[3], exposure.atp(int(r[4]), r[0], r[1])) for r in rows]
        rows = [r for r in rows if r[4] > 0]
    if point is None:
        items = [{"location": r[0], "atp": int(r[4]), "distance_km": None, "type": r[1]}
                 for r in sorted(rows, key=lambda r: (-r[4], r[0]))]
    else:
        n = len(rows)
        dist = haversine_km(point[0], point[1], np.fromiter((r[2] for r in rows), float, n),
                            np.fromiter((r[3] for r in rows), float, n))
        order = np.argsort(dist, kind="stable")
        if radius_km is not None:
            order = order[dist[order] <= radius_km]
        km = np.round(dist[order], 2).tolist()
        items = [{"location": rows[k][0], "atp": int(rows[k][4]), "distance_km": d, "type": rows[k][1]}
                 for k, d in zip(order.tolist(), km, strict=True)]
    return {"sku": sku, "channel": channel, "total_atp": sum(x["atp"] for x in items), "locations": items}


def channel_atp(session: Session, skus: Iterable[str], channel: str | None = None) -> dict[tuple[str, str], int]:
    """{(location, sku): ATP for `channel`} at active locations with some (for routing and promises)."""
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    q = text(f"SELECT i.location, i.sku, l.type, {ATP_SQL} FROM inventory i JOIN location l ON l.code = i.location"
             f" WHERE i.sku IN :skus AND l.active AND NOT i.blocked AND {ATP_SQL} > 0"
             ).bindparams(bindparam("skus", expanding=True))
    exposure = channels.exposure_for(session, channel)
    out: dict[tuple[str, str], int] = {}
    for loc, sku, typ, atp in session.execute(q, {"skus": wanted}):
        a = exposure.atp(int(atp), loc, typ)
        if a > 0:
            out[(loc, sku)] = a
    return out


def location_exists(session: Session, code: str) -> Location:
    loc = session.get(Location, code)
    if loc is None:
        raise NotFound("unknown_location", f"location {code} does not exist", {"location": code})
    return loc


