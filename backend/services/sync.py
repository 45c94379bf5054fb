"""The tablets' protocol: pull the store's changes after a cursor; push actions, each applied exactly once.

Pull. Every transaction that changes what a store sees bumps the store's version under a row lock and stamps the
changed task with it, so versions commit in order per store. A pull reads the committed version first and then
the tasks up to it in (version, id) order: a change that commits later has a higher version and comes next time.

Push. Each action's effects and its id and result (`SyncAction`) commit together; a repeated id gets the stored
result and changes nothing, from any device. A refused action is recorded too (it never blocks the outbox); only
a temporary failure (database down) is left unrecorded, for the tablet to retry.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, insert, inspect, or_
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.base import NO_VALUE
from sqlmodel import Session, and_, col, select

from backend.clock import now
from backend.errors import DomainError, Forbidden
from backend.models import SyncAction, Task, User
from backend.principal import Principal
from backend.services import actions, storeversion
from backend.services.fulfilment import TASK_COLUMNS, task_payloads
from backend.services.tasks import Cursor, parse_cursor
from shared.enums import REJECT_REASON_LABELS, ActionType, RejectReason, Role, TaskStep
from shared.sync import (
    Action,
    ActionResult,
    PushRequest,
    PushResponse,
    ReasonCodeData,
    UserData,
)

log = logging.getLogger("storeline.sync")
DEFAULT_LIMIT = 200
MAX_LIMIT = 1000
_RETRIES = 3
COMMIT_EVERY = 50


class TryLater(DomainError):
    status = 503


def store_of(p: Principal) -> str:
    """Only a store's associates and managers talk to its tablets' endpoints."""
    if p.role not in (Role.associate, Role.manager) or not p.store:
        raise Forbidden("forbidden_role", "the sync endpoints are for store associates and managers",
                        {"role": p.role.value})
    return p.store


# -------------------------------------------------------------------------------------------------- pull
def _reason_codes() -> list[dict[str, Any]]:
    return [_change("reason_code", "upsert", r.value, ReasonCodeData(
        code=r.value, label=REJECT_REASON_LABELS[r], needs_note=r == RejectReason.other, position=i).model_dump())
            for i, r in enumerate(RejectReason)]


def _users(session: Session, store: str) -> list[Any]:
    """The store's staff as plain rows (username, role, name, active): no ORM objects, no secrets read."""
    u = User.__table__.c  # type: ignore[attr-defined]
    return list(session.execute(select(u.username, u.role, u.name, u.active).where(u.store == store)
                                .order_by(u.username)))


def _ref_hash(users: list[Any]) -> str:
    """Changes when the store's staff or the reason codes change, so the tablet gets them again."""
    h = hashlib.sha1()
    for u in users:
        h.update(f"{u.username}|{u.role}|{u.name}|{u.active}\n".encode())
    for r, label in REJECT_REASON_LABELS.items():
        h.update(f"{r.value}|{label}\n".encode())
    return h.hexdigest()[:10]


def _user_changes(users: list[Any]) -> list[dict[str, Any]]:
    return [_change("user", "upsert", u.username, UserData(username=u.username, role=u.role, name=u.name).model_dump())
            if u.active else _change("user", "delete", u.username, {}) for u in users]


