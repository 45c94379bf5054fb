"""The HQ daily rollup: each store's raw sums per closed UTC day, and per whole calendar month, so that store
performance over a year reads about 40 rows per store instead of every allocation of the year.

Kept by the scheduled job `hq_rollup` (backend/scheduler.py, every few minutes, once across processes): it computes
every closed day that has no rollup yet (a day is closed `SETTLE` after its UTC midnight; up to `DAYS_PER_RUN` days
per run, newest first, one set-based query per stretch of days), computes a closed day again once more when its
rows were made less than `RECHECK` after it closed (so that a transaction still open at midnight is counted), and
sums a month's day rows into one row per store once every day of the month is final. Each block of days is written
in one transaction together with its HqRollupBlock row, so a reader sees a block whole or not at all.

backend/services/hq.py `performance` reads the blocks that lie inside the asked period and computes everything else
live; counts and ratios are the same as the live path (every event counts in the UTC day of its own time; a visit
whose picks or packs straddle midnight UTC counts as one visit per day in the step-time histograms). Rows written
afterwards with a time inside a closed day (a bulk import of history) are not seen until `invalidate` drops the
blocks concerned.
"""
from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, bindparam, delete, func, text
from sqlmodel import Session, select

from backend.clock import now
from backend.db import UTCDateTime
from backend.models import HqRollup, HqRollupBlock

SETTLE = timedelta(minutes=5)
RECHECK = timedelta(hours=1)
DAYS_PER_RUN = 62
CHUNK_DAYS = 31
STORES = "IN (SELECT code FROM location WHERE type = 'store')"


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


def _month_days(d: date) -> int:
    return calendar.monthrange(d.year, d.month)[1]


# -- reading ----------------------------------------------------------------------------------------------------------
def plan(session: Session, f: datetime, t: datetime) -> tuple[list[tuple[date, int]], list[tuple[datetime, datetime]]]:
    """The rollup blocks (start, days) that lie wholly inside [f, t), whole months first, and the time ranges left
    to compute live (merged, in order)."""
    d0 = f.date() if f == _midnight(f.date()) else f.date() + timedelta(days=1)
    d1 = t.date()
    if d0 >= d1:
        return [], [(f, t)]
    have = {(b.start, b.days) for b in session.exec(
        select(HqRollupBlock).where(HqRollupBlock.start >= d0, HqRollupBlock.start < d1)).all()}
    blocks: list[tuple[date, int]] = []
    live: list[tuple[datetime, datetime]] = []

    def gap(a: datetime, b: datetime) -> None:
        if a >= b:
            return
        if live and live[-1][1] == a:
            live[-1] = (live[-1][0], b)
        else:
            live.append((a, b))

    gap(f, _midnight(d0))
    d = d0
    while d < d1:
        n = _month_days(d)
        if d.day == 1 and (d, n) in have and d + timedelta(days=n) <= d1:
            blocks.append((d, n))
            d += timedelta(days=n)
        elif (d, 1) in have:
            blocks.append((d, 1))
            d += timedelta(days=1)
        else:
            gap(_midnight(d), _midnight(d + timedelta(days=1)))
            d += timedelta(days=1)
    gap(_midnight(d1), t)
    return blocks, live


SUMMED = [c.name for c in HqRollup.__table__.columns
          if c.name not in ("location", "start", "days", "has_extra", "extra", "hist")]


