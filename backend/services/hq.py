"""HQ read models: store performance and trends. SQL over the whole chain, grouped by store; no writes.

Each figure is one GROUP BY over every active store at once (never a query per store). Step times are medians and
90th percentiles of per-visit durations (a visit = one order at one store): PostgreSQL computes them with
`percentile_cont`; SQLite returns the durations sorted and numpy interpolates them the same way (linear).

Store performance over whole past UTC days reads the daily rollup (backend/services/hq_rollup.py, a scheduled job
keeps it) and computes only the rest live, so a year for 500 stores costs about as much as a day; there the step
times come from log-scale histograms (within 5 %, see `bucket`), every count and ratio is the same.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Date, bindparam, text
from sqlmodel import Session, select

from backend.clock import now
from backend.db import UTCDateTime
from backend.errors import DomainError
from backend.models import Location
from backend.principal import Principal
from backend.services import hq_rollup, reliability
from shared.enums import DeliveryMethod, LocationType, RejectReason, Role
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


def _handovers(session: Session, scope: str, days: float, by_day: bool = False) -> str:
    """One row per order a store handed over in [:f, :t) (fulfilled_at is set only with state fulfilled): the store,
    when, units, and the order's method and promise. On PostgreSQL a period of up to two weeks looks each order up
    by primary key (a LATERAL that is not flattened) rather than scanning the whole orders table; longer periods
    leave the join to the planner (a hash join over the table is then cheaper). `by_day`: one row per order, store
    and UTC day (for the daily rollup; a handover is one moment, so this splits nothing in practice)."""
    day = f", {_day(session, 'fulfilled_at')}" if by_day else ""
    visits = f"""(SELECT location, order_id, MAX(fulfilled_at) AS done_at, SUM(quantity - rejected) AS units
              FROM allocation WHERE fulfilled_at >= :f AND fulfilled_at < :t AND location {scope}
              GROUP BY location, order_id{day}) w"""
    if _is_pg(session) and days <= 14:
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
STEPS = ("pick", "pack", "handover")
REASONS = tuple(r.value for r in RejectReason)
METHODS = tuple(m.value for m in DeliveryMethod)
METHOD_SUMS = ("orders", "units", "kept", "promised")


class _Acc:
    """The raw sums behind one row of figures. They add up across days and stores (backend/services/hq_rollup.py
    stores them per store and day); step times are either exact (`steps`, from the durations) or a histogram
    (`hist`: step -> {bucket: visits}, see `bucket`; packed into bytes in the rollup, see `pack_hist`)."""

    def __init__(self) -> None:
        self.orders = self.units = self.released = self.rejected = 0
        self.reasons: dict[str, int] = defaultdict(int)
        self.kept: dict[str, int] = defaultdict(int)
        self.promised: dict[str, int] = defaultdict(int)
        self.steps: dict[str, tuple[float, float]] = dict.fromkeys(STEPS, (0.0, 0.0))
        self.hist: dict[str, dict[int, int]] = {s: defaultdict(int) for s in STEPS}
        self.methods: dict[str, list[int]] = {}
        self.counts = self.exact = self.abs_variance = 0
        self.reliability = 1.0
        self.tasks_today = self.capacity = 0

    def add_method(self, method: str, orders: int, units: int, kept: int, promised: int) -> None:
        self.orders += orders
        self.units += units
        self.kept[method] += kept
        self.promised[method] += promised
        m = self.methods.setdefault(method, [0, 0, 0, 0])
        for i, v in enumerate((orders, units, kept, promised)):
            m[i] += v

    def add(self, other: _Acc) -> None:
        """Add another accumulator's raw sums (not its step times)."""
        self.released += other.released
        self.rejected += other.rejected
        self.counts += other.counts
        self.exact += other.exact
        self.abs_variance += other.abs_variance
        for r, n in other.reasons.items():
            self.reasons[r] += n
        for m, v in other.methods.items():
            self.add_method(m, *v)

    def add_row(self, row: Mapping[str, Any], hist: bool = True) -> None:
        """Add one rollup row (HqRollup's columns, or their sums)."""
        self.released += int(row["released"] or 0)
        self.rejected += int(row["rejected"] or 0)
        self.counts += int(row["counts"] or 0)
        self.exact += int(row["exact"] or 0)
        self.abs_variance += int(row["abs_variance"] or 0)
        for r in REASONS:
            if n := int(row[f"rej_{r}"] or 0):
                self.reasons[r] += n
        for m in METHODS:
            v = [int(row[f"{m}_{k}"] or 0) for k in METHOD_SUMS]
            if any(v):
                self.add_method(m, *v)
        extra = row.get("extra") or {}
        for r, n in extra.get("reasons", {}).items():
            self.reasons[r] += n
        for m, v in extra.get("methods", {}).items():
            self.add_method(m, *v)
        if hist:
            for key, n in np.frombuffer(row.get("hist") or b"", dtype="<i4").reshape(-1, 2).tolist():
                self.hist[STEPS[key // NB]][key % NB - OFFSET] += n

    def row(self) -> dict[str, Any]:
        """The raw sums as a rollup row's columns."""
        out: dict[str, Any] = dict(released=self.released, rejected=self.rejected, counts=self.counts,
                                   exact=self.exact, abs_variance=self.abs_variance, hist=pack_hist(self.hist))
        out |= {f"rej_{r}": 0 for r in REASONS} | {f"{m}_{k}": 0 for m in METHODS for k in METHOD_SUMS}
        extra: dict[str, dict[str, Any]] = {}
        for r, n in self.reasons.items():
            if r in REASONS:
                out[f"rej_{r}"] = n
            else:
                extra.setdefault("reasons", {})[r] = n
        for m, v in self.methods.items():
            if m in METHODS:
                out |= {f"{m}_{k}": x for k, x in zip(METHOD_SUMS, v, strict=True)}
            else:
                extra.setdefault("methods", {})[m] = v
        return out | {"extra": extra, "has_extra": bool(extra)}

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


# -- step-time histograms ---------------------------------------------------------------------------------------------
# Durations summed over days cannot give an exact median, so the rollup keeps, per store, day and step, how many
# visits fell in each bucket of a log scale: bucket b >= 0 holds durations in [R^b - 1, R^(b+1) - 1) minutes
# (R = 1.05), and its mirror -1 - b the negative ones (clock skew) in (-(R^(b+1) - 1), -(R^b - 1)]. A percentile
# read from summed buckets (the values spread evenly inside their bucket, then interpolated linearly between
# neighbouring ranks as percentile_cont does) is within one bucket of the exact figure: at most 5 % of
# (1 + |minutes|) off, e.g. ±0.55 min at 10 min, ±3 min at 60 min.
HIST_RATIO = 1.05
_LOG_R = float(np.log(HIST_RATIO))


def bucket(minutes: float) -> int:
    m = float(minutes)
    if m >= 0:
        return int(np.floor(np.log1p(m) / _LOG_R))
    return -1 - int(np.floor(np.log1p(-m) / _LOG_R))


def _bucket_range(b: int) -> tuple[float, float]:
    if b >= 0:
        return HIST_RATIO ** b - 1.0, HIST_RATIO ** (b + 1) - 1.0
    k = -1 - b
    return -(HIST_RATIO ** (k + 1) - 1.0), -(HIST_RATIO ** k - 1.0)


def _bucket_sql(session: Session, minutes: str) -> str | None:
    """The bucket in SQL (PostgreSQL); None: SQLite, whose durations are bucketed in Python with `bucket`."""
    if _is_pg(session):
        return (f"(CASE WHEN {minutes} >= 0 THEN floor(ln(1.0 + {minutes}) / ln({HIST_RATIO}))"
                f" ELSE -1 - floor(ln(1.0 - {minutes}) / ln({HIST_RATIO})) END)::int")
    return None


NB, OFFSET = 1024, 512  # buckets -512 .. 511 (beyond: the end buckets)
_B = np.arange(NB) - OFFSET
_LO = np.where(_B >= 0, HIST_RATIO ** _B.astype(float) - 1.0, -(HIST_RATIO ** (-_B.astype(float)) - 1.0))
_HI = np.where(_B >= 0, HIST_RATIO ** (_B + 1.0) - 1.0, -(HIST_RATIO ** (-_B - 1.0) - 1.0))


def pack_hist(hist: dict[str, dict[int, int]]) -> bytes:
    """Histograms as the rollup stores them: little-endian int32 pairs (step * NB + bucket + OFFSET, visits)."""
    pairs = [(STEPS.index(step) * NB + min(max(b, -OFFSET), NB - OFFSET - 1) + OFFSET, n)
             for step, h in hist.items() for b, n in sorted(h.items()) if n]
    return np.asarray(pairs, dtype="<i4").reshape(-1, 2).tobytes()


def dense_percentiles(h: np.ndarray, q: float) -> np.ndarray:
    """The q-th percentile (0..100) of each histogram in `h` (shape (..., NB), visits per bucket): the values
    spread evenly inside their bucket, linear between neighbouring ranks like percentile_cont; 0 where empty."""
    c = h.cumsum(-1)
    total = c[..., -1]
    r = np.maximum(q / 100.0 * (total - 1), 0.0)
    k0 = np.floor(r)

    def value(k: np.ndarray) -> np.ndarray:  # the k-th smallest (0-based)
        j = (c > k[..., None]).argmax(-1)[..., None]
        n = np.maximum(np.take_along_axis(h, j, -1)[..., 0], 1)
        before = np.take_along_axis(c, j, -1)[..., 0] - n
        j = j[..., 0]
        return _LO[j] + (k - before + 0.5) / n * (_HI[j] - _LO[j])

    v0 = value(k0)
    v = v0 + (r - k0) * (value(np.minimum(k0 + 1, np.maximum(total - 1, 0))) - v0)
    return np.where(total > 0, v, 0.0)


def hist_percentile(hist: dict[int, int], q: float) -> float:
    """The q-th percentile (0..100) of one histogram {bucket: visits} (see `dense_percentiles`)."""
    h = np.zeros(NB, dtype=np.int64)
    for b, n in hist.items():
        h[min(max(b, -OFFSET), NB - OFFSET - 1) + OFFSET] += n
    return float(dense_percentiles(h, q))


# -- raw sums ---------------------------------------------------------------------------------------------------------
Key = tuple[str | None, str]  # (UTC day 'YYYY-MM-DD' or None, store)


def raw_sums(session: Session, f: datetime, t: datetime, scope: str, *, by_day: bool, hist: bool
             ) -> dict[Key, _Acc]:
    """Every store's raw sums over [f, t) from the event data, per UTC day (`by_day`, for the rollup) or over the
    whole range; step times as histograms (`hist`) or not at all (the exact path adds them with `_step_times`).
    `scope` is the SQL condition on location (e.g. "IN (SELECT ...)")."""
    out: dict[Key, _Acc] = defaultdict(_Acc)
    p = {"f": f, "t": t}

    def d(col: str) -> str:
        return _day(session, col) if by_day else "NULL"

    def key(day: Any, code: str) -> Key:
        return (day if by_day else None, code)

    for day, code, n in _rows(session, f"""
            SELECT {d('released_at')} AS d, location, COUNT(*) FROM allocation
            WHERE released_at >= :f AND released_at < :t AND location {scope}
            GROUP BY d, location""", **p):
        out[key(day, code)].released += n
    for day, code, reason, n in _rows(session, f"""
            SELECT {d('at')} AS d, location, reason, COUNT(DISTINCT allocation_id) FROM rejection
            WHERE at >= :f AND at < :t AND location {scope} GROUP BY d, location, reason
            UNION ALL
            SELECT {d('at')} AS d, location, NULL, COUNT(DISTINCT allocation_id) FROM rejection
            WHERE at >= :f AND at < :t AND location {scope} GROUP BY d, location""", **p):
        a = out[key(day, code)]
        if reason is None:
            a.rejected += n
        else:
            a.reasons[reason] += n
    for day, code, method, orders, units, kept, promised in _rows(session, f"""
            SELECT {d('v.done_at')} AS d, v.location, v.method, COUNT(*), SUM(v.units), {KEPT}
            FROM ({_handovers(session, scope, (t - f).days, by_day=by_day)}) v
            GROUP BY d, v.location, v.method""", **p):
        out[key(day, code)].add_method(method, orders, int(units or 0), int(kept or 0), int(promised or 0))
    for day, code, n, exact, absvar in _rows(session, f"""
            SELECT {d('at')} AS d, location, COUNT(*), SUM(CASE WHEN variance = 0 THEN 1 ELSE 0 END),
                   SUM(ABS(variance))
            FROM stockcount WHERE at >= :f AND at < :t AND location {scope} GROUP BY d, location""", **p):
        a = out[key(day, code)]
        a.counts += n
        a.exact += int(exact or 0)
        a.abs_variance += int(absvar or 0)
    if hist:
        durations = _durations(session, scope, by_day)
        b = _bucket_sql(session, "minutes")
        if b is not None:
            rows = _rows(session, f"SELECT d, step, loc, {b} AS b, COUNT(*) FROM ({durations}) x "
                                  "GROUP BY d, step, loc, b", **p)
        else:
            rows = [(day, step, code, bucket(m), 1)
                    for day, step, code, m in _rows(session, f"SELECT d, step, loc, minutes FROM ({durations}) x",
                                                    **p)]
        for day, step, code, bk, n in rows:
            out[key(day, code)].hist[STEPS[step]][int(bk)] += n
    return out


def _durations(session: Session, scope: str, by_day: bool = False) -> str:
    """Per visit (an order at a store; with `by_day` also per UTC day) and step, its minutes: first release to last
    pick, last pick to last pack, last pack to handover. Each step counts where its own time falls in [:f, :t).
    (Steps are numbered and store codes compared bytewise so that PostgreSQL's sort is cheap.)"""
    m = lambda a, b: _minutes(session, a, b)  # noqa: E731
    loc = 'location COLLATE "C"' if _is_pg(session) else "location"

    def part(step: int, col: str, start: str, end: str, needs: str) -> str:
        day = _day(session, col) if by_day else "NULL"
        group = f", {day}" if by_day else ""
        return f"""
        SELECT {day} AS d, {step} AS step, {loc} AS loc, {m(start, end)} AS minutes FROM allocation
        WHERE {col} >= :f AND {col} < :t AND {needs} IS NOT NULL AND location {scope}
        GROUP BY location, order_id{group}"""

    return " UNION ALL ".join((
        part(0, "picked_at", "MIN(released_at)", "MAX(picked_at)", "released_at"),
        part(1, "packed_at", "MAX(picked_at)", "MAX(packed_at)", "picked_at"),
        part(2, "fulfilled_at", "MAX(packed_at)", "MAX(fulfilled_at)", "packed_at")))


def performance(session: Session, p: Principal, start: str | None = None, end: str | None = None) -> Performance:
    """Every active store's figures over [from, to) and the chain's.

    Whole UTC days that the daily rollup has closed (backend/services/hq_rollup.py) are read from it, whole months
    as one row per store; the rest (the partial first and last day, today, days not rolled up yet) is computed live
    from the event data. Counts and ratios are the same either way. Step times are exact medians and p90s when the
    whole period is live, and read from log-scale histograms (within 5 %, see `bucket`) when rollup days are used.
    """
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

    blocks, live = hq_rollup.plan(session, f, t)
    index = {s.code: i for i, s in enumerate(stores)}
    dense = np.zeros(len(stores) * len(STEPS) * NB, dtype=np.int64)  # the stores' histograms, when blocks are used
    totals, hists = hq_rollup.sums(session, blocks)
    for row in totals:
        for a in each(row["location"]):
            a.add_row(row, hist=False)
    owned = [(index[code], h) for code, h in hists.items() if code in index and h]
    if owned:
        pairs = np.frombuffer(b"".join(h for _, h in owned), dtype="<i4").reshape(-1, 2).astype(np.int64)
        rows_of = np.repeat(np.asarray([i for i, _ in owned], dtype=np.int64), [len(h) // 8 for _, h in owned])
        dense += np.bincount(rows_of * len(STEPS) * NB + pairs[:, 0], weights=pairs[:, 1],
                             minlength=dense.size).astype(np.int64)
    for lf, lt in live:
        for (_, code), s in raw_sums(session, lf, lt, f"IN ({ACTIVE_STORES})", by_day=False,
                                     hist=bool(blocks)).items():
            for a in each(code):
                a.add(s)
            if code in index:
                for step, h in s.hist.items():
                    for b, n in h.items():
                        dense[(index[code] * len(STEPS) + STEPS.index(step)) * NB
                              + min(max(b, -OFFSET), NB - OFFSET - 1) + OFFSET] += n
    if blocks:
        per_store = dense.reshape(len(stores), len(STEPS), NB)
        h = np.concatenate([per_store, per_store.sum(0)[None]])  # the stores, then the chain
        med, p90 = dense_percentiles(h, 50).tolist(), dense_percentiles(h, 90).tolist()
        for i, who in enumerate([*(s.code for s in stores), None]):
            acc[who].steps = {step: (med[i][k], p90[i][k]) for k, step in enumerate(STEPS)}
    else:
        _step_times(session, f, t, acc)
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


def _step_times(session: Session, f: datetime, t: datetime, acc: dict[str | None, _Acc]) -> None:
    """Exact median and p90 minutes of each step per store and chain-wide, from one query over [f, t).
    PostgreSQL computes them with `percentile_cont`; SQLite returns the durations sorted and numpy interpolates
    them the same way (linear)."""
    durations = _durations(session, f"IN ({ACTIVE_STORES})")
    if _is_pg(session):
        for step, code, med, p90 in _rows(session, f"""
                SELECT step, loc, percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes),
                       percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes)
                FROM ({durations}) x GROUP BY GROUPING SETS ((step, loc), (step))""", f=f, t=t):
            if code is None or code in acc:
                acc[code].steps[STEPS[step]] = (float(med), float(p90))
        return
    values: dict[tuple[int, str | None], list[float]] = defaultdict(list)
    for step, code, minutes in _rows(session, f"SELECT step, loc, minutes FROM ({durations}) x "
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
def _iso_day(d: Any) -> str:
    """A rollup row's day as the live queries name days (SQLite returns the date as text)."""
    return d.isoformat() if isinstance(d, date) else str(d)[:10]


def _live_trend(session: Session, metric: str, scope: str, params: dict[str, Any], days: int,
                num: dict[str, float], den: dict[str, float]) -> None:
    """Add each UTC day's numerator and denominator of `metric` over [:f, :t), from the event data (per store and
    day, as the daily rollup counts them)."""
    if metric == "reject_rate":
        sql = f"""
            SELECT 'num', {_day(session, 'at')} AS d, COUNT(DISTINCT allocation_id) FROM rejection
            WHERE at >= :f AND at < :t AND location {scope} GROUP BY d
            UNION ALL
            SELECT 'den', {_day(session, 'released_at')} AS d, COUNT(*) FROM allocation
            WHERE released_at >= :f AND released_at < :t AND location {scope} GROUP BY d"""
        for kind, d, n in _rows(session, sql, **params):
            (num if kind == "num" else den)[d] += n
        return
    sql = f"""
        SELECT {_day(session, 'v.done_at')} AS d, COUNT(*), {KEPT}
        FROM ({_handovers(session, scope, days, by_day=True)}) v GROUP BY d"""
    for d, orders, kept, promised in _rows(session, sql, **params):
        if metric == "orders_fulfilled":
            num[d] += orders
            den[d] += orders
        else:
            num[d] += int(kept or 0)
            den[d] += int(promised or 0)


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
    num: dict[str, float] = defaultdict(float)
    den: dict[str, float] = defaultdict(float)
    from backend.services import hq_rollup

    blocks, live = hq_rollup.plan(session, f, t + timedelta(seconds=1))  # closed days from the daily rollup
    covered = [b + timedelta(days=i) for b, n in blocks for i in range(n)]
    if covered:
        methods = ("same_day", "next_day", "standard", "pickup")
        cols = {"reject_rate": ("rejected", "released"),
                "orders_fulfilled": ("+".join(f"{m}_orders" for m in methods),) * 2,
                "promises_kept": ("+".join(f"{m}_kept" for m in methods),
                                  "+".join(f"{m}_promised" for m in methods))}[metric]
        days_in = bindparam("days", expanding=True, type_=Date)
        params = {"days": covered} | ({"store": store} if store else {})
        sql = text(f"SELECT start, SUM({cols[0]}), SUM({cols[1]}) FROM hqrollup WHERE days = 1 AND start IN :days"
                   f" AND location {scope} GROUP BY start").bindparams(days_in)
        for d, n, m in session.execute(sql, params):
            num[_iso_day(d)] += float(n or 0)
            den[_iso_day(d)] += float(m or 0)
        if metric != "reject_rate":  # delivery methods outside the contract's four are kept in `extra`
            extra = text(f"SELECT start, extra FROM hqrollup WHERE days = 1 AND start IN :days AND has_extra"
                         f" AND location {scope}").bindparams(days_in)
            for d, x in session.execute(extra, params):
                x = json.loads(x) if isinstance(x, str) else (x or {})
                for orders, _units, kept, promised in (x.get("methods") or {}).values():
                    num[_iso_day(d)] += orders if metric == "orders_fulfilled" else kept
                    den[_iso_day(d)] += orders if metric == "orders_fulfilled" else promised
    for a, b in live:  # today, and any day not rolled up yet
        _live_trend(session, metric, scope, {"f": a, "t": b} | ({"store": store} if store else {}), days, num, den)
    series = []
    for i in range(days):
        d = (first + timedelta(days=i)).isoformat()
        value = num[d] if metric == "orders_fulfilled" else _share(num[d], den[d])
        series.append(TrendPoint(date=d, value=value, count=int(den[d])))
    return Trend(metric=metric, days=days, store=store, series=series)

