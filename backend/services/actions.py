"""The store's actions on a task (claim, assign, pick, reject, pack, handover, count), each checked against the
task's state and the actor's store and role.

`apply` does one action's work inside the caller's transaction (no commit) or raises `ActionRejected` with one of
the codes the tablet shows; the caller rolls back on a rejection, so a refused action leaves nothing behind.
"""
from __future__ import annotations

import importlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from backend import events
from backend.clock import now
from backend.errors import DomainError
from backend.ids import new_id
from backend.models import Allocation, Barcode, Location, Order, OrderLine, Package, Task, User
from backend.principal import Principal
from backend.services import documents, fulfilment, order_status, reservations, storeversion
from backend.services.tasks import LIVE, all_picked, is_pickup_task, new_pickup_code, remaining, step_after_pick
from shared.enums import ActionType, AllocationState, OrderStatus, RejectReason, Role, TaskStep
from shared.sync import Action


class ActionRejected(Exception):
    """A permanent refusal: the tablet shows `code`; the action is recorded as rejected and never re-run."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Unavailable(Exception):
    """A temporary refusal (a service this action needs is not there yet): not recorded, the tablet retries."""


@dataclass
class Ctx:
    session: Session
    task: Task
    order: Order
    pickup: bool
    _allocs: list[Allocation] | None = None

    @property
    def allocs(self) -> list[Allocation]:
        """The task's allocations (any state): prefetched for this transaction, or read fresh on first use."""
        if self._allocs is None:
            pre = _prefetched(self.session)
            if pre is not None and self.task.id in pre.allocs:
                self._allocs = pre.allocs[self.task.id]
            else:
                self._allocs = list(self.session.exec(
                    select(Allocation).where(Allocation.task_id == self.task.id)
                    .order_by(Allocation.created_at, Allocation.id).execution_options(populate_existing=True)))
        return self._allocs

    def reload(self) -> None:
        """Allocations were added or ended: read them again (here and for later actions in this transaction)."""
        self._allocs = None
        pre = _prefetched(self.session)
        if pre is not None:
            pre.allocs.pop(self.task.id, None)
            pre.orders_fresh = False

    def live(self) -> list[Allocation]:
        return [a for a in self.allocs if a.state in LIVE]

    def location(self) -> Location:
        loc = self.session.get(Location, self.task.location)
        assert loc is not None
        return loc


# ------------------------------------------------------------------------------- the store's lock and prefetch
_LOCK = "storeline.store_lock"
_PREFETCH = "storeline.prefetch"


@dataclass
class _Prefetch:
    transaction: Any
    tasks: set[str]
    allocs: dict[str, list[Allocation]]
    lines: dict[tuple[str, str], OrderLine]
    barcodes: dict[str, Barcode | None]  # every barcode the batch's picks scan (None: not in the catalogue)
    keep: list[Any]  # the session's identity map holds rows weakly: these keep them there
    order_lines: dict[str, list[OrderLine]]  # every line and allocation of the tasks' orders, for their status:
    order_allocs: dict[str, list[Allocation]]  # valid while no action may have added allocations (`orders_fresh`)
    orders_fresh: bool = True


def hold_store(session: Session, store: str) -> int:
    """Take the store's lock for this transaction (a version bump, held to commit) so its tablet actions run one
    at a time on fresh rows; the version stamps every task this transaction changes."""
    v = storeversion.bump(session, store)
    session.info[_LOCK] = (session.get_transaction(), store, v)
    return v


def _held_version(session: Session, store: str) -> int | None:
    held = session.info.get(_LOCK)
    if held and held[0] is session.get_transaction() and held[0] is not None and held[1] == store:
        return held[2]
    return None


