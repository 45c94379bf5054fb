"""Delivery promises before checkout, soft holds, and how often promises are kept.

Options come from the routing domain itself (`backend.routing`: the same network, ATP, capacity left today,
same-day cut-offs, eligibility and cost model as `backend.services.routing`), so a promised plan is a plan routing
would make; an order that carries a live `quote_id` gets exactly that plan (`take_quote`, called by routing).

When each option arrives (all local times, in the location's or the customer's time zone):

* a location hands over to the carrier today if its local time is before its daily cut-off (`same_day_cutoff`,
  the only cut-off a location has), else the next day; plus its `lead_days`; a store only on a day it opens;
* same-day: by `same_day_by` (21:00) today, and never sooner than `same_day_lead_minutes` from now;
* next-day: one delivery day after the hand-over day (routing keeps next-day within `next_day_max_km`);
* standard: transit days by distance band (`transit_days`, a configurable table) after the hand-over day;
  deliveries happen on `delivery_weekdays` (Mon-Sat by default) and arrive by `deliver_by` (21:00);
* pickup at store P: P's own units are ready `pickup_prep_minutes` after the order, inside P's opening hours and
  before its cut-off; units sent from elsewhere arrive by carrier (transit days by band) and are ready the same way.

Settings: environment variables `STORELINE_PROMISE_*` (see `PromiseSettings`).
"""
from __future__ import annotations

import copy
import math
import re
import time as clock_time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import bindparam, delete, insert, update
from sqlmodel import Session, col, select

from backend import events
from backend.clock import now
from backend.errors import DomainError, NotFound
from backend.ids import new_id
from backend.models import Allocation, Location, Order, OrderLine, Product, Quote, Task
from backend.principal import Principal
from backend.routing.cost import SHIPPING_TERMS, CostModel, Network, OrderRequest, Weights, same_day_open_now
from backend.routing.cost import OrderLine as RLine
from backend.routing.geo import haversine_to_many
from backend.routing.realtime import Candidate, Decision, route_order
from backend.routing.split import join_parts, split_short_lines
from backend.services import channels, reservations, routing
from backend.services.geocode import zip_point
from backend.services.reservations import ATP_SQL
from shared.enums import DeliveryMethod
from shared.promise import (
    AccuracyFigures,
    AccuracyGroup,
    PromiseAccuracy,
    PromiseOption,
    PromiseRequest,
    PromiseResponse,
    QuoteOut,
)

SHIPPED = ("same_day", "next_day", "standard")
LIVE_STATES = ("reserved", "released", "picked", "packed")
HOLD_RETRIES = 3
CANDIDATES = 4  # alternatives kept with each option, for the explanation of an order that takes it


class PromiseSettings(BaseSettings):
    """Promise rules, from `STORELINE_PROMISE_*` environment variables (lists as JSON)."""

    model_config = SettingsConfigDict(env_prefix="STORELINE_PROMISE_", extra="ignore")

    hold_minutes: float = 10.0  # a quote (and its soft hold) lives this long
    pickup_radius_km: float = 25.0  # pickup stores offered within this distance of the ship-to
    pickup_options: int = 3  # at most this many pickup stores
    pickup_prep_minutes: int = 120  # picking and bagging a pickup order at the store
    same_day_by: str = "21:00"
    same_day_lead_minutes: int = 120
    deliver_by: str = "21:00"
    # (up to km, carrier delivery days): the first band whose limit covers the distance applies
    transit_days: list[tuple[float, int]] = [(150.0, 1), (600.0, 2), (1500.0, 3), (3000.0, 4), (1e9, 5)]
    delivery_weekdays: list[int] = [0, 1, 2, 3, 4, 5]  # Monday = 0; carriers deliver Mon-Sat
    default_hours: str = "Mon-Sun 9:00-21:00"  # a store whose `hours` are unset or unreadable
    keep_quotes_hours: float = 24.0  # quotes nobody used are deleted this long after they expire
    live_cache_seconds: float = 2.0  # orders-today counts and weights are re-read this often (per process)


@lru_cache
def get_promise_settings() -> PromiseSettings:
    return PromiseSettings()


# ---------------------------------------------------------------------------------------------------------------
# Time rules (pure)
# ---------------------------------------------------------------------------------------------------------------
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS_PART = re.compile(
    r"(?P<d1>[a-z]{3})[a-z]*(?:\s*-\s*(?P<d2>[a-z]{3})[a-z]*)?\s+"
    r"(?:(?P<closed>closed)|(?P<h1>\d{1,2})(?::(?P<m1>\d{2}))?\s*-\s*(?P<h2>\d{1,2})(?::(?P<m2>\d{2}))?)", re.I)

Hours = dict[int, tuple[int, int]]  # weekday -> (opens, closes) in minutes since local midnight


def parse_hours(text: str | None) -> Hours | None:
    """`"Mon-Sat 9:00-21:00, Sun 10:00-18:00"` (also `Daily 9-21`, `Sun closed`) -> {weekday: (open, close)}."""
    if not text:
        return None
    out: Hours = {}
    for part in re.split(r"[,;]", text):
        part = part.strip().lower().replace("daily", "mon-sun")
        if not part:
            continue
        m = _HOURS_PART.fullmatch(part)
        if m is None or m["d1"] not in _DAYS or (m["d2"] and m["d2"] not in _DAYS):
            return None
        a = _DAYS.index(m["d1"])
        b = _DAYS.index(m["d2"]) if m["d2"] else a
        days = [(a + k) % 7 for k in range((b - a) % 7 + 1)]
        if m["closed"]:
            for d in days:
                out.pop(d, None)
            continue
        opens = int(m["h1"]) * 60 + int(m["m1"] or 0)
        closes = int(m["h2"]) * 60 + int(m["m2"] or 0)
        if not 0 <= opens < closes <= 24 * 60:
            return None
        for d in days:
            out[d] = (opens, closes)
    return out or None