def pull(session: Session, p: Principal, raw_cursor: str | None, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """Everything the caller's store needs that changed after `raw_cursor`, one page of at most `limit` tasks,
    as the JSON of `shared.sync.PullResponse` (plain dicts: a page of 200 tasks is built without model objects).

    No cursor: a full snapshot of the live tasks plus reference data. A cursor that cannot be used (unreadable,
    another store's, ahead of the server): the same snapshot, flagged `reset` so the tablet drops its copy."""
    store = store_of(p)
    limit = max(1, min(limit, MAX_LIMIT))
    current = storeversion.current(session, store)  # first: every task stamped up to it is committed and visible
    users = _users(session, store)
    ref = _ref_hash(users)
    cur = parse_cursor(raw_cursor)
    reset = False
    if cur is None or cur.store != store or cur.version > current or (cur.upper or 0) > current:
        reset = bool(raw_cursor)
        cur = Cursor(store=store, version=-1, upper=current)
    changes: list[dict[str, Any]] = []
    if cur.ref != ref:
        changes += _reason_codes() + _user_changes(users)
    snapshot = cur.upper is not None
    upper = cur.upper if snapshot else current
    t = Task.__table__.c  # type: ignore[attr-defined]
    q = select(*TASK_COLUMNS).where(t.location == store, t.version <= upper)
    if cur.task_id:
        q = q.where(or_(t.version > cur.version, and_(t.version == cur.version, t.id > cur.task_id)))
    else:
        q = q.where(t.version > cur.version)
    if snapshot:
        q = q.where(t.deleted == False, t.step != TaskStep.done.value)  # noqa: E712
    page = list(session.execute(q.order_by(t.version, t.id).limit(limit + 1)))
    more = len(page) > limit
    page = page[:limit]
    datas, products = task_payloads(session, [t for t in page if not t.deleted])
    changes += [_change("product", "upsert", sku, products[sku]) for sku in sorted(products)]
    by_id = {d["id"]: d for d in datas}
    for t in page:
        if t.deleted:
            changes.append(_change("task", "delete", t.id, {"outcome": t.outcome}))
        else:
            changes.append(_change("task", "upsert", t.id, by_id[t.id]))
    if more:
        last = page[-1]
        nxt = Cursor(store=store, version=last.version, task_id=last.id, upper=cur.upper, ref=ref)
        has_more = True
    else:
        nxt = Cursor(store=store, version=upper, ref=ref)
        has_more = snapshot and current > upper  # changes made while the snapshot was paged
    return {"cursor": nxt.encode(), "has_more": has_more, "changes": changes, "reset": reset}


def _change(entity: str, op: str, key: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"entity": entity, "op": op, "id": key, "data": data}


def current_cursor(session: Session, store: str) -> str:
    return Cursor(store=store, version=storeversion.current(session, store)).encode()


# -------------------------------------------------------------------------------------------------- push
def push(session: Session, p: Principal, body: PushRequest) -> PushResponse:
    """Apply the actions in order, each exactly once; results in request order.

    Each action commits with its `SyncAction` row; a refused action leaves nothing behind and is recorded as
    refused; the others go on (see `_push_group`: no savepoint per action unless a refused action had changed
    something, then the whole group again with one each). Actions are committed in groups of COMMIT_EVERY (one
    commit per action would cost a disk flush each on PostgreSQL), so a crash loses at most an uncommitted group,
    whole, and never half an action: the tablet sends it again and gets the same results. A temporary failure
    (database down) stops the batch: the results committed so far are returned, or 503 when there are none."""
    store = store_of(p)
    results: list[ActionResult] = []
    todo = list(body.actions)
    while todo:
        group, todo = todo[:COMMIT_EVERY], todo[COMMIT_EVERY:]
        with _counting(session):
            done, stop = _push_group(session, p, body.device_id, group)
        results += done
        if stop is not None:
            if not results:
                if isinstance(stop, actions.Unavailable):
                    raise TryLater("try_later", str(stop), {"action_id": group[0].id}) from stop
                raise stop
            log.warning("push stopped after %d of %d actions: %s", len(results), len(body.actions), stop)
            break
    return PushResponse(results=results, cursor=current_cursor(session, store))


class _Undo(Exception):
    """A refused action left changes that only a savepoint could undo: run its group again with savepoints."""


def _push_group(session: Session, p: Principal, device_id: str, group: list[Action]
                ) -> tuple[list[ActionResult], Exception | None]:
    """Apply and commit one group. Returns its results and, when a temporary failure cut it short, the failure
    (the results then cover the actions committed before it).

    Fast path first: no savepoint per action and the `SyncAction` rows inserted together before the commit. It is
    exact because a refused action that changed anything (in the session or in the database) stops it: the group
    is rolled back and run again the careful way (a savepoint and an insert per action), as is a group whose
    insert meets an id committed meanwhile by another store's push."""
    fast = True
    failures = 0
    while True:
        out: list[ActionResult] = []
        rows: list[dict[str, Any]] | None = [] if fast else None
        try:
            # The store's lock, held to commit: its tablets' actions run one at a time, each on fresh rows.
            actions.hold_store(session, p.store or "")
            known = _stored(session, [a.id for a in group])
            todo = [a for a in group if a.id not in known]
            actions.prefetch(session, [a.task_id for a in todo if a.task_id],
                             barcodes=[a.barcode.strip() for a in todo if a.barcode and a.type == ActionType.pick])
            stop: Exception | None = None
            for a in group:
                try:
                    out.append(_push_one(session, p, device_id, a, known, rows))
                except actions.Unavailable as e:
                    stop = e  # the actions before it stand
                    break
            _insert_records(session, rows)
            session.commit()
            return out, stop
        except _Undo as e:
            session.rollback()
            log.debug("push group again with a savepoint per action (action %s was refused after a change)", e)
            fast = False
        except IntegrityError as e:
            session.rollback()
            if not fast:
                return [], e
            log.debug("push group again with a savepoint per action (an action id met a committed twin)")
            fast = False  # an id met a twin committed by another process: per action, in savepoints
        except DBAPIError as e:
            session.rollback()
            failures += 1
            if _retryable(e) and failures < _RETRIES:
                continue  # a deadlock with another writer: the whole group again
            return [], e


def _result(row: SyncAction) -> ActionResult:
    return ActionResult(id=row.id, status=row.status, code=row.code, message=row.message)


def _stored(session: Session, ids: list[str]) -> dict[str, ActionResult]:
    rows = session.exec(select(SyncAction).where(col(SyncAction.id).in_(sorted(set(ids))))
                        .execution_options(populate_existing=True))
    return {r.id: _result(r) for r in rows}


_INSERT_ACTION = insert(SyncAction.__table__)  # type: ignore[arg-type]


def _row(p: Principal, device_id: str, a: Action, status: str, code: str | None, message: str | None
         ) -> dict[str, Any]:
    return {"id": a.id, "device_id": device_id, "username": p.username, "location": p.store, "type": a.type.value,
            "task_id": a.task_id, "status": status, "code": code, "message": (message or "")[:300] or None,
            "payload": a.model_dump(mode="json", exclude_none=True), "device_at": a.at, "applied_at": now()}


def _record(session: Session, p: Principal, device_id: str, a: Action, status: str, code: str | None,
            message: str | None) -> None:
    """Store the action's id and result (a plain INSERT: it runs once per action, in its savepoint)."""
    session.execute(_INSERT_ACTION, _row(p, device_id, a, status, code, message))


def _insert_records(session: Session, rows: list[dict[str, Any]] | None) -> None:
    """The fast path's `SyncAction` rows, in one statement, in the actions' transaction."""
    if rows:
        session.execute(_INSERT_ACTION, rows)


def _retryable(e: DBAPIError) -> bool:
    """A deadlock or serialisation failure between two writers: run the group again."""
    orig = getattr(e, "orig", None)
    return (getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)) in ("40P01", "40001")


