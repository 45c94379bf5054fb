"""Store fulfilment: released allocations become store tasks; managers read the workload and steer it.

`on_released` is called by routing inside its own transaction (no commit here). The tablet actions themselves
live in `backend.services.actions`, the tablets' pull and push in `backend.services.sync`.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import String, any_, bindparam, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col, select

from backend import events
from backend.clock import now
from backend.errors import DomainError, Forbidden, NotFound
from backend.ids import new_id
from backend.models import Allocation, Barcode, Location, Order, OrderLine, Package, Product, Task, User
from backend.models.fulfilment import Manifest
from backend.principal import Principal
from backend.services import order_status, storeversion
from backend.services.tasks import LIVE, is_pickup_task, pickup_code_sha256
from shared.enums import AllocationState, LocationType, Role, TaskStep
from shared.fulfilment import AssociateLoad, ManifestOut, ManifestPackage, Manifests, Workload, WorkloadTask
from shared.sync import TaskData

# Allocations a task shows: the live ones, those it fulfilled, and the units it gave back.
VISIBLE = frozenset(LIVE | {AllocationState.fulfilled.value, AllocationState.rejected.value})
DONE_OUTCOMES = frozenset({"shipped", "collected"})
_CHUNK = 500


def on_released(session: Session, allocations: list[Allocation]) -> None:
    """Put released allocations in their store's queue: one task per (order, store), created or extended.

    A task that had been withdrawn (re-routed away, tombstoned) comes back; a finished one is left alone and a
    new task is opened. Non-store locations get no task (they use the node API). Bumps each store's version and
    stamps the task with it. No commit: part of the caller's transaction."""
    if not allocations:
        return
    codes = {a.location for a in allocations}
    stores = {loc.code: loc for loc in session.exec(select(Location).where(col(Location.code).in_(codes)))
              if loc.type == LocationType.store.value}
    groups: dict[tuple[str, str], list[Allocation]] = defaultdict(list)
    at = now()
    for a in allocations:
        if a.state == AllocationState.reserved.value:
            a.state = AllocationState.released.value
        a.released_at = a.released_at or at
        session.add(a)
        if a.location in stores:
            groups[(a.order_id, a.location)].append(a)
    orders: set[str] = set()
    for (order_id, location), allocs in sorted(groups.items()):
        order = session.get(Order, order_id)
        if order is None:
            continue
        orders.add(order_id)
        task = _open_task(session, order_id, location)
        if task is None:
            task = Task(id=new_id("tsk"), order_id=order_id, location=location, step=TaskStep.pick.value,
                        created_at=at, updated_at=at)
            kind = "task.created"
        else:
            kind = "task.restored" if task.deleted else "task.extended"
            task.deleted = False
            task.outcome = None
            task.step = TaskStep.pick.value  # the new units are still to pick
        task.version = storeversion.bump(session, location)
        task.updated_at = at
        session.add(task)
        session.flush()  # the task row exists before allocations point at it
        for a in allocs:
            a.task_id = task.id
            session.add(a)
        events.record(session, kind, "task", task.id, order_id=order_id, location=location,
                      data={"allocations": [a.id for a in allocs],
                            "pickup": is_pickup_task(order.delivery_method, order.pickup_location, location)})
    session.flush()
    for order_id in sorted(orders):
        refresh_order(session, order_id)


def _open_task(session: Session, order_id: str, location: str) -> Task | None:
    """The task to extend: the newest one for (order, store) that did not finish with a handover."""
    for t in session.exec(select(Task).where(Task.order_id == order_id, Task.location == location)
                          .order_by(col(Task.created_at).desc(), col(Task.id).desc())):
        if t.outcome in DONE_OUTCOMES:
            return None
        return t
    return None


def refresh_order(session: Session, order_id: str) -> None:
    order = session.get(Order, order_id)
    if order is not None:
        session.flush()
        order_status.refresh(session, order)


# --------------------------------------------------------------------------------------------- task payloads
def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