def prefetch(session: Session, task_ids: list[str], barcodes: list[str] | None = None) -> None:
    """Read the tasks a batch of actions names, with their orders, lines and allocations, in four queries
    (fresh rows; call it after `hold_store`), and the barcodes its picks scan in one more. `apply` then finds
    them without a query per action."""
    ids = sorted(set(task_ids))
    if not ids:
        return
    codes = sorted(set(barcodes or []))
    scanned = {code: None for code in codes} | {
        b.barcode: b for b in (session.exec(select(Barcode).where(col(Barcode.barcode).in_(codes))) if codes else [])}
    tasks = session.exec(select(Task).where(col(Task.id).in_(ids)).execution_options(populate_existing=True)).all()
    order_ids = sorted({t.order_id for t in tasks})
    orders = session.exec(select(Order).where(col(Order.id).in_(order_ids))
                          .execution_options(populate_existing=True)).all() if order_ids else []
    lines = session.exec(select(OrderLine).where(col(OrderLine.order_id).in_(order_ids))
                         .execution_options(populate_existing=True)).all() if order_ids else []
    order_lines: dict[str, list[OrderLine]] = {o: [] for o in order_ids}
    for ln in lines:
        order_lines[ln.order_id].append(ln)
    allocs: dict[str, list[Allocation]] = {t.id: [] for t in tasks}
    order_allocs: dict[str, list[Allocation]] = {o: [] for o in order_ids}
    wanted = set(ids)
    for a in session.exec(select(Allocation).where(col(Allocation.order_id).in_(order_ids))
                          .order_by(Allocation.created_at, Allocation.id).execution_options(populate_existing=True)
                          ) if order_ids else []:
        order_allocs[a.order_id].append(a)
        if a.task_id in wanted:
            allocs[a.task_id].append(a)
    session.info[_PREFETCH] = _Prefetch(session.get_transaction(), {t.id for t in tasks}, allocs,
                                        {(ln.order_id, ln.line_id): ln for ln in lines}, scanned, [*tasks, *orders],
                                        order_lines, order_allocs)


def _prefetched(session: Session) -> _Prefetch | None:
    pre = session.info.get(_PREFETCH)
    if pre is not None and pre.transaction is session.get_transaction():
        return pre
    return None


def hook(module: str, name: str) -> Callable[..., Any] | None:
    """Another part's function, or None while that part is not there yet."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        return None
    return getattr(mod, name, None)


def apply(session: Session, p: Principal, a: Action) -> str:
    """Apply one action; returns a short sentence of what happened. Raises ActionRejected or Unavailable.

    The caller holds its store's lock for the transaction (`storeversion.bump(session, p.store)` first), so the
    store's tablet actions run one at a time, each on fresh rows."""
    if p.role not in (Role.associate, Role.manager) or not p.store:
        raise ActionRejected("forbidden", "only a store's associates and managers act on its tablets")
    if a.type not in _KEEP_ALLOCATIONS:  # this action may add allocations: order statuses are read afresh
        pre = _prefetched(session)
        if pre is not None:
            pre.orders_fresh = False
    if a.type == ActionType.count:
        return _count(session, p, a)
    ctx = _load(session, p, a)
    msg = _HANDLERS[a.type](session, p, a, ctx)
    _stamp(session, ctx.task)
    return msg


def set_priority(session: Session, p: Principal, task: Task, priority: int) -> None:
    """A manager (or HQ) moves a task up or down the store's queue. No commit."""
    old = task.priority
    task.priority = priority
    events.record(session, "task.prioritised", "task", task.id, order_id=task.order_id, location=task.location,
                  actor=p.username, data={"from": old, "to": priority})
    _stamp(session, task)