def _push_one(session: Session, p: Principal, device_id: str, a: Action, known: dict[str, ActionResult],
              rows: list[dict[str, Any]] | None = None) -> ActionResult:
    """One action. With `rows` (the fast path) its record is appended there and no savepoint is taken (the
    earlier actions' changes stay pending, to be flushed together): a refused action that changed anything, in
    the session or in the database, raises `_Undo`. Without `rows`, a savepoint rolls a refused action back."""
    if a.id in known:
        return known[a.id]
    if rows is not None:
        mark = _mark(session)
        try:
            msg = actions.apply(session, p, a)
        except actions.Unavailable as e:
            if _changed(session, mark):
                raise _Undo(a.id) from e
            raise
        except (actions.ActionRejected, DomainError) as e:
            if _changed(session, mark):
                raise _Undo(a.id) from e
            res = ActionResult(id=a.id, status="rejected", code=e.code, message=e.message)  # type: ignore[union-attr]
            rows.append(_row(p, device_id, a, "rejected", e.code, e.message))  # type: ignore[union-attr]
        else:
            res = ActionResult(id=a.id, status="applied", message=msg)
            rows.append(_row(p, device_id, a, "applied", None, msg))
        known[a.id] = res
        return res
    sp = session.begin_nested()
    try:
        msg = actions.apply(session, p, a)
        res = ActionResult(id=a.id, status="applied", message=msg)
        # A twin of this id committed meanwhile by another process fails here, on the primary key.
        _record(session, p, device_id, a, "applied", None, msg)
        sp.commit()
    except IntegrityError:
        sp.rollback()
        found = _stored(session, [a.id]).get(a.id)  # the twin's result is this action's result
        if found is None:
            raise
        res = found
    except (actions.ActionRejected, DomainError) as e:
        sp.rollback()
        _record(session, p, device_id, a, "rejected", e.code, e.message)  # type: ignore[union-attr]
        res = ActionResult(id=a.id, status="rejected", code=e.code, message=e.message)  # type: ignore[union-attr]
    except BaseException:
        sp.rollback()
        raise
    known[a.id] = res
    return res


