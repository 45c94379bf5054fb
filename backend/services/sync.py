"""The tablets' protocol: pull the store's changes after a cursor; push actions, each applied exactly once.

Pull. Every transaction that changes what a store sees bumps the store's version under a row lock and stamps the
changed task with it, so versions commit in order per store. A pull reads the committed version first and then
the tasks up to it in (version, id) order: a change that commits later has a higher version and comes next time.

Push. Each action runs in its own transaction, which also stores its id and result (`SyncAction`); a repeated id
gets the stored result and changes nothing, from any device. A refused action is recorded too (it never blocks the
outbox); only a temporary failure (database down) is left unrecorded, for the tablet to retry.
"""
from __future__ import annotations

import hashlib
import logging

from sqlalchemy import or_
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session, and_, col, select

from backend.errors import DomainError, Forbidden
from backend.models import SyncAction, Task, User
from backend.principal import Principal
from backend.services import actions, storeversion
from backend.services.fulfilment import task_payloads
from backend.services.tasks import Cursor, parse_cursor
from shared.enums import REJECT_REASON_LABELS, RejectReason, Role, TaskStep
from shared.sync import (
    Action,
    ActionResult,
    Change,
    ProductData,
    PullResponse,
    PushRequest,
    PushResponse,
    ReasonCodeData,
    UserData,
)

log = logging.getLogger("storeline.sync")
DEFAULT_LIMIT = 200
MAX_LIMIT = 1000
_RETRIES = 3


class TryLater(DomainError):
    status = 503


def store_of(p: Principal) -> str:
    """Only a store's associates and managers talk to its tablets' endpoints."""
    if p.role not in (Role.associate, Role.manager) or not p.store:
        raise Forbidden("forbidden_role", "the sync endpoints are for store associates and managers",
                        {"role": p.role.value})
    return p.store


# -------------------------------------------------------------------------------------------------- pull
def _reason_codes() -> list[Change]:
    return [Change(entity="reason_code", op="upsert", id=r.value,
                   data=ReasonCodeData(code=r.value, label=REJECT_REASON_LABELS[r], needs_note=r == RejectReason.other,
                                       position=i).model_dump())
            for i, r in enumerate(RejectReason)]


def _users(session: Session, store: str) -> list[User]:
    return list(session.exec(select(User).where(User.store == store).order_by(User.username)))


def _ref_hash(users: list[User]) -> str:
    """Changes when the store's staff or the reason codes change, so the tablet gets them again."""
    h = hashlib.sha1()
    for u in users:
        h.update(f"{u.username}|{u.role}|{u.name}|{u.active}\n".encode())
    for r, label in REJECT_REASON_LABELS.items():
        h.update(f"{r.value}|{label}\n".encode())
    return h.hexdigest()[:10]


def _user_changes(users: list[User]) -> list[Change]:
    return [Change(entity="user", op="upsert", id=u.username,
                   data=UserData(username=u.username, role=u.role, name=u.name).model_dump()) if u.active
            else Change(entity="user", op="delete", id=u.username) for u in users]