# ------------------------------------------------------------------------------------------------ loading
def _load(session: Session, p: Principal, a: Action) -> Ctx:
    if not a.task_id:
        raise ActionRejected("invalid_action", f"a {a.type.value} action needs task_id")
    pre = _prefetched(session)
    fresh = pre is None or a.task_id not in pre.tasks  # prefetched rows are this transaction's: no query
    task = session.get(Task, a.task_id, populate_existing=fresh)
    if task is None:
        raise ActionRejected("unknown_task", f"task {a.task_id} does not exist")
    if task.location != p.store:
        raise ActionRejected("wrong_location", f"task {a.task_id} belongs to store {task.location}, not {p.store}")
    order = session.get(Order, task.order_id, populate_existing=fresh)
    assert order is not None
    if order.status == OrderStatus.cancelled.value or task.outcome == "cancelled":
        raise ActionRejected("order_cancelled", f"order {order.external_id} was cancelled")
    if task.deleted:
        raise ActionRejected("rerouted", f"order {order.external_id} is no longer in this store's queue")
    return Ctx(session=session, task=task, order=order,
               pickup=is_pickup_task(order.delivery_method, order.pickup_location, task.location))


def _stamp(session: Session, task: Task) -> None:
    v = _held_version(session, task.location)
    if v is None:
        v = storeversion.bump(session, task.location)
    task.version = max(task.version or 0, v)  # allocations.end may have stamped it higher already
    task.updated_at = now()
    session.add(task)


def _step(ctx: Ctx, *steps: TaskStep) -> None:
    if ctx.task.step not in {s.value for s in steps}:
        want = " or ".join(s.value for s in steps)
        raise ActionRejected("wrong_state", f"order {ctx.order.external_id} is at {ctx.task.step}, not {want}")


def _claim_for(session: Session, p: Principal, ctx: Ctx) -> None:
    """Pick, reject and pack claim an unclaimed task; one claimed by someone else is theirs."""
    _check_claim(p, ctx)
    t = ctx.task
    if t.assignee is None:
        t.assignee = p.username
        events.record(session, "task.claimed", "task", t.id, order_id=t.order_id, location=t.location,
                      actor=p.username, data={"assignee": p.username, "auto": True})


def _check_claim(p: Principal, ctx: Ctx) -> None:
    """`claimed_by_other` when another associate works on the task (checked before anything changes)."""
    t = ctx.task
    if t.assignee is not None and t.assignee != p.username:
        raise ActionRejected("claimed_by_other", f"{t.assignee} is working on order {ctx.order.external_id}")


def _line(session: Session, ctx: Ctx, line_id: str | None) -> tuple[OrderLine, list[Allocation]]:
    """The order line and its live allocations in this task; `rerouted` when the line has left this store."""
    if not line_id:
        raise ActionRejected("invalid_action", "this action needs line_id")
    pre = _prefetched(session)
    if pre is not None and ctx.task.id in pre.tasks:
        line = pre.lines.get((ctx.order.id, line_id))
    else:
        line = session.exec(select(OrderLine).where(OrderLine.order_id == ctx.order.id, OrderLine.line_id == line_id)
                            .execution_options(populate_existing=True)).first()
    if line is None:
        raise ActionRejected("unknown_line", f"order {ctx.order.external_id} has no line {line_id}")
    mine = [a for a in ctx.allocs if a.line_pk == line.id]
    if not any(a.state in LIVE or a.state == AllocationState.fulfilled.value for a in mine):
        raise ActionRejected("rerouted", f"line {line_id} of order {ctx.order.external_id} is no longer at this store")
    return line, [a for a in mine if a.state in LIVE]


def _after_pick(session: Session, p: Principal, ctx: Ctx) -> None:
    """All units picked or given back: on to packing, or straight to the counter for a store pickup."""
    t = ctx.task
    if t.deleted or t.step != TaskStep.pick.value or not all_picked(ctx.allocs):
        return
    t.step = step_after_pick(ctx.pickup)
    t.picked_at = now()
    if ctx.pickup:
        if not t.pickup_code:
            t.pickup_code = new_pickup_code()
        events.record(session, "pickup.ready", "task", t.id, order_id=t.order_id, location=t.location,
                      actor=p.username, data={"order_number": ctx.order.external_id, "pickup_code": t.pickup_code,
                                              "store": t.location})