_T = Task.__table__.c  # type: ignore[attr-defined]
TASK_COLUMNS = (_T.id, _T.order_id, _T.location, _T.step, _T.assignee, _T.pickup_code, _T.priority, _T.version,
                _T.deleted, _T.outcome)  # table columns: rows come back as plain tuples, no ORM loading


class TaskRow(Protocol):
    id: str
    order_id: str
    location: str
    step: str
    assignee: str | None
    pickup_code: str | None
    priority: int


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


_A = Allocation.__table__.c  # type: ignore[attr-defined]
_L = OrderLine.__table__.c  # type: ignore[attr-defined]
_O = Order.__table__.c  # type: ignore[attr-defined]
_P = Product.__table__.c  # type: ignore[attr-defined]
_B = Barcode.__table__.c  # type: ignore[attr-defined]
_VISIBLE = sorted(VISIBLE)


def _among(session: Session, column: Any, values: Sequence[str]) -> Any:
    """`column IN values` with the values bound as one parameter (an array on PostgreSQL, a JSON list read by
    `json_each` on SQLite): the statement is the same for any number of ids, so it is compiled once, not expanded
    value by value (which cost more than the query for a page of 200 tasks)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    listed = func.json_each(bindparam(None, json.dumps(list(values)), type_=String)).table_valued("value")
    return column.in_(select(listed.c.value))


def task_payloads(session: Session, tasks: Sequence[TaskRow]) -> tuple[list[dict[str, Any]], dict[str, dict]]:
    """The tablets' view of these tasks (TaskData as JSON-ready dicts, in the given order), and the products they
    need (ProductData dicts by SKU, with barcodes). Set-based: three plain queries per 500 tasks (allocations with
    their lines, orders, products with their barcodes), read as tuples, no ORM objects."""
    if not tasks:
        return [], {}
    session.flush()  # plain column reads below do not autoflush: a caller's pending changes are visible first
    by_task: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    rejected = AllocationState.rejected.value
    allocs: list[Any] = []
    for chunk in _chunks([t.id for t in tasks]):
        allocs += session.execute(
            select(_A.task_id, _A.state, _A.quantity, _A.picked, _A.rejected, _L.line_id, _L.sku)
            .select_from(Allocation.__table__.join(OrderLine.__table__, _L.id == _A.line_pk))  # type: ignore[attr-defined]
            .where(_among(session, _A.task_id, chunk), _A.state.in_(_VISIBLE))).all()
    orders: dict[str, Any] = {}
    for chunk in _chunks(sorted({t.order_id for t in tasks})):
        for row in session.execute(select(_O.id, _O.external_id, _O.delivery_method, _O.pickup_location, _O.promise_by)
                                   .where(_among(session, _O.id, chunk))).all():
            orders[row[0]] = row
    products: dict[str, dict] = {}
    for chunk in _chunks(sorted({a[6] for a in allocs})):
        for sku, name, weight, code in session.execute(
                select(_P.sku, _P.name, _P.weight_kg, _B.barcode)
                .select_from(Product.__table__.outerjoin(Barcode.__table__, _B.sku == _P.sku))  # type: ignore[attr-defined]
                .where(_among(session, _P.sku, chunk)).order_by(_P.sku, _B.barcode)).all():
            p = products.get(sku)
            if p is None:
                p = products[sku] = {"sku": sku, "name": name, "barcodes": [], "weight_kg": weight}
            if code is not None:
                p["barcodes"].append(code)
    # Lines sum their allocations (any order: the sums do not depend on it) and are sorted by line id below.
    for task_id, state, quantity, picked, rej, line_id, sku in allocs:
        lines = by_task[task_id]
        ln = lines.get(line_id)
        if ln is None:
            p = products.get(sku)
            ln = lines[line_id] = {
                "line_id": line_id, "sku": sku, "name": p["name"] if p else None, "quantity": 0, "picked": 0,
                "rejected": 0, "barcodes": p["barcodes"] if p else []}
        ln["quantity"] += quantity
        if state == rejected:
            ln["rejected"] += rej
        else:
            ln["picked"] += picked
    out = []
    for t in tasks:
        _, external_id, method, pickup_location, promise_by = orders[t.order_id]
        pickup = is_pickup_task(method, pickup_location, t.location)
        found = by_task.get(t.id)
        lines = sorted(found.values(), key=lambda x: (len(x["line_id"]), x["line_id"])) if found else []
        out.append({"id": t.id, "order_id": t.order_id, "order_number": external_id, "step": t.step,
                    "delivery_method": method, "promise_by": _iso(promise_by), "assignee": t.assignee,
                    "pickup_code_sha256": pickup_code_sha256(t.id, t.pickup_code) if pickup and t.pickup_code
                    else None, "priority": t.priority, "location": t.location, "lines": lines})
    return out, products


def task_view(session: Session, task: Task) -> TaskData:
    return TaskData.model_validate(task_payloads(session, [task])[0][0])


# ------------------------------------------------------------------------------------------ manager's views
def _store(session: Session, code: str) -> Location:
    loc = session.get(Location, code)
    if loc is None or loc.type != LocationType.store.value:
        raise NotFound("unknown_store", f"store {code} does not exist", {"store": code})
    return loc


def _local_day_start(loc: Location, at: datetime) -> datetime:
    local = at.astimezone(ZoneInfo(loc.timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def workload(session: Session, code: str, actor: Principal) -> Workload:
    """Open tasks by step, their age against the promise, and who is doing what (manager of the store, or HQ)."""
    if not (actor.is_hq or (actor.role == Role.manager and actor.store == code)):
        raise Forbidden("forbidden", f"only the manager of {code} or HQ may read its workload", {"store": code})
    loc = _store(session, code)
    at = now()
    rows = session.exec(select(Task, Order).join(Order, col(Order.id) == Task.order_id).where(
        Task.location == code, Task.deleted == False, Task.step != TaskStep.done.value)  # noqa: E712
    ).all()
    items = []
    for t, o in rows:
        to_promise = (o.promise_by - at).total_seconds() / 60 if o.promise_by else None
        items.append(WorkloadTask(
            id=t.id, order_id=t.order_id, order_number=o.external_id, step=t.step, assignee=t.assignee,
            priority=t.priority, promise_by=o.promise_by,
            age_minutes=round((at - t.created_at).total_seconds() / 60, 1),
            minutes_to_promise=round(to_promise, 1) if to_promise is not None else None,
            late=to_promise is not None and to_promise < 0))
    far = datetime.max.replace(tzinfo=at.tzinfo)
    items.sort(key=lambda w: (-w.priority, w.promise_by or far, -w.age_minutes, w.id))
    by_step = {s.value: 0 for s in (TaskStep.pick, TaskStep.pack, TaskStep.handover)}
    open_by_user: dict[str, int] = defaultdict(int)
    for w in items:
        by_step[w.step.value] = by_step.get(w.step.value, 0) + 1
        if w.assignee:
            open_by_user[w.assignee] += 1
    day_start = _local_day_start(loc, at)
    done = dict(session.exec(select(Task.assignee, func.count()).where(
        Task.location == code, col(Task.outcome).in_(DONE_OUTCOMES), col(Task.handed_over_at) >= day_start,
        col(Task.assignee).is_not(None)).group_by(Task.assignee)).all())
    users = session.exec(select(User).where(User.store == code, User.active == True)  # noqa: E712
                         .order_by(User.username)).all()
    people = [AssociateLoad(username=u.username, role=u.role, open=open_by_user.get(u.username, 0),
                            done_today=int(done.get(u.username, 0))) for u in users]
    known = {u.username for u in users}
    people += [AssociateLoad(username=n, open=open_by_user.get(n, 0), done_today=int(done.get(n, 0)))
               for n in sorted((set(open_by_user) | set(done)) - known)]
    return Workload(store=code, open_by_step=by_step, tasks=items, by_associate=people,
                    oldest_minutes=max((w.age_minutes for w in items), default=0.0))


def manifests(session: Session, code: str, day: str | None, actor: Principal) -> Manifests:
    """The packages handed to each carrier on one store-local day (default today)."""
    if not (actor.is_hq or (actor.role in (Role.associate, Role.manager) and actor.store == code)):
        raise Forbidden("forbidden", f"only {code}'s staff or HQ may read its manifests", {"store": code})
    loc = _store(session, code)
    if day is None:
        day = _local_day_start(loc, now()).date().isoformat()
    else:
        try:
            day = datetime.strptime(day, "%Y-%m-%d").date().isoformat()
        except ValueError as e:
            raise DomainError("invalid_date", f"date {day!r} is not YYYY-MM-DD", {"date": day}, status=422) from e
    out = []
    for m in session.exec(select(Manifest).where(Manifest.location == code, Manifest.day == day)
                          .order_by(Manifest.carrier)):
        pkgs = session.exec(select(Package).where(Package.manifest_id == m.id)
                            .order_by(Package.shipped_at, Package.id)).all()
        out.append(ManifestOut(id=m.id, carrier=m.carrier, day=m.day, packages=len(pkgs),
                               weight_kg=round(sum(p.weight_kg or 0 for p in pkgs), 3),
                               items=[ManifestPackage(package_id=p.id, task_id=p.task_id, order_id=p.order_id,
                                                      tracking=p.tracking, box=p.box, weight_kg=p.weight_kg,
                                                      handed_over_at=p.shipped_at) for p in pkgs]))
    return Manifests(store=code, date=day, manifests=out)


def manifest_for(session: Session, loc: Location, carrier: str) -> Manifest:
    """Today's manifest of this carrier at this store (store-local day), created on first use. No commit."""
    day = _local_day_start(loc, now()).date().isoformat()
    m = session.exec(select(Manifest).where(Manifest.location == loc.code, Manifest.carrier == carrier,
                                            Manifest.day == day)).first()
    if m is None:
        m = Manifest(id=new_id("mfs"), location=loc.code, carrier=carrier, day=day)
        session.add(m)
        session.flush()
    return m