# ------------------------------------------------------------------------------------------ change detection
_WRITES = "storeline.sync_writes"


@dataclass(frozen=True)
class _Mark:
    new: dict[int, tuple[Any, dict[str, Any]]]
    deleted: int
    writes: int
    dirty: dict[int, tuple[Any, dict[str, Any]]]


def _pending(obj: Any) -> dict[str, Any]:
    """The values of an object's changed-but-unflushed attributes."""
    st = inspect(obj)
    return {k: st.dict.get(k, NO_VALUE) for k in st.committed_state}


def _mark(session: Session) -> _Mark:
    """What the session holds before an action: enough to tell afterwards whether the action changed anything."""
    return _Mark({id(o): (o, dict(inspect(o).dict)) for o in session.new}, len(session.deleted), _writes(session),
                 {id(o): (o, _pending(o)) for o in session.dirty})


def _changed(session: Session, mark: _Mark) -> bool:
    """Whether anything was added, deleted, modified or written (a flush, a statement that is not a SELECT)
    since `mark`. Conservative: an autoflush of earlier actions' changes also counts."""
    if len(session.deleted) != mark.deleted or _writes(session) != mark.writes:
        return True
    new = session.new
    if len(new) != len(mark.new):
        return True
    for o in new:  # objects added by earlier actions, not yet inserted
        before = mark.new.get(id(o))
        if before is None or before[0] is not o or before[1] != inspect(o).dict:
            return True
    for o in session.dirty:
        before = mark.dirty.get(id(o))
        if before is None or before[0] is not o or before[1] != _pending(o):
            return True
    return False


def _writes(session: Session) -> int:
    """How many flushes and non-SELECT statements (text() counts as one) this session has run in `_counting`."""
    return session.info[_WRITES]


@contextmanager
def _counting(session: Session) -> Iterator[None]:
    """Count this session's writes for `_writes` (listeners on this session only, not on every session)."""
    session.info[_WRITES] = 0
    event.listen(session, "after_flush", _count_flush)
    event.listen(session, "do_orm_execute", _count_write)
    try:
        yield
    finally:
        event.remove(session, "after_flush", _count_flush)
        event.remove(session, "do_orm_execute", _count_write)
        session.info.pop(_WRITES, None)


def _count_flush(session: Session, _ctx: Any) -> None:
    session.info[_WRITES] += 1


def _count_write(state: Any) -> None:
    if not state.is_select:
        state.session.info[_WRITES] += 1