def _refresh(session: Session, ctx: Ctx) -> None:
    """The order's and its lines' status after this action, from the prefetched lines and allocations when they
    are still the whole set (no query, no flush), else read afresh."""
    pre = _prefetched(session)
    oid = ctx.order.id
    if pre is not None and pre.orders_fresh and oid in pre.order_allocs:
        order_status.refresh(session, ctx.order, lines=pre.order_lines[oid], allocations=pre.order_allocs[oid])
    else:
        fulfilment.refresh_order(session, oid)


# ----------------------------------------------------------------------------------------------- handlers
def _claim(session: Session, p: Principal, a: Action, ctx: Ctx) -> str:
    _step(ctx, TaskStep.pick, TaskStep.pack, TaskStep.handover)
    t = ctx.task
    if t.assignee == p.username:
        return "already yours"
    if t.assignee is not None and p.role != Role.manager:
        raise ActionRejected("claimed_by_other", f"{t.assignee} is working on order {ctx.order.external_id}")
    events.record(session, "task.claimed", "task", t.id, order_id=t.order_id, location=t.location,
                  actor=p.username, data={"assignee": p.username, "from": t.assignee})
    t.assignee = p.username
    return "claimed"


def _assign(session: Session, p: Principal, a: Action, ctx: Ctx) -> str:
    if p.role != Role.manager:
        raise ActionRejected("forbidden", "only a store manager may assign tasks")
    _step(ctx, TaskStep.pick, TaskStep.pack, TaskStep.handover)
    if a.assignee:
        u = session.get(User, a.assignee)
        if u is None or not u.active or u.store != p.store or u.role not in (Role.associate, Role.manager):
            raise ActionRejected("unknown_user", f"{a.assignee} is not on {p.store}'s staff")
    t = ctx.task
    events.record(session, "task.assigned", "task", t.id, order_id=t.order_id, location=t.location,
                  actor=p.username, data={"assignee": a.assignee, "from": t.assignee})
    t.assignee = a.assignee or None
    return f"assigned to {a.assignee}" if a.assignee else "unassigned"


def _pick(session: Session, p: Principal, a: Action, ctx: Ctx) -> str:
    line, live = _line(session, ctx, a.line_id)
    _step(ctx, TaskStep.pick)
    _check_claim(p, ctx)  # every refusal comes before the first change (the push's fast path relies on it)
    qty = 1 if a.quantity is None else a.quantity
    if qty < 1:
        raise ActionRejected("invalid_action", "quantity must be at least 1")
    if a.barcode:
        code = a.barcode.strip()
        pre = _prefetched(session)
        bc = pre.barcodes[code] if pre is not None and code in pre.barcodes else session.get(Barcode, code)
        if bc is None or bc.sku != line.sku:
            raise ActionRejected("wrong_barcode", f"barcode {a.barcode} is not {line.sku}")
    left = sum(remaining(x) for x in live)
    if qty > left:
        raise ActionRejected("over_quantity", f"line {line.line_id} has {left} left to pick, not {qty}")
    _claim_for(session, p, ctx)
    at = now()
    todo = qty
    finished = False
    for x in live:
        take = min(remaining(x), todo)
        if take <= 0:
            continue
        x.picked += take
        todo -= take
        if x.picked >= x.quantity:
            x.state = AllocationState.picked.value
            x.picked_at = at
            finished = True
        session.add(x)
    events.record(session, "line.picked", "order_line", line.id, order_id=ctx.order.id, location=ctx.task.location,
                  actor=p.username, data={"line_id": line.line_id, "sku": line.sku, "quantity": qty,
                                          "barcode": a.barcode, "device_at": _iso(a)})
    _after_pick(session, p, ctx)
    if finished:  # an allocation moved on: the line's and the order's status may follow
        _refresh(session, ctx)
    return f"picked {qty} × {line.sku}"