def hhmm(text: str) -> time:
    h, m = text.split(":")[:2]
    return time(min(int(h), 23), min(int(m), 59))


def at_local(d: date, t: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, t, tzinfo=tz)


def transit_days(km: float, bands: list[tuple[float, int]]) -> int:
    for limit, days in bands:
        if km <= limit:
            return int(days)
    return int(bands[-1][1]) if bands else 5


def add_delivery_days(d: date, n: int, weekdays: list[int]) -> date:
    """The n-th delivery day after d (deliveries happen on `weekdays` only)."""
    allowed = set(weekdays) or set(range(7))
    while n > 0:
        d += timedelta(days=1)
        if d.weekday() in allowed:
            n -= 1
    return d


def round_up(t: datetime, minutes: int = 15) -> datetime:
    t = t.replace(second=0, microsecond=0) + (timedelta(minutes=1) if t.second or t.microsecond else timedelta())
    extra = (-t.minute) % minutes
    return t + timedelta(minutes=extra)


def ready_at(start: datetime, hours: Hours, prep_minutes: int, tz: ZoneInfo) -> datetime | None:
    """The first moment at or after `start` when `prep_minutes` of work fit inside the store's opening hours."""
    t = start.astimezone(tz)
    prep = timedelta(minutes=prep_minutes)
    for _ in range(8):
        d = t.date()
        win = hours.get(d.weekday())
        if win:
            opens = at_local(d, time(win[0] // 60, win[0] % 60), tz)
            closes = at_local(d, time(23, 59), tz) if win[1] >= 24 * 60 else at_local(d, time(win[1] // 60,
                                                                                            win[1] % 60), tz)
            begin = max(t, opens)
            if begin + prep <= closes:
                return begin + prep
        t = at_local(d + timedelta(days=1), time(0, 0), tz)
    return None


def _sku(sku: str, qty: int) -> str:
    return f"{qty} of {sku}" if sku.upper().startswith("SKU") else f"{qty} of SKU {sku}"


# ---------------------------------------------------------------------------------------------------------------
# Per-location facts routing does not keep (names, hours...), cached as long as routing's network object lives
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class _Meta:
    network: Network
    name: list[str]
    address: list[str | None]
    hours_text: list[str | None]
    hours: list[Hours]
    lead_days: np.ndarray
    is_store: np.ndarray


_meta: dict[str, _Meta] = {}


def _meta_for(session: Session, nc) -> _Meta:  # noqa: ANN001 - routing's private _NetworkCache
    url = str(session.get_bind().url)
    m = _meta.get(url)
    if m is not None and m.network is nc.network:
        return m
    net: Network = nc.network
    rows = {x.code: x for x in session.exec(select(Location).where(Location.active == True))}  # noqa: E712
    default = parse_hours(get_promise_settings().default_hours) or {d: (540, 1260) for d in range(7)}
    locs = [rows.get(c) for c in net.codes]
    m = _Meta(network=net, name=[x.name if x else c for x, c in zip(locs, net.codes, strict=True)],
              address=[x.address if x else None for x in locs], hours_text=[x.hours if x else None for x in locs],
              hours=[(parse_hours(x.hours) if x else None) or default for x in locs],
              lead_days=np.array([x.lead_days if x else 0 for x in locs], dtype=np.int64),
              is_store=np.asarray(net.type_idx) == 0)
    _meta[url] = m
    return m


# ---------------------------------------------------------------------------------------------------------------
# Options for a cart
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class _Ctx:
    moment: datetime
    nc: object
    meta: _Meta
    net: Network  # the locations that matter for this cart (see _context), live
    stock: dict[str, np.ndarray]
    weights: Weights
    model: CostModel
    lat: float
    lon: float
    tz: ZoneInfo
    dist: np.ndarray
    lines: list[tuple[str, int]]
    cfg: PromiseSettings
    tzs: list[ZoneInfo]  # per location of `net`
    cutoff: np.ndarray  # per location of `net`: daily cut-off, minutes after local midnight


@dataclass
class _Option:
    method: str
    available: bool
    promise_by: datetime | None = None
    reason: str | None = None
    decision: Decision | None = None
    pickup: int | None = None  # index (in the quote's network) of the pickup store


def _ship_point(session: Session, body: PromiseRequest, nc) -> tuple[float, float, ZoneInfo]:  # noqa: ANN001
    st = body.ship_to
    tz_name = None
    if st.lat is not None and st.lon is not None:
        lat, lon = st.lat, st.lon
        if st.zip:
            p = zip_point(st.zip)
            tz_name = p[2] if p else None
    else:
        p = zip_point(st.zip or "")
        if p is None:
            raise DomainError("unknown_zip", f"ship_to ZIP {st.zip!r} is not a known US ZIP code; send lat and lon "
                              "instead", {"zip": st.zip}, status=422)
        lat, lon, tz_name = p
    if tz_name is None:
        net = nc.network
        if len(net):
            d = haversine_to_many(lat, lon, net.lat_rad, net.lon_rad, net.cos_lat)
            return lat, lon, nc.tz[int(np.argmin(d))]
        tz_name = "America/New_York"
    try:
        return lat, lon, ZoneInfo(tz_name)
    except (KeyError, ValueError):
        return lat, lon, ZoneInfo("America/New_York")


_SKUS = select(Product.sku, Product.active).where(col(Product.sku).in_(bindparam("skus", expanding=True)))


def _check_skus(session: Session, skus: set[str]) -> None:
    known = dict(session.execute(_SKUS, {"skus": sorted(skus)}).all())
    missing = sorted(skus - set(known))
    if missing:
        raise DomainError("unknown_sku", f"SKU {missing[0]} is not in the catalogue", {"skus": missing}, status=422)
    inactive = sorted(s for s, active in known.items() if not active)
    if inactive:
        raise DomainError("inactive_sku", f"SKU {inactive[0]} is no longer sold", {"skus": inactive}, status=422)


def _stock(session: Session, net: Network, skus: list[str]) -> dict[str, np.ndarray]:
    """ATP per SKU and location: routing's `atp_rows` + `_stock` (same SQL), fetched in one go."""
    conn = session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (f"SELECT i.sku, i.location, {ATP_SQL} AS atp FROM inventory i JOIN location l ON l.code = i.location"
           f" WHERE l.active AND i.sku IN ({', '.join([mark] * len(skus))}) AND {ATP_SQL} > 0")
    out: dict[str, np.ndarray] = {}
    index = net.index
    for sku, code, atp in conn.exec_driver_sql(sql, tuple(skus)).all():  # hot path: no statement compiling
        i = index.get(code)
        if i is not None:
            arr = out.get(sku)
            if arr is None:
                arr = out[sku] = np.zeros(len(net), dtype=np.int64)
            arr[i] += int(atp)
    return out


@dataclass
class _Today:
    """Per process: each location's orders today (routing's `_orders_today`), time-zone offsets and the routing
    weights, re-read after `live_cache_seconds`. A quote is an estimate that may be taken minutes later anyway;
    stock, by contrast, is always read fresh."""

    network: Network
    minute: int
    expires: float
    used: dict[str, int]
    offsets: np.ndarray
    weights: Weights


_today: dict[str, _Today] = {}


def reset_caches() -> None:
    """Forget the per-process caches (tests that reuse one database URL for different data)."""
    _today.clear()
    _meta.clear()
    get_promise_settings.cache_clear()


def _with_capacity(net: Network, cap: np.ndarray) -> Network:
    """`net` with another capacity left (a shallow copy: the static arrays are shared, nothing recomputed)."""
    live = copy.copy(net)
    live.capacity_left = cap
    return live


def _live(session: Session, nc, moment: datetime) -> tuple[Network, Weights]:  # noqa: ANN001
    """Routing's `_live_network` (capacity left today, same-day cut-offs as of now) and weights."""
    net: Network = nc.network
    url = str(session.get_bind().url)
    minute = int(moment.timestamp() // 60)
    t = _today.get(url)
    if t is None or t.network is not net or t.minute != minute or t.expires < clock_time.monotonic():
        by_zone: dict[str, float] = {}
        offsets = np.array([by_zone.setdefault(tz.key, moment.astimezone(tz).utcoffset().total_seconds() / 60)
                            for tz in nc.tz])
        used = routing._orders_today(session, list(net.codes), moment)
        t = _Today(net, minute, clock_time.monotonic() + get_promise_settings().live_cache_seconds, used, offsets,
                   routing.current_weights(session))
        _today[url] = t
    cap = net.daily_capacity.copy()
    for code, n in t.used.items():
        i = net.index.get(code)
        if i is not None:
            cap[i] = max(0, cap[i] - n)
    live = _with_capacity(net, cap)
    live.same_day_open = same_day_open_now(nc.cutoff_min, t.offsets, moment)
    return live, t.weights


def _subset(net: Network, sel: np.ndarray) -> Network:
    sub = Network([net.codes[i] for i in sel], net.type_idx[sel], net.lat[sel], net.lon[sel], net.ships[sel],
                  net.pickup[sel], net.same_day_radius_km[sel], net.same_day_open[sel], net.capacity_left[sel],
                  net.daily_capacity[sel], net.reliability[sel])
    return sub


def _context(session: Session, body: PromiseRequest) -> _Ctx:
    """Everything one quote needs. Routing runs over the locations that matter for the cart only: those holding
    any of its SKUs (nobody else can be chosen), plus the stores that could deliver or hand it over near the
    customer (for the reasons)."""
    cfg = get_promise_settings()
    moment = now()
    nc = routing.load_network(session)
    lat, lon, tz = _ship_point(session, body, nc)
    lines = [(ln.sku, ln.quantity) for ln in body.lines]
    skus = sorted({s for s, _ in lines})
    _check_skus(session, set(skus))
    base = nc.network
    dist = haversine_to_many(lat, lon, base.lat_rad, base.lon_rad, base.cos_lat) if len(base) else np.zeros(0)
    stock = channels.exposure_for(session, body.channel).limit(_stock(session, base, skus), base.codes, base.types)
    live, weights = _live(session, nc, moment)
    keep = (base.pickup & (dist <= cfg.pickup_radius_km)) | ((dist <= base.same_day_radius_km)
                                                            & (base.same_day_radius_km > 0))
    for arr in stock.values():
        keep |= arr > 0
    sel = np.flatnonzero(keep)
    meta = _meta_for(session, nc)
    sub_meta = _Meta(network=base, name=[meta.name[i] for i in sel], address=[meta.address[i] for i in sel],
                     hours_text=[meta.hours_text[i] for i in sel], hours=[meta.hours[i] for i in sel],
                     lead_days=meta.lead_days[sel], is_store=meta.is_store[sel])
    net = _subset(live, sel)
    return _Ctx(moment=moment, nc=nc, meta=sub_meta, net=net, stock={k: v[sel] for k, v in stock.items()},
                weights=weights, model=CostModel(net, weights), lat=lat, lon=lon, tz=tz, dist=dist[sel],
                lines=lines, cfg=cfg, tzs=[nc.tz[i] for i in sel], cutoff=nc.cutoff_min[sel])


def _request(ctx: _Ctx, method: str, pickup: str | None = None) -> OrderRequest:
    return OrderRequest(id="quote", delivery_method=method, lat=ctx.lat, lon=ctx.lon, pickup_location=pickup,
                        lines=[RLine(str(i), sku, qty) for i, (sku, qty) in enumerate(ctx.lines)])


def _complete(d: Decision) -> bool:
    return bool(d.assignments) and not d.unfilled


def _ship_day(ctx: _Ctx, j: int) -> date:
    """The local day location j hands parcels to the carrier: today before its cut-off, else tomorrow; plus its
    lead days; a store only on a day it opens."""
    local = ctx.moment.astimezone(ctx.tzs[j])
    d = local.date()
    if local.hour * 60 + local.minute + local.second / 60 >= float(ctx.cutoff[j]):
        d += timedelta(days=1)
    d += timedelta(days=int(ctx.meta.lead_days[j]))
    if ctx.meta.is_store[j]:
        for _ in range(7):
            if d.weekday() in ctx.meta.hours[j]:
                break
            d += timedelta(days=1)
    return d


def _km(ctx: _Ctx, a: int, b: int) -> float:
    net = ctx.net
    return float(haversine_to_many(float(net.lat[a]), float(net.lon[a]), net.lat_rad[b:b + 1], net.lon_rad[b:b + 1],
                                   net.cos_lat[b:b + 1])[0])


def _shipped_promise(ctx: _Ctx, method: str, d: Decision) -> tuple[datetime | None, str | None]:
    cfg = ctx.cfg
    if method == "same_day":
        local = ctx.moment.astimezone(ctx.tz)
        by = at_local(local.date(), hhmm(cfg.same_day_by), ctx.tz)
        promise = max(by, round_up(ctx.moment + timedelta(minutes=cfg.same_day_lead_minutes)).astimezone(ctx.tz))
        if promise.date() != local.date():
            return None, "too late in the day for same-day delivery"
        return promise, None
    latest = None
    for code in d.packages:
        j = ctx.net.index[code]
        days = 1 if method == "next_day" else transit_days(float(ctx.dist[j]), cfg.transit_days)
        day = add_delivery_days(_ship_day(ctx, j), days, cfg.delivery_weekdays)
        t = at_local(day, hhmm(cfg.deliver_by), ctx.tz)
        latest = t if latest is None or t > latest else latest
    return latest, None


def _pickup_promise(ctx: _Ctx, p: int, d: Decision) -> tuple[datetime | None, str | None]:
    cfg = ctx.cfg
    tz = ctx.tzs[p]
    hours = ctx.meta.hours[p]
    latest = None
    for code in d.packages:
        j = ctx.net.index[code]
        if j == p:
            local = ctx.moment.astimezone(tz)
            start = ctx.moment
            if local.hour * 60 + local.minute + local.second / 60 >= float(ctx.cutoff[p]):
                start = at_local(local.date() + timedelta(days=1), time(0, 0), tz)
        else:
            arrive = add_delivery_days(_ship_day(ctx, j), transit_days(_km(ctx, j, p), cfg.transit_days),
                                       cfg.delivery_weekdays)
            start = at_local(arrive, time(0, 0), tz)
        t = ready_at(start, hours, cfg.pickup_prep_minutes, tz)
        if t is None:
            return None, f"{ctx.meta.name[p]} has no opening hours for pickup in the coming week"
        latest = t if latest is None or t > latest else latest
    return (round_up(latest) if latest else None), None


def _reason(ctx: _Ctx, method: str) -> str:
    """Why no plan keeps this method's promise, in plain words (the first blocking cause)."""
    net, w = ctx.net, ctx.weights
    if not len(ctx.nc.network):
        return "no locations are set up yet"
    if not len(net):  # nobody holds any of the cart, and no store delivers or hands over near the customer
        sku, qty = ctx.lines[0]
        return {"same_day": "no store delivers the same day to this address",
                "next_day": f"no location within {w.next_day_max_km:.0f} km holds {_sku(sku, qty)}"}.get(
            method, f"{sku} is out of stock")
    oc = ctx.model.order_costs(_request(ctx, method), ctx.stock)
    has = oc.has_stock
    units = oc.stock_units if oc.stock_units is not None else np.zeros_like(has, dtype=np.int64)
    cap_ok = net.capacity_left >= 1
    ships = net.ships
    if method == "same_day":
        region = (ctx.dist <= net.same_day_radius_km) & (net.same_day_radius_km > 0) & ships
        if not region.any():
            return "no store delivers the same day to this address"
        where = f"no store within {float(net.same_day_radius_km[region].max()):.0f} km"
    elif method == "next_day":
        region = (ctx.dist <= w.next_day_max_km) & ships
        where = f"no location within {w.next_day_max_km:.0f} km"
    else:
        region = (ctx.dist <= w.standard_max_km) & ships
        where = "no location that ships here"
    for li, (sku, qty) in enumerate(ctx.lines):
        if not (has[li] & region).any():
            if method == "standard" and units[li].sum() <= 0:
                return f"{sku} is out of stock"
            most = int(units[li][region].max()) if region.any() else 0
            tail = f" (at most {most} in one place)" if most > 0 else ""
            return f"{where} holds {_sku(sku, qty)}{tail}"
    if method == "same_day":
        region = region & net.same_day_open
        if not region.any():
            return "too late for same-day delivery today: the stores that deliver here are past their cut-off"
        for li, (sku, _qty) in enumerate(ctx.lines):
            if not (has[li] & region).any():
                return f"the stores holding {sku} are past their same-day cut-off today"
    if not (region & cap_ok).any():
        return "every location that could deliver it is fully booked today"
    for li, (sku, _qty) in enumerate(ctx.lines):
        if not (has[li] & region & cap_ok).any():
            return f"the locations holding {sku} are fully booked today"
    return "no plan delivers the whole cart this way"


def _kept(ctx: _Ctx, method: str) -> np.ndarray:
    """Where a shipped method's promise can be kept: the cost model's rules (`CostModel.order_costs(...).kept`,
    which prices everything else too; tests/promise check the two agree)."""
    net, w = ctx.net, ctx.weights
    if method == "same_day":
        return (ctx.dist <= net.same_day_radius_km) & net.same_day_open & (net.same_day_radius_km > 0)
    return ctx.dist <= (w.next_day_max_km if method == "next_day" else w.standard_max_km)


def _shipped_option(ctx: _Ctx, method: str) -> _Option:
    """The cheapest plan that keeps the method's promise. Routing proper may prefer a cheaper plan that misses it
    (paying its penalty); when routing's own choice keeps it, this is the same plan. An order placed with the quote
    gets exactly this plan."""
    if not len(ctx.net):
        return _Option(method, False, reason=_reason(ctx, method))
    req = _request(ctx, method)
    kept = _kept(ctx, method)
    d = None
    if kept.any():
        if kept.all():
            net, stock, model = ctx.net, ctx.stock, ctx.model
        else:
            sel = np.flatnonzero(kept)
            net, stock, model = _subset(ctx.net, sel), {k: v[sel] for k, v in ctx.stock.items()}, None
        # as routing does: a line no single location can fill may be shared by several
        d = join_parts(route_order(split_short_lines(req, net, stock), net, stock, ctx.weights, model=model,
                                   max_candidates=CANDIDATES))
    if d is None or not (_complete(d) and d.promise_kept):
        return _Option(method, False, reason=_reason(ctx, method))
    promise, why = _shipped_promise(ctx, method, d)
    if promise is None:
        return _Option(method, False, reason=why)
    return _Option(method, True, promise_by=promise, decision=d)


def _local_ok(ctx: _Ctx, p: int) -> bool:
    need: dict[str, int] = defaultdict(int)
    for sku, qty in ctx.lines:
        need[sku] += qty
    return bool(ctx.net.capacity_left[p] >= 1) and all(
        sku in ctx.stock and int(ctx.stock[sku][p]) >= q for sku, q in need.items())


def _pickup_options(ctx: _Ctx) -> list[_Option]:
    cfg, net = ctx.cfg, ctx.net
    if not len(ctx.nc.network):
        return [_Option("pickup", False, reason="no locations are set up yet")]
    stores = np.flatnonzero(ctx.meta.is_store & net.pickup & (ctx.dist <= cfg.pickup_radius_km))
    stores = stores[np.argsort(ctx.dist[stores], kind="stable")]
    if not stores.size:
        return [_Option("pickup", False, reason=f"no pickup store within {cfg.pickup_radius_km:.0f} km")]
    local = [int(p) for p in stores if _local_ok(ctx, int(p))]
    picks = local[: cfg.pickup_options]
    others = [int(p) for p in stores if int(p) not in local][: 2 * cfg.pickup_options]
    out: list[_Option] = []
    for p in picks + others:
        if len(out) >= cfg.pickup_options:
            break
        req = _request(ctx, "pickup", net.codes[p])
        if p in local:  # keeps the pickup promise only from its own shelf, as a shipped option keeps its method's
            one = np.array([p])
            d = route_order(req, _subset(net, one), {k: v[one] for k, v in ctx.stock.items()}, ctx.weights,
                            max_candidates=CANDIDATES)
        else:  # sent from elsewhere: the whole network, as routing would
            d = route_order(req, net, ctx.stock, ctx.weights, model=ctx.model, max_candidates=CANDIDATES)
        if not _complete(d):
            continue
        promise, _why = _pickup_promise(ctx, p, d)
        if promise is None:
            continue
        out.append(_Option("pickup", True, promise_by=promise, decision=d, pickup=p))
    if out:
        out.sort(key=lambda o: (o.pickup not in local, float(ctx.dist[o.pickup])))
        return out
    nearest = int(stores[0])
    return [_Option("pickup", False, pickup=nearest, reason=_pickup_reason(ctx, stores))]


def _pickup_reason(ctx: _Ctx, stores: np.ndarray) -> str:
    r = ctx.cfg.pickup_radius_km
    oc = ctx.model.order_costs(_request(ctx, "standard"), ctx.stock)
    for li, (sku, qty) in enumerate(ctx.lines):
        if not oc.has_stock[li, stores].any() and not (oc.has_stock[li] & ctx.net.ships).any():
            return f"no store within {r:.0f} km holds {_sku(sku, qty)}, and no location can send it there"
    if not (ctx.net.capacity_left[stores] >= 1).any():
        return f"the pickup stores within {r:.0f} km are fully booked today"
    return f"no store within {r:.0f} km can have the whole cart ready for pickup"


def _public(ctx: _Ctx, o: _Option) -> dict:
    """The option as answered, plus what an order needs to take it (`assign`, costs, candidates)."""
    d = o.decision
    out: dict = {"delivery_method": o.method, "available": o.available, "reason": o.reason,
                 "promise_by": o.promise_by.isoformat() if o.promise_by else None, "cost": None, "packages": 0,
                 "plan": [], "pickup_location": None, "pickup_store": None, "held": False}
    if o.pickup is not None:
        p = o.pickup
        out["pickup_location"] = ctx.net.codes[p]
        out["pickup_store"] = {"name": ctx.meta.name[p], "address": ctx.meta.address[p],
                               "hours": ctx.meta.hours_text[p], "distance_km": round(float(ctx.dist[p]), 1)}
    if d is not None and o.available:
        by_loc: dict[str, list[dict]] = defaultdict(list)
        for key, code, qty in d.assignments:
            by_loc[code].append({"sku": ctx.lines[int(key)][0], "quantity": int(qty)})
        out["plan"] = [{"location": c, "lines": by_loc[c]} for c in d.packages]
        out["packages"] = len(d.packages)
        out["cost"] = round(sum(d.terms.get(t, 0.0) for t in SHIPPING_TERMS), 2)
        out["assign"] = [[int(k), c, int(q)] for k, c, q in d.assignments]
        out["total_cost"] = round(d.total_cost, 4)
        out["terms"] = {k: round(v, 4) for k, v in d.terms.items()}
        out["candidates"] = [c.to_dict() for c in d.candidates]
    return out


def _options(ctx: _Ctx) -> list[dict]:
    opts = [_shipped_option(ctx, m) for m in SHIPPED] + _pickup_options(ctx)
    return [_public(ctx, o) for o in opts]


def _hold_need(options: list[dict]) -> dict[tuple[str, str], int]:
    """Units to hold so that whichever available option the customer picks is covered (max per location+SKU)."""
    need: dict[tuple[str, str], int] = {}
    for o in options:
        if not o["available"]:
            continue
        per: dict[tuple[str, str], int] = defaultdict(int)
        for stop in o["plan"]:
            for ln in stop["lines"]:
                per[(stop["location"], ln["sku"])] += ln["quantity"]
        for k, q in per.items():
            need[k] = max(need.get(k, 0), q)
    return need


_INSERT_QUOTE = insert(Quote)


def quote(session: Session, body: PromiseRequest, actor: Principal) -> PromiseResponse:
    """Delivery options for a cart; with `hold`, the planned units are reserved until the quote expires."""
    cfg = get_promise_settings()
    quote_id = new_id("quo")
    holds: list[dict] = []
    options: list[dict] = []
    for _attempt in range(HOLD_RETRIES if body.hold else 1):
        ctx = _context(session, body)
        options = _options(ctx)
        if not body.hold:
            break
        taken: list[tuple[str, str, int]] = []
        ok = True
        for (loc, sku), qty in sorted(_hold_need(options).items()):
            if not reservations.reserve(session, loc, sku, qty, ref=quote_id, actor=actor.username):
                ok = False
                break
            taken.append((loc, sku, qty))
        if ok:
            holds = [{"location": loc, "sku": sku, "quantity": q} for loc, sku, q in taken]
            break
        for loc, sku, qty in taken:  # another order took some units first: give back and price again
            reservations.unreserve(session, loc, sku, qty, cause="quote_retry", ref=quote_id)
    held = bool(holds)
    for o in options:
        o["held"] = held and o["available"]
    moment = now()
    q = Quote(id=quote_id, channel=body.channel, state="held" if held else "open",
              ship_to=body.ship_to.model_dump(exclude_none=True),
              lines=[ln.model_dump() for ln in body.lines], options=options, holds=holds, created_at=moment,
              expires_at=moment + timedelta(minutes=cfg.hold_minutes))
    session.execute(_INSERT_QUOTE, q.model_dump())  # one row, no unit of work: this is the hot path
    if held:
        events.record(session, "quote.held", "quote", q.id, actor=actor.username,
                      data={"holds": holds, "expires_at": q.expires_at.isoformat()})
    session.commit()
    return _response(q)


def _response(q: Quote, cls: type[PromiseResponse] = PromiseResponse, **extra) -> PromiseResponse:
    held = q.state == "held"
    opts = []
    for o in q.options:
        po = PromiseOption.model_validate(o)
        po.held = held and po.available
        opts.append(po)
    return cls(quote_id=q.id, expires_at=q.expires_at, held=held, options=opts, **extra)


def get_quote(session: Session, quote_id: str) -> QuoteOut:
    """Read a quote; a hold past its expiry is released here and now (lazily, besides the scheduled job)."""
    q = session.get(Quote, quote_id)
    if q is None:
        raise NotFound("unknown_quote", f"quote {quote_id} does not exist", {"quote_id": quote_id})
    if q.state == "held" and q.expires_at <= now():
        _release(session, q, "expired")
        session.commit()
        session.refresh(q)
    return _response(q, QuoteOut, status=q.state, order_id=q.order_id)


def _release(session: Session, q: Quote, state: str, actor: str | None = None) -> bool:
    """Give a held quote's units back (exactly once, whoever gets here first). Does not commit."""
    res = session.execute(update(Quote).where(col(Quote.id) == q.id, col(Quote.state) == "held")
                          .values(state=state).execution_options(synchronize_session=False))
    if res.rowcount != 1:
        return False
    for h in q.holds:
        reservations.unreserve(session, h["location"], h["sku"], int(h["quantity"]), cause=f"quote_{state}",
                               ref=q.id, actor=actor)
    q.state = state
    session.add(q)
    events.record(session, f"quote.{state}", "quote", q.id, actor=actor, data={"holds": q.holds})
    return True


def expire_holds(session: Session) -> int:
    """Scheduled job: release holds past their expiry; forget old quotes nobody used. Commits."""
    moment = now()
    due = session.exec(select(Quote).where(Quote.state == "held", Quote.expires_at <= moment)
                       .order_by(Quote.expires_at).limit(1000)).all()
    released = sum(_release(session, q, "expired", actor="system") for q in due)
    keep = timedelta(hours=get_promise_settings().keep_quotes_hours)
    session.execute(delete(Quote).where(col(Quote.state).in_(["open", "expired", "released"]),
                                        Quote.expires_at < moment - keep))
    session.commit()
    return released


# ---------------------------------------------------------------------------------------------------------------
# An order placed with a quote
# ---------------------------------------------------------------------------------------------------------------
def _match(cart: list[dict], lines: list[OrderLine]) -> dict[int, OrderLine] | None:
    """Cart line index -> order line, when the order has exactly the quoted cart."""
    if len(cart) != len(lines):
        return None
    free = list(range(len(cart)))
    out: dict[int, OrderLine] = {}
    for ln in lines:
        i = next((k for k in free if cart[k]["sku"] == ln.sku and int(cart[k]["quantity"]) == ln.quantity), None)
        if i is None:
            return None
        free.remove(i)
        out[i] = ln
    return out


def _order_tz(session: Session, order: Order) -> str:
    """The time zone orders.create_order used for the default promise."""
    if order.pickup_location:
        loc = session.get(Location, order.pickup_location)
        return loc.timezone if loc else "America/New_York"
    z = (order.ship_to or {}).get("zip")
    p = zip_point(z) if z else None
    return p[2] if p else "America/New_York"


def take_quote(session: Session, quote_id: str, order: Order) -> Decision | None:
    """The quoted plan for this order, its units reserved (moved from the hold, or reserved now), or None when the
    quote is unknown, expired, used, or for another cart or method (a hold is then given back). Does not commit;
    routing applies the returned decision like one of its own (line keys are the order's `line_id`s)."""
    q = session.get(Quote, quote_id)
    if q is None or q.state not in ("open", "held"):
        return None
    moment = now()
    if q.expires_at <= moment:
        if q.state == "held":
            _release(session, q, "expired")
        return None
    lines = list(session.exec(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.line_id)))
    match = _match(q.lines, lines)
    opt = next((o for o in q.options if o["available"] and o["delivery_method"] == order.delivery_method
                and (order.delivery_method != "pickup" or o.get("pickup_location") == order.pickup_location)), None)
    was_held = q.state == "held"
    if match is None or opt is None:
        if was_held:
            _release(session, q, "released")
        return None
    assign = [(match[int(i)], code, int(qty)) for i, code, qty in opt["assign"]]
    if not was_held:
        got: list[tuple[str, str, int]] = []
        for ln, code, qty in assign:
            if not reservations.reserve(session, code, ln.sku, qty, ref=order.id):
                for c, s, n in got:
                    reservations.unreserve(session, c, s, n, cause="race", ref=order.id)
                return None
            got.append((code, ln.sku, qty))
    claimed = session.execute(update(Quote).where(col(Quote.id) == q.id, col(Quote.state) == q.state,
                                                  col(Quote.expires_at) > moment)
                              .values(state="taken", order_id=order.id).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # expired or taken by someone else meanwhile
        if not was_held:
            for ln, code, qty in assign:
                reservations.unreserve(session, code, ln.sku, qty, cause="race", ref=order.id)
        return None
    if was_held:
        need: dict[tuple[str, str], int] = defaultdict(int)
        for ln, code, qty in assign:
            need[(code, ln.sku)] += qty
        for h in q.holds:  # the order keeps what its plan uses; the rest of the hold goes back
            spare = int(h["quantity"]) - need.get((h["location"], h["sku"]), 0)
            reservations.unreserve(session, h["location"], h["sku"], spare, cause="quote_spare", ref=q.id)
    q.state, q.order_id = "taken", order.id
    session.add(q)
    _quoted_promise(session, order, opt)
    events.record(session, "quote.taken", "quote", q.id, order_id=order.id,
                  data={"delivery_method": order.delivery_method, "pickup_location": order.pickup_location,
                        "held": was_held, "promise_by": opt.get("promise_by")})
    key = {str(i): ln.line_id for i, ln in match.items()}
    cands = []
    for c in opt.get("candidates", []):
        cands.append(Candidate(c["location"], c["type"], c["distance_km"],
                               [key.get(k, k) for k in c["lines_covered"]], [key.get(k, k) for k in c["lines_missing"]],
                               c["cost"], c["terms"], c["reasons"], c["chosen"], c["promise_kept"]))
    return Decision(order.id, order.delivery_method, [(ln.line_id, code, qty) for ln, code, qty in assign], [],
                    float(opt["total_cost"]), dict(opt["terms"]), sorted({code for _, code, _ in assign}), True,
                    cands, None, None, "quote")


def _quoted_promise(session: Session, order: Order, opt: dict) -> None:
    """An order that came without its own promise gets the one the customer was shown."""
    if not opt.get("promise_by") or order.promise_by is None:
        return
    from backend.services.orders import default_promise

    default = default_promise(DeliveryMethod(order.delivery_method), order.created_at, _order_tz(session, order))
    if order.promise_by == default:
        order.promise_by = datetime.fromisoformat(opt["promise_by"])
        session.add(order)


# ---------------------------------------------------------------------------------------------------------------
# Promise accuracy
# ---------------------------------------------------------------------------------------------------------------
GROUPS = ("method", "store", "week")
MAX_PERIOD = timedelta(days=400)


@dataclass
class _Tally:
    kept: int = 0
    late: int = 0
    overdue: int = 0
    pending: int = 0
    cancelled: int = 0
    late_hours: list[float] = field(default_factory=list)

    def add(self, outcome: str, late_h: float | None = None) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome == "late" and late_h is not None:
            self.late_hours.append(late_h)

    def figures(self) -> dict:
        due = self.kept + self.late + self.overdue
        return {"orders": due + self.pending + self.cancelled, "kept": self.kept, "late": self.late,
                "overdue": self.overdue, "pending": self.pending, "cancelled": self.cancelled,
                "share_kept": round(self.kept / due, 4) if due else None,
                "avg_late_hours": round(sum(self.late_hours) / len(self.late_hours), 2) if self.late_hours else None}


def _outcome(promise: datetime, done: datetime | None, moment: datetime) -> tuple[str, float | None]:
    if done is not None:
        if done <= promise:
            return "kept", None
        return "late", (done - promise).total_seconds() / 3600
    return ("overdue" if promise < moment else "pending"), None


def promise_accuracy(session: Session, start: datetime | None, end: datetime | None, group: str) -> PromiseAccuracy:
    """Promises due in [start, end): kept (handed over on time), late, overdue (still open) and pending."""
    if group not in GROUPS:
        raise DomainError("invalid_group", f"group must be one of {', '.join(GROUPS)}", {"group": group}, status=422)
    moment = now()
    end = end or moment
    start = start or end - timedelta(days=7)
    for name, v in (("from", start), ("to", end)):
        if v.tzinfo is None:
            raise DomainError("invalid_period", f"{name} needs a time zone, e.g. 2026-11-25T00:00:00Z",
                              {name: v.isoformat()}, status=422)
    if end <= start or end - start > MAX_PERIOD:
        raise DomainError("invalid_period", "from must be before to, at most 400 days apart",
                          {"from": start.isoformat(), "to": end.isoformat()}, status=422)
    rows = session.exec(
        select(Order.id, Order.delivery_method, Order.status, Order.promise_by, Order.closed_at, Allocation.location,
               Allocation.state, Allocation.fulfilled_at, Task.handed_over_at)
        .select_from(Order)
        .join(Allocation, (col(Allocation.order_id) == Order.id)
              & col(Allocation.state).in_([*LIVE_STATES, "fulfilled"]), isouter=True)
        .join(Task, col(Task.id) == Allocation.task_id, isouter=True)
        .where(Order.promise_by >= start, Order.promise_by < end)).all()
    orders: dict[str, dict] = {}
    for oid, method, status, promise, closed, loc, state, fulfilled, handed in rows:
        o = orders.setdefault(oid, {"method": method, "status": status, "promise": promise, "closed": closed,
                                    "locs": defaultdict(list)})
        if loc is not None:
            o["locs"][loc].append((fulfilled or handed) if state == "fulfilled" else None)
    total, groups = _Tally(), defaultdict(_Tally)
    for o in orders.values():
        promise = o["promise"]
        if o["status"] == "cancelled":
            outcome, late_h = "cancelled", None
        else:
            done = None
            if o["status"] in ("shipped", "collected"):
                times = [t for ts in o["locs"].values() for t in ts if t is not None]
                done = max(times) if times else (o["closed"] or promise)
            outcome, late_h = _outcome(promise, done, moment)
        total.add(outcome, late_h)
        if group == "method":
            groups[o["method"]].add(outcome, late_h)
        elif group == "week":
            iso = promise.isocalendar()
            groups[f"{iso.year}-W{iso.week:02d}"].add(outcome, late_h)
        else:
            if not o["locs"]:
                groups["unassigned"].add(outcome, late_h)
            for loc, times in o["locs"].items():
                if outcome == "cancelled":
                    groups[loc].add("cancelled")
                    continue
                done = max(times) if times and all(t is not None for t in times) else None
                groups[loc].add(*_outcome(promise, done, moment))
    return PromiseAccuracy(period={"from": start, "to": end}, group=group,
                           total=AccuracyFigures(**total.figures()),
                           groups=[AccuracyGroup(key=k, **groups[k].figures()) for k in sorted(groups)])


# ---------------------------------------------------------------------------------------------------------------
# Orders at risk (for the exceptions queue)
# ---------------------------------------------------------------------------------------------------------------
STEP_OF_STATE = {"reserved": "release", "released": "pick", "picked": "pack", "packed": "handover"}
WORK_MINUTES = {"release": 120, "pick": 60, "pack": 20, "handover": 15}
STEP_WORDS = {"release": "still waits to be released to", "pick": "still to pick at", "pack": "still to pack at",
              "handover": "packed, waiting for hand-over at"}


@dataclass(frozen=True)
class OrderAtRisk:
    """An open order (at one location) that will probably miss its promise, or already has."""

    order_id: str
    external_id: str
    delivery_method: str
    location: str | None  # None: nothing placed (backorder)
    step: str  # release | pick | pack | handover | backorder
    promise_by: datetime
    handover_by: datetime  # last hand-over that still keeps the promise (promise minus carrier transit)
    minutes_left: float  # to handover_by; negative: already too late
    work_minutes: int  # typical work still to do at that step
    severity: str  # high | medium
    reason: str


def orders_at_risk(session: Session, moment: datetime | None = None) -> list[OrderAtRisk]:
    """Open orders whose remaining work will not fit before their hand-over deadline, most urgent first.

    A pickup or same-day order must be handed over by its promise (same-day: an hour before, for the drive);
    a next-day order a day before; a standard one its carrier transit days (by distance band) before. Pure read.
    """
    moment = moment or now()
    cfg = get_promise_settings()
    horizon = moment + timedelta(days=max(d for _, d in cfg.transit_days) + 3)
    rows = session.exec(
        select(Order.id, Order.external_id, Order.delivery_method, Order.status, Order.promise_by, Order.ship_lat,
               Order.ship_lon, Allocation.location, Allocation.state)
        .select_from(Order)
        .join(Allocation, (col(Allocation.order_id) == Order.id) & col(Allocation.state).in_(LIVE_STATES),
              isouter=True)
        .where(col(Order.status).not_in(["shipped", "collected", "cancelled"]), col(Order.promise_by).is_not(None),
               Order.promise_by < horizon)).all()
    nc = routing.load_network(session)
    net: Network = nc.network
    visits: dict[tuple[str, str | None], list] = {}
    for oid, ext, method, _status, promise, lat, lon, loc, state in rows:
        step = STEP_OF_STATE.get(state or "", "backorder")
        v = visits.setdefault((oid, loc), [ext, method, promise, lat, lon, step])
        order_steps = list(STEP_OF_STATE.values())
        if step in order_steps and v[5] in order_steps and order_steps.index(step) < order_steps.index(v[5]):
            v[5] = step
    out: list[OrderAtRisk] = []
    for (oid, loc), (ext, method, promise, lat, lon, step) in visits.items():
        if method == "pickup":
            deadline = promise
        elif method == "same_day":
            deadline = promise - timedelta(hours=1)
        elif method == "next_day":
            deadline = promise - timedelta(days=1)
        else:
            km = 0.0
            j = net.index.get(loc or "")
            if j is not None and lat is not None and lon is not None:
                km = float(haversine_to_many(lat, lon, net.lat_rad[j:j + 1], net.lon_rad[j:j + 1],
                                             net.cos_lat[j:j + 1])[0])
            deadline = promise - timedelta(days=transit_days(km, cfg.transit_days))
        left = (deadline - moment).total_seconds() / 60
        work = WORK_MINUTES.get(step, 0)
        if step == "backorder":
            if left > 48 * 60:
                continue
            reason = f"order {ext}: nothing placed yet (backorder); its {method.replace('_', '-')} promise is near"
        else:
            if left >= work:
                continue
            reason = (f"order {ext} {STEP_WORDS[step]} {loc}: about {work} min of work, "
                      f"{max(0, math.floor(left))} min to hand it over in time")
        severity = "high" if left < 0 or method == "same_day" or step == "backorder" else "medium"
        if left < 0:
            reason += " (already too late: tell the customer)"
        out.append(OrderAtRisk(oid, ext, method, loc, step, promise, deadline, round(left, 1), work, severity,
                               reason))
    out.sort(key=lambda r: r.minutes_left)
    return out