def sums(session: Session, blocks: list[tuple[date, int]]) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """The rollup of these blocks summed per store: one mapping per store with HqRollup's columns (the counters
    summed in SQL, `extra` merged), and each store's histograms, packed (its rows' concatenated)."""
    if not blocks:
        return [], {}
    pg = session.get_bind().dialect.name == "postgresql"
    where = "((r.days = 1 AND r.start IN :days) OR (r.days > 1 AND r.start IN :months))"
    params = {"days": [s for s, n in blocks if n == 1] or [date(1, 1, 1)],
              "months": [s for s, n in blocks if n > 1] or [date(1, 1, 1)]}
    binds = (bindparam("days", expanding=True, type_=Date), bindparam("months", expanding=True, type_=Date))

    def q(sql: str) -> Any:
        return session.execute(text(sql).bindparams(*binds), params)

    out = {r["location"]: dict(r) for r in q(
        f"SELECT r.location, {', '.join(f'SUM(r.{c}) AS {c}' for c in SUMMED)} FROM hqrollup r WHERE {where}"
        " GROUP BY r.location").mappings()}
    extra = text(f"SELECT r.location, r.extra FROM hqrollup r WHERE {where} AND r.has_extra").bindparams(*binds)
    for code, x in session.execute(extra.columns(HqRollup.__table__.c.location, HqRollup.__table__.c.extra),
                                   params):
        merged = out[code].setdefault("extra", {"reasons": {}, "methods": {}})
        for r, n in (x or {}).get("reasons", {}).items():
            merged["reasons"][r] = merged["reasons"].get(r, 0) + n
        for m, v in (x or {}).get("methods", {}).items():
            merged["methods"][m] = [a + b for a, b in zip(merged["methods"].get(m, [0, 0, 0, 0]), v, strict=True)]
    if pg:
        hists = {code: bytes(h or b"") for code, h in q(
            f"SELECT r.location, string_agg(r.hist, ''::bytea) FROM hqrollup r WHERE {where} GROUP BY r.location")}
    else:
        parts: dict[str, list[bytes]] = defaultdict(list)
        for code, h in q(f"SELECT r.location, r.hist FROM hqrollup r WHERE {where}"):
            parts[code].append(bytes(h or b""))
        hists = {code: b"".join(v) for code, v in parts.items()}
    return list(out.values()), hists


# -- keeping it -------------------------------------------------------------------------------------------------------
def _write(session: Session, start: date, days: int, sums: dict[str, Any]) -> None:
    """Replace one block's rows and mark it computed (the caller commits)."""
    session.execute(delete(HqRollup).where(HqRollup.start == start, HqRollup.days == days))
    session.execute(delete(HqRollupBlock).where(HqRollupBlock.start == start, HqRollupBlock.days == days))
    if sums:
        session.execute(HqRollup.__table__.insert(),
                        [{"location": code, "start": start, "days": days, **acc.row()} for code, acc in sums.items()])
    session.add(HqRollupBlock(start=start, days=days, computed_at=now()))
    session.flush()


def compute_days(session: Session, first: date, last: date) -> int:
    """(Re)compute the day rows of [first, last] from the event data, one set-based pass per stretch of
    CHUNK_DAYS; each stretch is committed on its own. Returns the days written."""
    from backend.services import hq

    written = 0
    d = first
    while d <= last:
        end = min(last, d + timedelta(days=CHUNK_DAYS - 1))
        hq._for_reports(session)
        sums = hq.raw_sums(session, _midnight(d), _midnight(end + timedelta(days=1)), STORES, by_day=True,
                           hist=True)
        per_day: dict[str, dict[str, Any]] = defaultdict(dict)
        for (day, code), acc in sums.items():
            per_day[str(day)][code] = acc
        x = d
        while x <= end:
            _write(session, x, 1, per_day.get(x.isoformat(), {}))
            written += 1
            x += timedelta(days=1)
        session.commit()
        d = end + timedelta(days=1)
    return written


def _compute_month(session: Session, start: date) -> None:
    from backend.services import hq

    n = _month_days(start)
    acc: dict[str, Any] = defaultdict(hq._Acc)
    for r in session.exec(select(HqRollup).where(HqRollup.days == 1, HqRollup.start >= start,
                                                 HqRollup.start < start + timedelta(days=n))).all():
        acc[r.location].add_row(r.model_dump())
    _write(session, start, n, acc)
    session.commit()