def _reject(session: Session, p: Principal, a: Action, ctx: Ctx) -> str:
    """Give back units of a line: each allocation's part ends through the one rejection rule for every location
    (`backend.services.rejections`: stock effect, reliability, never back here), then the line is re-routed once,
    in this transaction, and the task goes on with its other lines."""
    from backend.services import rejections

    line, _ = _line(session, ctx, a.line_id)
    ctx.reload()  # this action adds and ends allocations: later actions read them again
    live = [x for x in ctx.allocs if x.line_pk == line.id and x.state in LIVE]
    _step(ctx, TaskStep.pick)
    if a.reason is None:
        raise ActionRejected("invalid_action", "a rejection needs a reason")
    note = (a.note or "").strip() or None
    if a.reason == RejectReason.other and not note:
        raise ActionRejected("note_required", "reason 'other' needs a note")
    _check_claim(p, ctx)
    left = sum(remaining(x) for x in live)
    qty = left if a.quantity is None else a.quantity
    if qty < 1 or qty > left:
        raise ActionRejected("over_quantity", f"line {line.line_id} has {left} unpicked units, cannot reject {qty}")
    _claim_for(session, p, ctx)
    todo = qty
    for x in live:
        take = min(remaining(x), todo)
        if take > 0:
            todo -= take
            rejections.reject_allocation(session, x, take, a.reason.value, note, p.username, reroute=False)
    reroute = hook("backend.services.routing", "reroute_line")
    if reroute is not None:
        reroute(session, line, exclude=[ctx.task.location], actor=p.username)
        session.flush()
    ctx.reload()
    _after_pick(session, p, ctx)
    _refresh(session, ctx)
    return f"rejected {qty} × {line.sku} ({a.reason.value})"


def _pack(session: Session, p: Principal, a: Action, ctx: Ctx) -> str:
    _step(ctx, TaskStep.pack)
    _claim_for(session, p, ctx)
    n = a.packages or 1
    live = ctx.live()
    lines = {ln.id: ln for ln in session.exec(select(OrderLine).where(
        col(OrderLine.id).in_([x.line_pk for x in live])))}
    content = [{"line_id": lines[x.line_pk].line_id, "sku": x.sku, "quantity": x.quantity} for x in live]
    weight = round(a.weight_kg / n, 3) if a.weight_kg is not None else None
    at = now()
    pkgs = [Package(id=new_id("pkg"), task_id=ctx.task.id, order_id=ctx.order.id, location=ctx.task.location,
                    box=a.box, weight_kg=weight, lines=content if i == 0 else [], created_at=at) for i in range(n)]
    session.add_all(pkgs)
    if not ctx.pickup:  # booked now, so each label prints with its tracking number right after packing
        documents.on_packed(session, pkgs, p.username)
    for x in live:
        x.state = AllocationState.packed.value
        x.packed_at = at
        session.add(x)
    ctx.task.step = TaskStep.handover.value
    ctx.task.packed_at = at
    events.record(session, "task.packed", "task", ctx.task.id, order_id=ctx.order.id, location=ctx.task.location,
                  actor=p.username, data={"packages": n, "box": a.box, "weight_kg": a.weight_kg,
                                          "device_at": _iso(a)})
    _refresh(session, ctx)
    return f"packed in {n} package{'s' if n > 1 else ''}"


