"""HQ read models: store performance and trends. SQL over the whole chain, grouped by store; no writes.

Each figure is one GROUP BY over every active store at once (never a query per store). Step times are medians and
90th percentiles of per-visit durations (a visit = one order at one store): PostgreSQL computes them with
`percentile_cont`; SQLite returns the durations sorted and numpy interpolates them the same way (linear).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import bindparam, text
from sqlmodel import Session, select

from backend.clock import now
from backend.db import UTCDateTime
from backend.errors import DomainError
from backend.models import Location
from backend.principal import Principal
from backend.services import reliability
from shared.enums import LocationType, Role
from shared.hq import Figures, Performance, Period, StoreFigures, Trend, TrendPoint

MAX_PERIOD_DAYS = 400
ACTIVE_STORES = "SELECT code FROM location WHERE type = 'store' AND active"


# -- period and scope -------------------------------------------------------------------------------------------------
def parse_when(value: str, *, end: bool) -> datetime:
    """An ISO date or datetime; a bare date starts at 00:00 UTC (an end date includes its whole day); naive = UTC."""
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            return datetime.combine(d + timedelta(days=1 if end else 0), time(0), tzinfo=UTC)
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise DomainError("invalid_time", f"{value!r} is not an ISO date or date-time (e.g. 2026-11-01 or "
                          "2026-11-01T09:00:00Z)", {"value": value}, status=422) from e
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def period(start: str | None, end: str | None, default_days: int = 7) -> tuple[datetime, datetime]:
    t = parse_when(end, end=True) if end else now()
    f = parse_when(start, end=False) if start else t - timedelta(days=default_days)
    if f >= t:
        raise DomainError("invalid_period", "'from' must be before 'to'", {"from": f.isoformat(), "to": t.isoformat()},
                          status=422)
    if t - f > timedelta(days=MAX_PERIOD_DAYS):
        raise DomainError("period_too_long", f"a period may span at most {MAX_PERIOD_DAYS} days",
                          {"days": (t - f).days}, status=422)
    return f, t


def check_reader(p: Principal, store: str | None = None) -> None:
    """HQ sees every store; a manager their own (and the chain's totals)."""
    p.check_role(Role.hq, Role.manager)
    if store is not None and p.role == Role.manager:
        p.check_location(store)


# -- SQL helpers ------------------------------------------------------------------------------------------------------
def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _minutes(session: Session, a: str, b: str) -> str:
    if _is_pg(session):
        return f"(EXTRACT(EPOCH FROM ({b} - {a}))::float8 / 60.0)"
    return f"((julianday({b}) - julianday({a})) * 1440.0)"


def _day(session: Session, col: str) -> str:
    if _is_pg(session):
        return f"to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    return f"substr({col}, 1, 10)"


def _rows(session: Session, sql: str, **params: Any) -> list[Any]:
    binds = []
    for k, v in params.items():
        if isinstance(v, datetime):
            binds.append(bindparam(k, type_=UTCDateTime()))
        elif isinstance(v, list | tuple | set | frozenset):
            binds.append(bindparam(k, expanding=True))
    return list(session.execute(text(sql).bindparams(*binds), params).all())


KEPT = ("SUM(CASE WHEN v.promise_by IS NOT NULL AND v.done_at <= v.promise_by THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN v.promise_by IS NOT NULL THEN 1 ELSE 0 END)")


def _handovers(session: Session, scope: str) -> str:
    """One row per order a store handed over in [:f, :t) (fulfilled_at is set only with state fulfilled): the store,
    when, units, and the order's method and promise. On PostgreSQL the order is looked up per row by primary key
    (a LATERAL that is not flattened), so a short period never scans the whole orders table."""
    visits = f"""(SELECT location, order_id, MAX(fulfilled_at) AS done_at, SUM(quantity - rejected) AS units
              FROM allocation WHERE fulfilled_at >= :f AND fulfilled_at < :t AND location {scope}
              GROUP BY location, order_id) w"""
    if _is_pg(session):
        orders = ("CROSS JOIN LATERAL (SELECT o.delivery_method, o.promise_by FROM orders o WHERE o.id = w.order_id"
                  " OFFSET 0) o")
    else:
        orders = "JOIN orders o ON o.id = w.order_id"
    return f"SELECT w.location, w.done_at, w.units, o.delivery_method AS method, o.promise_by FROM {visits} {orders}"


def _for_reports(session: Session) -> None:
    """PostgreSQL, this transaction only: sort the durations in memory, and no JIT (compiling these aggregates
    costs seconds and saves milliseconds)."""
    if _is_pg(session):
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        session.execute(text("SET LOCAL jit = off"))


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else 0.0


def _share(num: float, den: float) -> float:
    return round(num / den, 4) if den else 0.0


# -- performance ------------------------------------------------------------------------------------------------------
class _Acc:
    """The raw sums behind one row of figures."""

    def __init__(self) -> None:
        self.orders = self.units = self.released = self.rejected = 0
        self.reasons: dict[str, int] = defaultdict(int)
        self.kept: dict[str, int] = defaultdict(int)
        self.promised: dict[str, int] = defaultdict(int)
        self.steps: dict[str, tuple[float, float]] = {}
        self.counts = self.exact = self.abs_variance = 0
        self.reliability = 1.0
        self.tasks_today = self.capacity = 0

    def figures(self) -> dict[str, Any]:
        kept, promised = sum(self.kept.values()), sum(self.promised.values())
        steps = {f"{s}_minutes_{k}": round(v, 2) for s, (med, p90) in self.steps.items()
                 for k, v in (("median", med), ("p90", p90))}
        return dict(
            orders_fulfilled=self.orders, units_fulfilled=self.units, lines_released=self.released,
            lines_rejected=self.rejected, reject_rate=_share(self.rejected, self.released),
            reject_reasons=dict(sorted(self.reasons.items())),
            promises_kept={m: _share(self.kept[m], n) for m, n in sorted(self.promised.items())},
            promises_kept_overall=_share(kept, promised),
            counts=self.counts, inventory_accuracy=_share(self.exact, self.counts),
            mean_abs_variance=_share(self.abs_variance, self.counts),
            reliability=round(self.reliability, 4),
            tasks_today=self.tasks_today, daily_capacity=self.capacity,
            capacity_use=_share(self.tasks_today, self.capacity), **steps,
        )


def performance(session: Session, p: Principal, start: str | None = None, end: str | None = None) -> Performance:
    check_reader(p)
    f, t = period(start, end)
    _for_reports(session)
    stores = session.exec(select(Location.code, Location.name, Location.timezone, Location.daily_capacity)
                          .where(Location.type == LocationType.store.value, Location.active == True)  # noqa: E712
                          .order_by(Location.code)).all()
    acc: dict[str | None, _Acc] = {s.code: _Acc() for s in stores}
    chain = acc[None] = _Acc()

    def each(code: str) -> Iterable[_Acc]:
        return (acc[code], chain) if code in acc else ()

    for code, n in _rows(session, f"""
            SELECT location, COUNT(*) FROM allocation
            WHERE released_at >= :f AND released_at < :t AND location IN ({ACTIVE_STORES})
            GROUP BY location""", f=f, t=t):
        for a in each(code):
            a.released += n
    for code, reason, n in _rows(session, f"""
            SELECT location, reason, COUNT(DISTINCT allocation_id) FROM rejection
            WHERE at >= :f AND at < :t AND location IN ({ACTIVE_STORES}) GROUP BY location, reason
            UNION ALL
            SELECT location, NULL, COUNT(DISTINCT allocation_id) FROM rejection
            WHERE at >= :f AND at < :t AND location IN ({ACTIVE_STORES}) GROUP BY location""", f=f, t=t):
        for a in each(code):
            if reason is None:
                a.rejected += n
            else:
                a.reasons[reason] += n
    for code, method, orders, units, kept, promised in _rows(session, f"""
            SELECT v.location, v.method, COUNT(*), SUM(v.units), {KEPT}
            FROM ({_handovers(session, f"IN ({ACTIVE_STORES})")}) v GROUP BY v.location, v.method""", f=f, t=t):
        for a in each(code):
            a.orders += orders
            a.units += int(units or 0)
            a.kept[method] += int(kept or 0)
            a.promised[method] += int(promised or 0)
    _step_times(session, f, t, acc)
    for code, n, exact, absvar in _rows(session, f"""
            SELECT location, COUNT(*), SUM(CASE WHEN variance = 0 THEN 1 ELSE 0 END), SUM(ABS(variance))
            FROM stockcount WHERE at >= :f AND at < :t AND location IN ({ACTIVE_STORES}) GROUP BY location""",
                                        f=f, t=t):
        for a in each(code):
            a.counts += n
            a.exact += int(exact or 0)
            a.abs_variance += int(absvar or 0)
    trust = reliability.reliability_by_location(session)
    for s in stores:
        acc[s.code].reliability = trust.get(s.code, reliability.PRIOR)
    chain.reliability = sum(acc[s.code].reliability for s in stores) / len(stores) if stores else reliability.PRIOR
    for code, n in _tasks_today(session, stores).items():
        for a in each(code):
            a.tasks_today += n
    for s in stores:
        for a in each(s.code):
            a.capacity += s.daily_capacity

    visible = [s for s in stores if p.role == Role.hq or s.code == p.store]
    return Performance(
        period=Period(from_=f, to=t), chain=Figures(**chain.figures()),
        stores=[StoreFigures(store=s.code, name=s.name, **acc[s.code].figures()) for s in visible],
    )


STEPS = ("pick", "pack", "handover")


def _step_times(session: Session, f: datetime, t: datetime, acc: dict[str | None, _Acc]) -> None:
    """Median and p90 minutes of each step per store and chain-wide, from one query. (Steps are numbered and store
    codes compared bytewise so that PostgreSQL's sort is cheap.)"""
    m = lambda a, b: _minutes(session, a, b)  # noqa: E731
    loc = 'location COLLATE "C"' if _is_pg(session) else "location"
    durations = f"""
        SELECT 0 AS step, {loc} AS loc, {m('MIN(released_at)', 'MAX(picked_at)')} AS minutes FROM allocation
        WHERE picked_at >= :f AND picked_at < :t AND released_at IS NOT NULL AND location IN ({ACTIVE_STORES})
        GROUP BY location, order_id
        UNION ALL
        SELECT 1, {loc}, {m('MAX(picked_at)', 'MAX(packed_at)')} FROM allocation
        WHERE packed_at >= :f AND packed_at < :t AND picked_at IS NOT NULL AND location IN ({ACTIVE_STORES})
        GROUP BY location, order_id
        UNION ALL
        SELECT 2, {loc}, {m('MAX(packed_at)', 'MAX(fulfilled_at)')} FROM allocation
        WHERE fulfilled_at >= :f AND fulfilled_at < :t AND packed_at IS NOT NULL
          AND location IN ({ACTIVE_STORES})
        GROUP BY location, order_id"""
    for a in acc.values():
        a.steps = dict.fromkeys(STEPS, (0.0, 0.0))
    if _is_pg(session):
        for step, code, med, p90 in _rows(session, f"""
                SELECT step, loc, percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes),
                       percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes)
                FROM ({durations}) d GROUP BY GROUPING SETS ((step, loc), (step))""", f=f, t=t):
            if code is None or code in acc:
                acc[code].steps[STEPS[step]] = (float(med), float(p90))
        return
    values: dict[tuple[int, str | None], list[float]] = defaultdict(list)
    for step, code, minutes in _rows(session, f"SELECT step, loc, minutes FROM ({durations}) d "
                                              "ORDER BY step, loc, minutes", f=f, t=t):
        if code in acc:
            values[(step, code)].append(minutes)
            values[(step, None)].append(minutes)
    for (step, code), v in values.items():
        acc[code].steps[STEPS[step]] = (_pct(v, 50), _pct(v, 90))


def _tasks_today(session: Session, stores: Sequence[Any]) -> dict[str, int]:
    """Orders released to each store since its local midnight: one query per time zone, not per store."""
    by_tz: dict[str, list[str]] = defaultdict(list)
    for s in stores:
        by_tz[s.timezone].append(s.code)
    out: dict[str, int] = {}
    t = now()
    for tz, codes in by_tz.items():
        try:
            zone = ZoneInfo(tz)
        except (KeyError, ValueError):
            zone = ZoneInfo("UTC")
        midnight = datetime.combine(t.astimezone(zone).date(), time(0), tzinfo=zone).astimezone(UTC)
        for code, n in _rows(session, "SELECT location, COUNT(DISTINCT order_id) FROM allocation "
                                      "WHERE released_at >= :since AND location IN :codes GROUP BY location",
                             since=midnight, codes=codes):
            out[code] = n
    return out


# -- trends -----------------------------------------------------------------------------------------------------------
def trends(session: Session, p: Principal, metric: str, days: int = 28, store: str | None = None) -> Trend:
    """A daily series (UTC days, the last one today) of one metric for a store or the chain."""
    check_reader(p, store)
    if store is not None and session.get(Location, store) is None:
        raise DomainError("unknown_location", f"location {store} does not exist", {"store": store}, status=404)
    _for_reports(session)
    t = now()
    first = t.date() - timedelta(days=days - 1)
    f = datetime.combine(first, time(0), tzinfo=UTC)
    scope = "= :store" if store else f"IN ({ACTIVE_STORES})"
    params: dict[str, Any] = {"f": f, "t": t + timedelta(seconds=1)} | ({"store": store} if store else {})
    num: dict[str, float] = defaultdict(float)
    den: dict[str, float] = defaultdict(float)
    if metric == "reject_rate":
        sql = f"""
            SELECT 'num', {_day(session, 'at')} AS d, COUNT(DISTINCT allocation_id) FROM rejection
            WHERE at >= :f AND at < :t AND location {scope} GROUP BY d
            UNION ALL
            SELECT 'den', {_day(session, 'released_at')} AS d, COUNT(*) FROM allocation
            WHERE released_at >= :f AND released_at < :t AND location {scope} GROUP BY d"""
        for kind, d, n in _rows(session, sql, **params):
            (num if kind == "num" else den)[d] += n
    else:
        sql = f"""
            SELECT {_day(session, 'v.done_at')} AS d, COUNT(*), {KEPT}
            FROM ({_handovers(session, scope)}) v GROUP BY d"""
        for d, orders, kept, promised in _rows(session, sql, **params):
            if metric == "orders_fulfilled":
                num[d] += orders
                den[d] += orders
            else:
                num[d] += int(kept or 0)
                den[d] += int(promised or 0)
    series = []
    for i in range(days):
        d = (first + timedelta(days=i)).isoformat()
        value = num[d] if metric == "orders_fulfilled" else _share(num[d], den[d])
        series.append(TrendPoint(date=d, value=value, count=int(den[d])))
    return Trend(metric=metric, days=days, store=store, series=series)

