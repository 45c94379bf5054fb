"""Stock counts at a location: small variances correct on hand at once; large ones wait for a manager.

A variance is small when |counted - expected| <= settings.count_auto_apply_units, or <= count_auto_apply_ratio x
expected. Applying a count sets on hand, clears `blocked`, writes a StockMovement (cause "count", ref = the
count id) and an event. An approved large variance also counts against the location's reliability.

`record_count(..., commit=False)` is the core the tablet's sync push uses inside its own transaction; the HTTP
route calls it with commit=True.
"""
from __future__ import annotations

from sqlalchemy import bindparam, func, text
from sqlmodel import Session, col, select

from backend import events
from backend.clock import now
from backend.config import get_settings
from backend.db import UTCDateTime
from backend.errors import Conflict, DomainError, NotFound
from backend.ids import new_id
from backend.models import InventoryPosition, Location, Product, StockCount, StockMovement
from backend.principal import Principal
from backend.services import inventory, reliability
from shared.enums import CountStatus, Role
from shared.inventory import CountOut
from shared.masterdata import Page

COUNTERS = (Role.associate, Role.manager, Role.hq)
APPROVERS = (Role.manager, Role.hq)

_ENSURE = text("INSERT INTO inventory (location, sku, on_hand, reserved, blocked, updated_at)"
               " VALUES (:l, :s, 0, 0, false, :now) ON CONFLICT (location, sku) DO NOTHING"
               ).bindparams(bindparam("now", type_=UTCDateTime()))


def is_small(expected: int, variance: int) -> bool:
    s = get_settings()
    return abs(variance) <= s.count_auto_apply_units or (expected > 0 and abs(variance) <= s.count_auto_apply_ratio
                                                          * expected)


def count_out(c: StockCount) -> CountOut:
    return CountOut(id=c.id, location=c.location, sku=c.sku, expected=c.expected, counted=c.counted,
                    variance=c.variance, status=CountStatus(c.status), counted_by=c.counted_by,
                    decided_by=c.decided_by, at=c.at)


def _who(actor: Principal | str | None, location: str, roles: tuple[Role, ...]) -> str | None:
    if isinstance(actor, Principal):
        actor.check_role(*roles)
        actor.check_location(location)
        return actor.username
    return actor


def record_count(session: Session, location: str, sku: str, counted: int, actor: Principal | str | None, *,
                 commit: bool = True) -> CountOut:
    """Record a count of `sku` at `location`. With a Principal, checks it may count there (403 wrong_location);
    with a user name, the caller has checked. commit=False leaves the transaction to the caller (sync push)."""
    who = _who(actor, location, COUNTERS)
    if session.get(Location, location) is None:
        raise NotFound("unknown_location", f"location {location} does not exist", {"location": location})
    if session.get(Product, sku) is None:
        raise DomainError("unknown_sku", f"SKU {sku} is not in the catalogue", {"sku": sku}, status=422)
    if isinstance(counted, bool) or not isinstance(counted, int) or counted < 0:
        raise DomainError("invalid_count", f"counted must be a whole number 0 or more, not {counted!r}",
                          {"counted": counted}, status=422)
    pos = _locked(session, location, sku, create=False)
    expected = pos.on_hand if pos is not None else 0
    c = StockCount(id=new_id("cnt"), location=location, sku=sku, expected=expected, counted=counted,
                   variance=counted - expected, status=CountStatus.pending_approval.value, counted_by=who, at=now())
    for old in session.exec(select(StockCount).where(
            StockCount.location == location, StockCount.sku == sku,
            StockCount.status == CountStatus.pending_approval.value)):
        old.status, old.decided_by, old.decided_at = CountStatus.declined.value, who, now()
        session.add(old)
        events.record(session, "count.superseded", "count", old.id, location=location, actor=who,
                      data={"sku": sku, "by": c.id})
    session.add(c)
    if is_small(expected, c.variance):
        c.status = CountStatus.applied.value
        _apply(session, c, counted, who)
    else:
        events.record(session, "count.pending", "count", c.id, location=location, actor=who,
                      data={"sku": sku, "expected": expected, "counted": counted, "variance": c.variance})
    out = count_out(c)
    if commit:
        session.commit()
    return out


def decide(session: Session, location: str, count_id: str, approve: bool, actor: Principal) -> CountOut:
    """A manager of the store (or HQ) approves or declines a pending count."""
    who = _who(actor, location, APPROVERS)
    c = session.exec(select(StockCount).where(StockCount.id == count_id, StockCount.location == location)
                     .with_for_update().execution_options(populate_existing=True)).first()
    if c is None:
        raise NotFound("unknown_count", f"count {count_id} does not exist at {location}", {"count_id": count_id})
    if c.status != CountStatus.pending_approval.value:
        raise Conflict("count_not_pending", f"count {count_id} is already {c.status}", {"status": c.status})
    c.decided_by, c.decided_at = who, now()
    if approve:
        c.status = CountStatus.approved.value
        pos = _locked(session, location, c.sku, create=True)
        assert pos is not None
        # Units sold since the count still left the shelf: the counted variance moves today's on hand.
        _apply(session, c, max(0, pos.on_hand + c.variance), who)
        reliability.record_bad(session, location, c.sku, "count_variance")
    else:
        c.status = CountStatus.declined.value
        events.record(session, "count.declined", "count", c.id, location=location, actor=who,
                      data={"sku": c.sku, "variance": c.variance})
    session.add(c)
    out = count_out(c)
    session.commit()
    return out


def list_counts(session: Session, location: str, status: str | None, actor: Principal, offset: int,
                limit: int) -> Page[CountOut]:
    _who(actor, location, COUNTERS)
    q = select(StockCount).where(StockCount.location == location)
    if status:
        q = q.where(StockCount.status == CountStatus(status).value)
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    rows = session.exec(q.order_by(col(StockCount.at).desc(), col(StockCount.id).desc()).offset(offset).limit(limit))
    return Page[CountOut](items=[count_out(c) for c in rows], total=total, offset=offset, limit=limit)


def _locked(session: Session, location: str, sku: str, *, create: bool) -> InventoryPosition | None:
    if create:
        session.execute(_ENSURE, {"l": location, "s": sku, "now": now()})
    return session.exec(select(InventoryPosition).where(
        InventoryPosition.location == location, InventoryPosition.sku == sku)
        .with_for_update().execution_options(populate_existing=True)).first()


def _apply(session: Session, c: StockCount, target: int, who: str | None) -> None:
    pos = _locked(session, c.location, c.sku, create=True)
    assert pos is not None
    before, was_blocked = pos.on_hand, pos.blocked
    pos.on_hand, pos.blocked, pos.updated_at = target, False, now()
    session.add(pos)
    session.add(StockMovement(location=c.location, sku=c.sku, on_hand_delta=target - before, cause="count",
                              ref=c.id, actor=who))
    events.record(session, f"count.{c.status}", "count", c.id, location=c.location, actor=who,
                  data={"sku": c.sku, "expected": c.expected, "counted": c.counted, "variance": c.variance,
                        "on_hand_before": before, "on_hand": target, "unblocked": was_blocked})
    if target < pos.reserved:
        inventory.raise_shortfalls(session, [(c.location, c.sku, target, pos.reserved)])
    if target > before or was_blocked:
        inventory.retry_backorders(session, [c.sku])