def _handover_carrier(session: Session, p: Principal, a: Action, ctx: Ctx) -> str:
    if ctx.pickup:
        raise ActionRejected("wrong_state", f"order {ctx.order.external_id} is collected by the customer")
    _step(ctx, TaskStep.handover)
    carrier = (a.carrier or "").strip()
    if not carrier:
        raise ActionRejected("invalid_action", "a carrier handover needs the carrier")
    pkgs = list(session.exec(select(Package).where(Package.task_id == ctx.task.id,
                                                   col(Package.shipped_at).is_(None))
                             .order_by(Package.created_at, Package.id)))
    if not pkgs:
        raise ActionRejected("wrong_state", f"order {ctx.order.external_id} has no packed packages")
    manifest = fulfilment.manifest_for(session, ctx.location(), carrier)
    tracking = [t.strip() for t in (a.tracking or []) if t and t.strip()]
    at = now()
    for i, pkg in enumerate(pkgs):
        pkg.carrier = carrier
        if i < len(tracking):  # the numbers typed at handover win; otherwise the one booked at pack stays
            pkg.tracking = tracking[i][:60]
        pkg.manifest_id = manifest.id
        pkg.shipped_at = at
        session.add(pkg)
    manifest.packages += len(pkgs)
    manifest.weight_kg = round(manifest.weight_kg + sum(x.weight_kg or 0 for x in pkgs), 3)
    manifest.updated_at = at
    session.add(manifest)
    _fulfil(session, p, ctx, "shipped", {"carrier": carrier, "tracking": tracking, "manifest": manifest.id})
    return f"handed to {carrier}"


def _handover_customer(session: Session, p: Principal, a: Action, ctx: Ctx) -> str:
    if not ctx.pickup:
        raise ActionRejected("wrong_state", f"order {ctx.order.external_id} ships with a carrier")
    _step(ctx, TaskStep.handover)
    code = (a.pickup_code or "").strip()
    if not code or not ctx.task.pickup_code or not secrets.compare_digest(code, ctx.task.pickup_code):
        raise ActionRejected("wrong_pickup_code", "the pickup code does not match this order")
    _fulfil(session, p, ctx, "collected", {})
    return "collected by the customer"


def _fulfil(session: Session, p: Principal, ctx: Ctx, outcome: str, data: dict[str, Any]) -> None:
    """The units leave the store: stock consumed, allocations fulfilled, the task done."""
    at = now()
    record_fulfilled = hook("backend.services.reliability", "record_fulfilled")
    for x in ctx.live():
        reservations.consume(session, x.location, x.sku, x.quantity, ref=ctx.order.id, actor=p.username)
        x.state = AllocationState.fulfilled.value
        x.picked = x.quantity
        x.fulfilled_at = at
        session.add(x)
        if record_fulfilled is not None:
            record_fulfilled(session, x.location, x.sku, x.quantity)
    t = ctx.task
    t.step = TaskStep.done.value
    t.outcome = outcome
    t.handed_over_at = at
    events.record(session, f"task.{outcome}", "task", t.id, order_id=t.order_id, location=t.location,
                  actor=p.username, data=data)
    _refresh(session, ctx)


def _count(session: Session, p: Principal, a: Action) -> str:
    if not a.sku or a.counted is None:
        raise ActionRejected("invalid_action", "a count needs sku and counted")
    count = hook("backend.services.counts", "record_count")
    if count is None:
        raise Unavailable("counting is not available on this server yet")
    try:
        res = count(session, p.store, a.sku, a.counted, p, commit=False)
    except DomainError as e:
        raise ActionRejected(e.code, e.message) from e
    status = getattr(res, "status", None)
    return f"counted {a.counted} × {a.sku}" + (f": {getattr(status, 'value', status)}" if status else "")


def _iso(a: Action) -> str | None:
    return a.at.isoformat() if a.at else None


# Actions that never add or remove allocations (they change those they have in place).
_KEEP_ALLOCATIONS = frozenset({ActionType.claim, ActionType.assign, ActionType.pick, ActionType.pack,
                               ActionType.handover_carrier, ActionType.handover_customer})

_HANDLERS: dict[ActionType, Callable[[Session, Principal, Action, Ctx], str]] = {
    ActionType.claim: _claim,
    ActionType.assign: _assign,
    ActionType.pick: _pick,
    ActionType.reject: _reject,
    ActionType.pack: _pack,
    ActionType.handover_carrier: _handover_carrier,
    ActionType.handover_customer: _handover_customer,
}