def pull(session: Session, p: Principal, raw_cursor: str | None, limit: int = DEFAULT_LIMIT) -> PullResponse:
    """Everything the caller's store needs that changed after `raw_cursor`, one page of at most `limit` tasks.

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
    changes: list[Change] = []
    if cur.ref != ref:
        changes += _reason_codes() + _user_changes(users)
    snapshot = cur.upper is not None
    upper = cur.upper if snapshot else current
    q = select(Task).where(Task.location == store, col(Task.version) <= upper)
    if cur.task_id:
        q = q.where(or_(col(Task.version) > cur.version, and_(Task.version == cur.version, col(Task.id) > cur.task_id)))
    else:
        q = q.where(col(Task.version) > cur.version)
    if snapshot:
        q = q.where(Task.deleted == False, Task.step != TaskStep.done.value)  # noqa: E712
    page = list(session.exec(q.order_by(Task.version, Task.id).limit(limit + 1)))
    more = len(page) > limit
    page = page[:limit]
    live = [t for t in page if not t.deleted]
    datas, products, barcodes = task_payloads(session, live)
    for sku in sorted(products):
        pr = products[sku]
        changes.append(Change(entity="product", op="upsert", id=sku, data=ProductData(
            sku=sku, name=pr.name, barcodes=barcodes.get(sku, []), weight_kg=pr.weight_kg).model_dump()))
    by_id = {d.id: d for d in datas}
    for t in page:
        if t.deleted:
            changes.append(Change(entity="task", op="delete", id=t.id, data={"outcome": t.outcome}))
        else:
            changes.append(Change(entity="task", op="upsert", id=t.id, data=by_id[t.id].model_dump(mode="json")))
    if more:
        last = page[-1]
        nxt = Cursor(store=store, version=last.version, task_id=last.id, upper=cur.upper, ref=ref)
        has_more = True
    else:
        nxt = Cursor(store=store, version=upper, ref=ref)
        has_more = snapshot and current > upper  # changes made while the snapshot was paged
    return PullResponse(cursor=nxt.encode(), has_more=has_more, changes=changes, reset=reset)


def current_cursor(session: Session, store: str) -> str:
    return Cursor(store=store, version=storeversion.current(session, store)).encode()


# -------------------------------------------------------------------------------------------------- push
def push(session: Session, p: Principal, body: PushRequest) -> PushResponse:
    """Apply the actions in order, each once; results in request order. A temporary failure stops the batch:
    the results so far are returned (the tablet sends the rest again), or 503 when there are none."""
    store = store_of(p)
    results: list[ActionResult] = []
    for a in body.actions:
        try:
            results.append(_push_one(session, p, body.device_id, a))
        except (OperationalError, DBAPIError, actions.Unavailable) as e:
            session.rollback()
            log.warning("push stopped at action %s: %s", a.id, e)
            if not results:
                if isinstance(e, actions.Unavailable):
                    raise TryLater("try_later", str(e), {"action_id": a.id}) from e
                raise
            break
    return PushResponse(results=results, cursor=current_cursor(session, store))


def _stored(session: Session, action_id: str) -> ActionResult | None:
    row = session.get(SyncAction, action_id, populate_existing=True)
    if row is None:
        return None
    return ActionResult(id=row.id, status=row.status, code=row.code, message=row.message)


def _record(p: Principal, device_id: str, a: Action, status: str, code: str | None, message: str | None
            ) -> SyncAction:
    return SyncAction(id=a.id, device_id=device_id, username=p.username, location=p.store, type=a.type.value,
                      task_id=a.task_id, status=status, code=code, message=(message or "")[:300] or None,
                      payload=a.model_dump(mode="json", exclude_none=True), device_at=a.at)


def _retryable(e: DBAPIError) -> bool:
    """A deadlock or serialisation failure between two writers: run the action again."""
    code = getattr(getattr(e, "orig", None), "sqlstate", None) or getattr(getattr(e, "orig", None), "pgcode", None)
    return code in ("40P01", "40001")


def _push_one(session: Session, p: Principal, device_id: str, a: Action) -> ActionResult:
    session.expire_all()  # objects from the previous action may be stale
    found = _stored(session, a.id)
    if found is not None:
        return found
    for attempt in range(_RETRIES):
        try:
            rec = _record(p, device_id, a, "applied", None, None)
            session.add(rec)
            session.flush()  # a twin of this id in flight elsewhere waits here, then fails on the primary key
            msg = actions.apply(session, p, a)
            rec.message = msg[:300]
            session.add(rec)
            session.commit()
            return ActionResult(id=a.id, status="applied", message=msg)
        except IntegrityError:
            session.rollback()
            found = _stored(session, a.id)
            if found is not None:
                return found
            raise
        except actions.ActionRejected as e:
            session.rollback()
            return _reject(session, p, device_id, a, e.code, e.message)
        except DomainError as e:
            session.rollback()
            return _reject(session, p, device_id, a, e.code, e.message)
        except DBAPIError as e:
            session.rollback()
            if _retryable(e) and attempt < _RETRIES - 1:
                continue
            raise
    raise AssertionError("unreachable")


def _reject(session: Session, p: Principal, device_id: str, a: Action, code: str, message: str) -> ActionResult:
    try:
        session.add(_record(p, device_id, a, "rejected", code, message))
        session.commit()
    except IntegrityError:
        session.rollback()
        found = _stored(session, a.id)
        if found is not None:
            return found
        raise
    return ActionResult(id=a.id, status="rejected", code=code, message=message)