# --------------------------------------------------------------------------------- manager actions over REST
def _manager_action(session: Session, code: str, task_id: str, actor: Principal, action: dict) -> TaskData:
    from backend.services import actions
    from shared.sync import Action

    if actor.is_hq and action["type"] == "priority":
        pass
    elif actor.role != Role.manager or actor.store != code:
        raise Forbidden("forbidden", f"only the manager of {code} may do this", {"store": code})
    task = session.get(Task, task_id)
    if task is None or task.location != code:
        raise NotFound("unknown_task", f"task {task_id} is not in {code}'s queue", {"task_id": task_id})
    actions.hold_store(session, code)  # the store's lock, as a tablet push takes it
    try:
        if action["type"] == "priority":
            actions.set_priority(session, actor, task, action["priority"])
        else:
            actions.apply(session, actor, Action(id=new_id("rest"), **action))
    except actions.ActionRejected as e:
        session.rollback()
        status = {"unknown_task": 404, "wrong_location": 403, "forbidden": 403}.get(e.code, 409)
        raise DomainError(e.code, e.message, {"task_id": task_id}, status=status) from e
    session.commit()
    return task_view(session, session.get(Task, task_id))


def assign_task(session: Session, code: str, task_id: str, assignee: str | None, actor: Principal) -> TaskData:
    return _manager_action(session, code, task_id, actor, {"type": "assign", "task_id": task_id,
                                                            "assignee": assignee})


def prioritise_task(session: Session, code: str, task_id: str, priority: int, actor: Principal) -> TaskData:
    return _manager_action(session, code, task_id, actor, {"type": "priority", "priority": priority})
