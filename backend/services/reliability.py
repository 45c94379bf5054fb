"""How far each location's stock can be trusted, learnt from its own outcomes (read by routing).

Per location and SKU class we keep two exponentially decayed tallies, ``good`` and ``bad``:

* every fulfilled line adds 1 to ``good`` (``record_fulfilled``);
* every rejection for a stock reason (not_found, damaged, wrong_item) and every approved large count variance
  adds 1 to ``bad`` (``record_bad``).

Before adding, both tallies decay by ``0.5 ** (days since the last update / HALF_LIFE_DAYS)``, so a store's
record from last season fades and a store that improved recovers. The score is the posterior mean of a Beta
distribution with a prior worth ``PRIOR_WEIGHT`` lines at ``PRIOR`` reliability::

    reliability = (good + PRIOR * PRIOR_WEIGHT) / (good + bad + PRIOR_WEIGHT)

A location with no history scores PRIOR (0.95); one bad line among few good ones moves it a little; a run of
misses moves it a lot. A location's overall score pools its classes' tallies (decayed to now) the same way.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, bindparam, text
from sqlmodel import Session, select

from backend.clock import now
from backend.db import UTCDateTime
from backend.models import Location, Product, StoreReliability

PRIOR = 0.95
PRIOR_WEIGHT = 20.0
HALF_LIFE_DAYS = 30.0

_ENSURE = text("INSERT INTO storereliability (location, sku_class, good, bad, updated_at, detail)"
               " VALUES (:l, :c, 0, 0, :now, :detail) ON CONFLICT (location, sku_class) DO NOTHING"
               ).bindparams(bindparam("now", type_=UTCDateTime()), bindparam("detail", type_=JSON()))


def decay(since: datetime | None, at: datetime) -> float:
    if since is None:
        return 1.0
    days = max(0.0, (at - since).total_seconds() / 86400.0)
    return 0.5 ** (days / HALF_LIFE_DAYS)


def score(good: float, bad: float) -> float:
    return (good + PRIOR * PRIOR_WEIGHT) / (good + bad + PRIOR_WEIGHT)


def sku_class(session: Session, sku: str) -> str:
    p = session.get(Product, sku)
    return p.sku_class if p is not None else "general"


def _add(session: Session, location: str, sku: str, good: float, bad: float, why: str) -> None:
    cls = sku_class(session, sku)
    at = now()
    session.execute(_ENSURE, {"l": location, "c": cls, "now": at, "detail": {}})
    row = session.exec(select(StoreReliability).where(
        StoreReliability.location == location, StoreReliability.sku_class == cls)
        .with_for_update().execution_options(populate_existing=True)).one()  # locked, newest committed values
    d = decay(row.updated_at, at)
    row.good = row.good * d + good
    row.bad = row.bad * d + bad
    row.updated_at = at
    detail = dict(row.detail or {})
    detail[why] = int(detail.get(why, 0)) + 1
    row.detail = detail
    session.add(row)


def record_fulfilled(session: Session, location: str, sku: str, qty: int = 1) -> None:
    """A line was fulfilled from `location` without a stock problem (one line counts 1, whatever `qty`).
    No commit: part of the caller's transaction."""
    _add(session, location, sku, 1.0, 0.0, "fulfilled")


def record_bad(session: Session, location: str, sku: str, why: str) -> None:
    """A stock problem at `location`: a rejection for a stock reason, or a large count variance. No commit."""
    _add(session, location, sku, 0.0, 1.0, why)


def reliability_by_location(session: Session) -> dict[str, float]:
    """Every location's reliability 0..1 (PRIOR when it has no history), pooled over SKU classes, decayed to now."""
    at = now()
    out = {code: PRIOR for code in session.exec(select(Location.code)).all()}
    pooled: dict[str, list[float]] = {}
    for r in session.exec(select(StoreReliability)):
        d = decay(r.updated_at, at)
        acc = pooled.setdefault(r.location, [0.0, 0.0])
        acc[0] += r.good * d
        acc[1] += r.bad * d
    for code, (good, bad) in pooled.items():
        out[code] = score(good, bad)
    return out


def reliability_of(session: Session, location: str, sku_class_: str | None = None) -> float:
    """One location's reliability, for one SKU class or pooled over all."""
    at = now()
    q = select(StoreReliability).where(StoreReliability.location == location)
    if sku_class_ is not None:
        q = q.where(StoreReliability.sku_class == sku_class_)
    good = bad = 0.0
    for r in session.exec(q):
        d = decay(r.updated_at, at)
        good += r.good * d
        bad += r.bad * d
    return score(good, bad)