def _first_day(session: Session) -> date | None:
    firsts = [session.execute(text(sql)).scalar() for sql in (
        "SELECT MIN(released_at) FROM allocation", "SELECT MIN(picked_at) FROM allocation",
        "SELECT MIN(at) FROM stockcount")]
    firsts = [UTCDateTime().process_result_value(_dt(v), session.get_bind().dialect) for v in firsts if v]
    return min(firsts).date() if firsts else None


def _dt(v: Any) -> datetime:
    return v if isinstance(v, datetime) else datetime.fromisoformat(str(v))


def refresh(session: Session, max_days: int = DAYS_PER_RUN) -> dict[str, int]:
    """The scheduled job: bring the rollup up to date (see the module's docstring). Returns what it wrote."""
    from backend.services.hq import MAX_PERIOD_DAYS

    t = now()
    last = (t - SETTLE).date() - timedelta(days=1)  # the newest closed day
    first = _first_day(session)
    out = {"days": 0, "months": 0}
    if first is None or first > last:
        return out
    first = max(first, last - timedelta(days=MAX_PERIOD_DAYS + 31))
    first = date(first.year, first.month, 1)  # the days before the first event are empty, and complete the month
    done = {b.start: b.computed_at for b in session.exec(
        select(HqRollupBlock).where(HqRollupBlock.days == 1, HqRollupBlock.start >= first)).all()}
    todo = []
    d = last
    while d >= first and len(todo) < max_days:
        at = done.get(d)
        if at is None or at < _midnight(d + timedelta(days=1)) + RECHECK <= t:
            todo.append(d)
        d -= timedelta(days=1)
    for a, b in _stretches(sorted(todo)):
        out["days"] += compute_days(session, a, b)
    # months whose every day is final (computed RECHECK after it closed) and newer than the month's row
    days = {b.start: b.computed_at for b in session.exec(
        select(HqRollupBlock).where(HqRollupBlock.days == 1, HqRollupBlock.start >= first)).all()}
    months = {b.start: b.computed_at for b in session.exec(
        select(HqRollupBlock).where(HqRollupBlock.days > 1, HqRollupBlock.start >= first)).all()}
    m = date(first.year, first.month, 1)
    while m + timedelta(days=_month_days(m)) <= last + timedelta(days=1):
        stamps = [days.get(m + timedelta(days=i)) for i in range(_month_days(m))]
        final = all(s is not None and s >= _midnight(m + timedelta(days=i + 1)) + RECHECK
                    for i, s in enumerate(stamps))
        if final and (months.get(m) is None or months[m] < max(stamps)):  # type: ignore[type-var]
            _compute_month(session, m)
            out["months"] += 1
        m = m + timedelta(days=_month_days(m))
    return out


def _stretches(days: list[date]) -> list[tuple[date, date]]:
    out: list[tuple[date, date]] = []
    for d in days:
        if out and out[-1][1] + timedelta(days=1) == d:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def invalidate(session: Session, first: date, last: date) -> int:
    """Forget the blocks touching [first, last] (after writing history into closed days); the next run of the job
    computes them again. Returns the blocks dropped."""
    gone = 0
    for b in session.exec(select(HqRollupBlock).where(HqRollupBlock.start <= last,
                                                      HqRollupBlock.start >= first - timedelta(days=31))).all():
        if b.start + timedelta(days=b.days - 1) >= first:
            session.execute(delete(HqRollup).where(HqRollup.start == b.start, HqRollup.days == b.days))
            session.delete(b)
            gone += 1
    session.commit()
    return gone


def coverage(session: Session) -> tuple[date | None, date | None, int]:
    """(first day, last day, blocks) of the rollup, for the bench and logs."""
    lo, hi, n = session.execute(select(func.min(HqRollupBlock.start), func.max(HqRollupBlock.start),
                                       func.count())).one()
    return lo, hi, n
