"""The exceptions queue: what needs a person, in plain words, with the action to take.

`scan(session)` runs on the scheduler every 30 s (once across processes) and raises, updates and auto-resolves the
kinds it owns, each found by one query over the whole chain:

* promise_at_risk   an order still at a step (release, pick, pack, handover) with less time to its promise than
                    that step needs (minutes per step below), or already past it;
* unfillable        an order with backordered lines;
* repeated_rejects  >= N rejections of one SKU at one store within a window, since its last count;
* stock_mismatch    a count waiting for a manager's approval, or a large variance found recently;
* task_idle         a store task nobody touched for too long (claimed, or still unclaimed).

Every item has a `dedupe_key`: a cause found again updates its item instead of adding one. An item whose cause is
gone is resolved by "system"; if the cause comes back it is reopened. An item a person resolved stays resolved while
its cause persists (they said it is handled). Other services raise event-driven kinds (e.g. the inventory feed's
"stock_shortfall") with `raise_exception`; the scan never touches kinds it does not own.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import get_args
from zoneinfo import ZoneInfo

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import case, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from backend import events
from backend.clock import now
from backend.errors import Conflict, NotFound
from backend.ids import new_id
from backend.models import (
    Allocation,
    ExceptionCost,
    ExceptionItem,
    Location,
    Order,
    OrderLine,
    Rejection,
    StockCount,
    Task,
)
from backend.principal import Principal
from shared.enums import Role
from shared.hq import (
    ExceptionCostList,
    ExceptionCostOut,
    ExceptionCostReport,
    ExceptionCosts,
    ExceptionKind,
    ExceptionList,
    ExceptionOut,
    KindCost,
    WeekCost,
)

SYSTEM = "system"
OWNED_KINDS = ("promise_at_risk", "unfillable", "repeated_rejects", "stock_mismatch", "task_idle")
OPEN_ORDER = ("routed", "released", "picked", "packed")
STEP_OF_STATE = {"reserved": "release", "released": "pick", "picked": "pack", "packed": "handover"}
STEP_ORDER = ["release", "pick", "pack", "handover"]
SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}


class Thresholds(BaseSettings):
    """Tunable from the environment, e.g. STORELINE_EXCEPTIONS_RISK_PICK_MINUTES=90."""

    model_config = SettingsConfigDict(env_prefix="STORELINE_EXCEPTIONS_", extra="ignore")
    risk_release_minutes: float = 240  # routed but not yet released to the store
    risk_pick_minutes: float = 120
    risk_pack_minutes: float = 60
    risk_handover_minutes: float = 30
    repeated_rejects: int = 3
    repeated_rejects_hours: float = 7 * 24
    large_variance_units: int = 5
    large_variance_hours: float = 48
    idle_claimed_minutes: float = 30
    idle_unclaimed_minutes: float = 120

    def risk_minutes(self, step: str) -> float:
        return float(getattr(self, f"risk_{step}_minutes"))


@dataclass(frozen=True)
class Draft:
    """An exception as a cause describes it (before it is stored)."""

    kind: str
    dedupe_key: str
    message: str
    action: str
    severity: str = "medium"
    order_id: str | None = None
    location: str | None = None
    sku: str | None = None


# -- writing ----------------------------------------------------------------------------------------------------------
def raise_exception(session: Session, draft: Draft, *, reopen: bool = True) -> bool:
    """Add or refresh the item for `draft.dedupe_key` (no commit). A resolved item is reopened when `reopen` (a new
    occurrence of an event) or when the system resolved it. Returns True when an item was raised or reopened."""
    row = session.exec(select(ExceptionItem).where(ExceptionItem.dedupe_key == draft.dedupe_key)).first()
    if row is None:
        try:
            with session.begin_nested():
                _insert(session, draft)
            return True
        except IntegrityError:  # another process raised the same key a moment ago
            row = session.exec(select(ExceptionItem).where(ExceptionItem.dedupe_key == draft.dedupe_key)).one()
    return _refresh(session, row, draft, reopen=reopen or row.resolved_by == SYSTEM)


def resolve_exception(session: Session, dedupe_key: str, actor: str = SYSTEM) -> bool:
    """Resolve the open item for `dedupe_key`, if any (no commit): for callers whose cause went away."""
    row = session.exec(select(ExceptionItem).where(ExceptionItem.dedupe_key == dedupe_key)).first()
    if row is None or row.status == "resolved":
        return False
    _set_status(session, row, "resolved", actor)
    return True


def _insert(session: Session, d: Draft) -> ExceptionItem:
    t = now()
    row = ExceptionItem(id=new_id("exc"), dedupe_key=d.dedupe_key, kind=d.kind, severity=d.severity,
                        order_id=d.order_id, location=d.location, sku=d.sku, message=d.message[:500],
                        action=d.action[:300], status="open", raised_at=t, updated_at=t)
    session.add(row)
    session.flush()
    events.record(session, "exception.raised", "exception", row.id, order_id=d.order_id, location=d.location,
                  actor=SYSTEM, data={"kind": d.kind, "severity": d.severity, "message": row.message})
    return row


def _refresh(session: Session, row: ExceptionItem, d: Draft, *, reopen: bool) -> bool:
    changed = (row.message, row.action, row.severity, row.order_id, row.location, row.sku) != (
        d.message[:500], d.action[:300], d.severity, d.order_id, d.location, d.sku)
    reopened = row.status == "resolved" and reopen
    if row.status == "resolved" and not reopen:
        return False
    if not changed and not reopened:
        return False
    row.message, row.action, row.severity = d.message[:500], d.action[:300], d.severity
    row.order_id, row.location, row.sku = d.order_id, d.location, d.sku
    row.updated_at = now()
    if reopened:
        row.status, row.raised_at, row.resolved_by = "open", now(), None
        events.record(session, "exception.raised", "exception", row.id, order_id=row.order_id,
                      location=row.location, actor=SYSTEM,
                      data={"kind": row.kind, "severity": row.severity, "message": row.message, "reopened": True})
    session.add(row)
    return reopened


def _set_status(session: Session, row: ExceptionItem, status: str, actor: str) -> None:
    row.status = status
    row.updated_at = now()
    if status == "resolved":
        row.resolved_by = actor
    session.add(row)
    events.record(session, f"exception.{status}", "exception", row.id, order_id=row.order_id, location=row.location,
                  actor=actor, data={"kind": row.kind})


# -- the scheduled scan -----------------------------------------------------------------------------------------------
def scan(session: Session) -> int:
    """Find every current cause, raise or refresh its item, auto-resolve items whose cause is gone; one commit.
    Returns how many items were raised or reopened."""
    t = now()
    th = Thresholds()
    zones = {code: tz for code, tz in session.exec(select(Location.code, Location.timezone))}
    drafts: dict[str, Draft] = {}
    for finder in (_promise_at_risk, _unfillable, _repeated_rejects, _stock_mismatch, _task_idle):
        for d in finder(session, t, th, zones):
            drafts[d.dedupe_key] = d
    existing = {r.dedupe_key: r for r in session.exec(select(ExceptionItem).where(
        col(ExceptionItem.kind).in_(OWNED_KINDS), ExceptionItem.status != "resolved"))}
    missing = [k for k in drafts if k not in existing]
    for i in range(0, len(missing), 500):
        for r in session.exec(select(ExceptionItem).where(col(ExceptionItem.dedupe_key).in_(missing[i:i + 500]))):
            existing[r.dedupe_key] = r
    raised = 0
    for key, d in drafts.items():
        row = existing.get(key)
        if row is None:
            _insert(session, d)
            raised += 1
        elif _refresh(session, row, d, reopen=row.resolved_by == SYSTEM):
            raised += 1
    for key, row in existing.items():
        if key not in drafts and row.status != "resolved":
            _set_status(session, row, "resolved", SYSTEM)
    session.commit()
    return raised


def _local(t: datetime, tz: str | None) -> str:
    try:
        zone = ZoneInfo(tz or "UTC")
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return t.astimezone(zone).strftime("%a %d %b %H:%M %Z")


def _order_ref(order_id: str, external_id: str | None) -> str:
    return f"order {external_id} ({order_id})" if external_id else f"order {order_id}"


def _promise_at_risk(session: Session, t: datetime, th: Thresholds, zones: dict[str, str]) -> list[Draft]:
    horizon = t + timedelta(minutes=max(th.risk_minutes(s) for s in STEP_ORDER))
    rows = session.exec(
        select(Order.id, Order.external_id, Order.delivery_method, Order.promise_by, Allocation.location,
               Allocation.state)
        .join(Allocation, col(Allocation.order_id) == Order.id)
        .where(col(Order.status).in_(OPEN_ORDER), col(Order.promise_by).is_not(None), Order.promise_by < horizon,
               col(Allocation.state).in_(list(STEP_OF_STATE)))).all()
    visits: dict[tuple[str, str], list] = {}
    for oid, ext, method, promise, loc, state in rows:
        v = visits.setdefault((oid, loc), [ext, method, promise, "handover"])
        step = STEP_OF_STATE[state]
        if STEP_ORDER.index(step) < STEP_ORDER.index(v[3]):
            v[3] = step
    out = []
    for (oid, loc), (ext, method, promise, step) in visits.items():
        left = (promise - t).total_seconds() / 60
        if left >= th.risk_minutes(step):
            continue
        ref, due = _order_ref(oid, ext), _local(promise, zones.get(loc))
        where = f"waits to be released to {loc}" if step == "release" else f"is still at {step} at {loc}"
        if left < 0:
            message = f"{ref.capitalize()} missed its {method.replace('_', '-')} promise (due {due}); it {where}."
        else:
            message = f"{ref.capitalize()} {where}; its {method.replace('_', '-')} promise is due {due}."
        action = {
            "release": f"Release it to {loc} now (run the batch) or re-route it from the order page.",
            "pick": f"Ask {loc} to pick it now (the manager can assign it), or re-route it.",
            "pack": f"Ask {loc} to pack it now.",
            "handover": f"Make sure {loc} hands it to the next carrier pickup or to the customer.",
        }[step]
        if left < 0:
            action += " Tell the customer about the delay."
        severity = "high" if left < 0 or method == "same_day" else "medium"
        out.append(Draft("promise_at_risk", f"promise_at_risk:{oid}:{loc}", message, action, severity, oid, loc))
    return out


def _unfillable(session: Session, t: datetime, th: Thresholds, zones: dict[str, str]) -> list[Draft]:
    rows = session.exec(
        select(Order.id, Order.external_id, Order.promise_by, OrderLine.line_id, OrderLine.sku, OrderLine.quantity,
               OrderLine.backorder_reason)
        .join(Order, col(Order.id) == OrderLine.order_id)
        .where(OrderLine.status == "backordered", Order.status != "cancelled")
        .order_by(OrderLine.order_id, OrderLine.line_id)).all()
    by_order: dict[str, list] = defaultdict(list)
    for r in rows:
        by_order[r[0]].append(r)
    out = []
    for oid, lines in by_order.items():
        ext, promise = lines[0][1], lines[0][2]
        parts = [f"{q} x {sku}" + (f" ({why})" if why else "") for _, _, _, _, sku, q, why in lines]
        skus = sorted({ln[4] for ln in lines})
        what = "1 line" if len(lines) == 1 else f"{len(lines)} lines"
        message = f"{_order_ref(oid, ext).capitalize()}: {what} cannot be filled anywhere: {'; '.join(parts)}."
        action = (f"Send stock of {', '.join(skus)} to a location that ships, or agree a later date or a cancellation "
                  "with the customer. Backordered lines are re-tried automatically when stock arrives.")
        soon = promise is not None and promise - t < timedelta(hours=24)
        out.append(Draft("unfillable", f"unfillable:{oid}", message, action, "high" if soon else "medium", oid,
                         None, skus[0] if len(skus) == 1 else None))
    return out


def _window(hours: float) -> str:
    return f"{hours / 24:g} days" if hours % 24 == 0 else f"{hours:g} hours"


def _repeated_rejects(session: Session, t: datetime, th: Thresholds, zones: dict[str, str]) -> list[Draft]:
    since = t - timedelta(hours=th.repeated_rejects_hours)
    rejections = session.exec(select(Rejection.location, Rejection.sku, Rejection.reason, Rejection.at)
                              .where(Rejection.at >= since)).all()
    if not rejections:
        return []
    counted = {(loc, sku): at for loc, sku, at in session.exec(
        select(StockCount.location, StockCount.sku, func.max(StockCount.at))
        .where(StockCount.at >= since).group_by(StockCount.location, StockCount.sku))}
    reasons: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for loc, sku, reason, at in rejections:
        last_count = counted.get((loc, sku))
        if last_count is None or at > last_count:
            reasons[(loc, sku)][reason] += 1
    out = []
    for (loc, sku), by_reason in sorted(reasons.items()):
        n = sum(by_reason.values())
        if n < th.repeated_rejects:
            continue
        detail = ", ".join(f"{r.replace('_', ' ')} {c}" for r, c in sorted(by_reason.items(), key=lambda x: -x[1]))
        message = f"{loc} gave back {sku} {n} times in the last {_window(th.repeated_rejects_hours)} ({detail})."
        action = (f"Count {sku} at {loc} and check where it is kept and how it is labelled; until then routing "
                  f"trusts {loc}'s stock of it less.")
        severity = "high" if n >= 2 * th.repeated_rejects else "medium"
        out.append(Draft("repeated_rejects", f"repeated_rejects:{loc}:{sku}", message, action, severity, None, loc,
                         sku))
    return out


def _stock_mismatch(session: Session, t: datetime, th: Thresholds, zones: dict[str, str]) -> list[Draft]:
    since = t - timedelta(hours=th.large_variance_hours)
    rows = session.exec(select(StockCount).where(
        (StockCount.status == "pending_approval")
        | ((StockCount.at >= since) & (func.abs(StockCount.variance) >= th.large_variance_units)))).all()
    out = []
    for c in rows:
        large = abs(c.variance) >= th.large_variance_units
        found = f"Count of {c.sku} at {c.location} found {c.counted} where {c.expected} were expected ({c.variance:+d})"
        if c.status == "pending_approval":
            message = f"{found}; it waits for a manager's approval."
            action = f"{c.location}'s manager: approve the count if it is right, or decline it and count again."
        else:
            message = f"{found}, a large difference; the stock was corrected ({c.status.replace('_', ' ')})."
            action = f"Look for theft, mis-scans or unrecorded deliveries of {c.sku} at {c.location}."
        out.append(Draft("stock_mismatch", f"stock_mismatch:{c.id}", message, action, "high" if large else "medium",
                         None, c.location, c.sku))
    return out


def _task_idle(session: Session, t: datetime, th: Thresholds, zones: dict[str, str]) -> list[Draft]:
    claimed_cut = t - timedelta(minutes=th.idle_claimed_minutes)
    unclaimed_cut = t - timedelta(minutes=th.idle_unclaimed_minutes)
    rows = session.exec(
        select(Task.id, Task.order_id, Order.external_id, Task.location, Task.step, Task.assignee, Task.updated_at)
        .join(Order, col(Order.id) == Task.order_id)
        .where(col(Order.status).in_(OPEN_ORDER), Task.step != "done", col(Task.deleted).is_(False),
               Task.updated_at < max(claimed_cut, unclaimed_cut))).all()
    out = []
    for tid, oid, ext, loc, step, assignee, touched in rows:
        limit = th.idle_claimed_minutes if assignee else th.idle_unclaimed_minutes
        idle = (t - touched).total_seconds() / 60
        if idle < limit:
            continue
        since = _local(touched, zones.get(loc))
        if assignee:
            message = (f"The {step} task of {_order_ref(oid, ext)} at {loc}, claimed by {assignee}, "
                       f"has not been touched since {since}.")
            action = f"{loc}'s manager: check with {assignee}, or reassign the task."
        else:
            message = f"The {step} task of {_order_ref(oid, ext)} at {loc} has waited unclaimed since {since}."
            action = f"{loc}'s manager: assign it to an associate."
        out.append(Draft("task_idle", f"task_idle:{tid}", message, action, "medium" if idle >= 3 * limit else "low",
                         oid, loc))
    return out


# -- reading and acting -----------------------------------------------------------------------------------------------
def exception_out(row: ExceptionItem) -> ExceptionOut:
    return ExceptionOut.model_validate(row, from_attributes=True)


def _check_reader(p: Principal, location: str | None = None) -> None:
    p.check_role(Role.hq, Role.manager)
    if location is not None:
        p.check_location(location)


def list_exceptions(session: Session, p: Principal, status: str | None = None, kind: str | None = None,
                    location: str | None = None, offset: int = 0, limit: int = 500) -> ExceptionList:
    """`status`: open, acknowledged, resolved, all; none = open and acknowledged (the working queue)."""
    _check_reader(p, location)
    q = select(ExceptionItem)
    if status in (None, "", "active"):
        q = q.where(col(ExceptionItem.status).in_(["open", "acknowledged"]))
    elif status != "all":
        q = q.where(ExceptionItem.status == status)
    if kind:
        q = q.where(ExceptionItem.kind == kind)
    if location:
        q = q.where(ExceptionItem.location == location)
    if p.role == Role.manager:
        q = q.where(ExceptionItem.location == p.store)
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    rank = case(SEVERITY_RANK, value=ExceptionItem.severity, else_=3)
    rows = session.exec(q.order_by(rank, col(ExceptionItem.raised_at).desc(), ExceptionItem.id)
                        .offset(offset).limit(limit)).all()
    return ExceptionList(items=[exception_out(r) for r in rows], total=total)


def _get_visible(session: Session, exc_id: str, p: Principal) -> ExceptionItem:
    _check_reader(p)
    row = session.get(ExceptionItem, exc_id)
    if row is None or (p.role == Role.manager and row.location != p.store):
        raise NotFound("unknown_exception", f"exception {exc_id} does not exist", {"id": exc_id})
    return row


def acknowledge(session: Session, exc_id: str, p: Principal) -> ExceptionOut:
    row = _get_visible(session, exc_id, p)
    if row.status == "resolved":
        raise Conflict("exception_resolved", f"exception {exc_id} is already resolved", {"id": exc_id})
    if row.status == "open":
        _set_status(session, row, "acknowledged", p.username)
        session.commit()
    return exception_out(row)


def resolve(session: Session, exc_id: str, p: Principal) -> ExceptionOut:
    row = _get_visible(session, exc_id, p)
    if row.status != "resolved":
        _set_status(session, row, "resolved", p.username)
        session.commit()
    return exception_out(row)


__all__ = ["Draft", "Thresholds", "acknowledge", "list_exceptions", "raise_exception", "resolve",
           "resolve_exception", "scan"]


# ------------------------------------------------------------------------------------------- cost of exceptions
# What one exception costs to handle, by kind, until HQ sets its own figures (USD). Industry surveys put a manual
# order exception at $45-75 of staff time; the kinds that mean a customer contact or a re-ship sit at the top.
DEFAULT_COSTS: dict[str, float] = {
    "promise_at_risk": 55.0, "unfillable": 75.0, "repeated_rejects": 45.0, "stock_mismatch": 45.0,
    "stock_shortfall": 60.0, "task_idle": 45.0,
}


def costs(session: Session, p: Principal) -> ExceptionCostList:
    _check_reader(p)
    saved = {r.kind: r for r in session.exec(select(ExceptionCost))}
    out = []
    for kind in get_args(ExceptionKind):
        r = saved.get(kind)
        out.append(ExceptionCostOut(kind=kind, cost=r.cost if r else DEFAULT_COSTS.get(kind, 0.0), default=r is None,
                                    updated_by=r.updated_by if r else None, updated_at=r.updated_at if r else None))
    return ExceptionCostList(costs=out)


def set_costs(session: Session, body: ExceptionCosts, p: Principal) -> ExceptionCostList:
    """HQ sets the handling cost of some kinds (the others keep theirs); every change is in the event log."""
    p.check_role(Role.hq)
    at = now()
    for item in body.costs:
        row = session.get(ExceptionCost, item.kind) or ExceptionCost(kind=item.kind)
        before = row.cost if row.updated_by is not None else DEFAULT_COSTS.get(item.kind, 0.0)
        row.cost, row.updated_by, row.updated_at = round(item.cost, 2), p.username, at
        session.add(row)
        events.record(session, "exception_cost.changed", "exception_cost", item.kind, actor=p.username,
                      data={"kind": item.kind, "before": before, "after": row.cost})
    session.commit()
    return costs(session, p)


def cost_report(session: Session, p: Principal, weeks: int = 8, location: str | None = None) -> ExceptionCostReport:
    """The cost of handling the exceptions raised in each of the last `weeks` ISO weeks (the current one included),
    next to how many distinct orders they touched. A manager sees their own store's."""
    _check_reader(p, location)
    if p.role == Role.manager:
        location = p.store
    today = now().astimezone(UTC).date()
    first = today - timedelta(days=today.weekday() + 7 * (weeks - 1))
    price = {c.kind: c.cost for c in costs(session, p).costs}
    q = select(ExceptionItem.kind, ExceptionItem.order_id, ExceptionItem.raised_at).where(
        ExceptionItem.raised_at >= datetime.combine(first, datetime.min.time(), tzinfo=UTC))
    if location:
        q = q.where(ExceptionItem.location == location)
    per_week: dict[date, list[tuple[str, str | None]]] = defaultdict(list)
    for kind, order_id, raised_at in session.exec(q):
        d = raised_at.astimezone(UTC).date()
        per_week[d - timedelta(days=d.weekday())].append((kind, order_id))
    out = []
    for i in range(weeks):
        start = first + timedelta(days=7 * i)
        items = per_week.get(start, [])
        kinds: dict[str, list[str | None]] = defaultdict(list)
        for kind, order_id in items:
            kinds[kind].append(order_id)
        by_kind = [KindCost(kind=k, exceptions=len(v), orders=len({o for o in v if o}),
                            cost=round(len(v) * price.get(k, 0.0), 2)) for k, v in sorted(kinds.items())]
        orders = len({o for _, o in items if o})
        cost = round(sum(k.cost for k in by_kind), 2)
        out.append(WeekCost(week_start=start.isoformat(), exceptions=len(items), orders=orders, cost=cost,
                            cost_per_order=round(cost / orders, 2) if orders else None, by_kind=by_kind))
    return ExceptionCostReport(weeks=out, total_cost=round(sum(w.cost for w in out), 2), location=location)
