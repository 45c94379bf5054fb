"""Outbound events (webhooks) through an outbox.

* `enqueue` runs inside `backend.events.record`: for each active webhook that wants the event's kind, a
  `WebhookDelivery` row is written in the same transaction as the change, so an event is never announced for a
  change that rolled back, nor lost for one that committed. Whether any webhook is active is cached per process
  for a few seconds (CACHE_TTL_S), so recording an event costs nothing extra on a system without webhooks; the
  insert itself re-checks the webhook table, so a stale cache can never point a delivery at a deleted webhook.
* `deliver_due` (a scheduled job, every 2 s, once across processes) POSTs each due delivery as JSON, signed with
  `X-Storeline-Signature: sha256=<HMAC-SHA256(secret, body) hex>`, and retries failures with exponential backoff
  (BACKOFF_BASE_S * 2^(attempt-1), at most BACKOFF_MAX_S, MAX_ATTEMPTS in all, then `failed`).
* Order per order: a delivery goes out only when no earlier delivery of the same webhook and order is still
  undelivered (pending or failed), so a receiver never sees an order's later event before its earlier one.
* At least once: an attempt is logged (`WebhookAttempt`) and committed before the POST, so a worker that dies
  mid-send leaves a logged attempt and the delivery is sent again after LEASE_S. Receivers dedupe by event `id`.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta

import httpx
from sqlalchemy import func, insert, literal, update
from sqlmodel import Session, col, select

from backend.clock import now
from backend.db import UTCDateTime
from backend.errors import Conflict, NotFound
from backend.ids import new_id
from backend.models import Event, Webhook, WebhookAttempt, WebhookDelivery
from backend.principal import Principal
from backend.process_cache import ProcessCache
from shared.nodes import DeliveryAttempt, DeliveryOut, DeliveryPage, WebhookCreate, WebhookCreated, WebhookOut

CACHE_TTL_S = 3.0
BACKOFF_BASE_S = 5.0
BACKOFF_MAX_S = 3600.0
MAX_ATTEMPTS = 12
LEASE_S = 60.0
TIMEOUT_S = 5.0
BATCH = 100
RUN_BUDGET_S = 20.0  # one run starts no new attempt after this long (slow receivers must not hog the job)
UNDELIVERED = ("pending", "failed")
USER_AGENT = "Storeline-Webhooks/1"

_hooks: ProcessCache[dict[str, frozenset[str]]] = ProcessCache(CACHE_TTL_S)


# ------------------------------------------------------------------------------------------------- outbox
def _active(session: Session) -> dict[str, frozenset[str]]:
    """{webhook id: kinds} of the active webhooks, cached per database for CACHE_TTL_S."""
    def load() -> dict[str, frozenset[str]]:
        with session.no_autoflush:  # a read of the webhook table: no reason to flush the caller's work here
            rows = session.exec(select(Webhook.id, Webhook.kinds).where(Webhook.active == True)).all()  # noqa: E712
        return {r[0]: frozenset(r[1] or []) for r in rows}

    return _hooks.get(session, "active", load)


def invalidate_cache() -> None:
    _hooks.forget()


def enqueue(session: Session, event: Event) -> int:
    """Write a delivery row for each active webhook that wants `event` (same transaction). Returns how many."""
    hooks = _active(session)
    if not hooks:
        return 0
    wanted = sorted(h for h, kinds in hooks.items() if event.kind in kinds)
    if not wanted:
        return 0
    session.flush()  # the event's id
    at = now()
    rows = select(Webhook.id, literal(event.id), literal(event.kind), literal(event.order_id),
                  literal("pending"), literal(0), literal(at, UTCDateTime()), literal(at, UTCDateTime())
                  ).where(col(Webhook.id).in_(wanted), Webhook.active == True)  # noqa: E712
    res = session.execute(insert(WebhookDelivery).from_select(
        ["webhook_id", "event_id", "kind", "order_key", "status", "attempts", "next_at", "created_at"], rows))
    return int(res.rowcount or 0)


# ------------------------------------------------------------------------------------------------ delivery
def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(event: Event, delivery: WebhookDelivery) -> bytes:
    body = {"id": event.id, "kind": event.kind, "at": event.at.isoformat(), "entity": event.entity,
            "entity_id": event.entity_id, "order_id": event.order_id, "location": event.location,
            "actor": event.actor, "data": event.data, "delivery_id": delivery.id}
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()


def backoff_s(attempts: int) -> float:
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1))


def _head(session: Session, webhook_id: str, order_key: str) -> int | None:
    """The earliest undelivered delivery of this webhook for this order: only it may go out."""
    return session.exec(select(func.min(WebhookDelivery.id)).where(
        WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.order_key == order_key,
        col(WebhookDelivery.status).in_(UNDELIVERED))).one()


def deliver_due(session: Session, client: httpx.Client | None = None, limit: int = BATCH) -> int:
    """Send the due deliveries (scheduled job). Commits after each attempt. Returns how many succeeded."""
    t = now()
    due = session.exec(select(WebhookDelivery.id).join(Webhook, col(Webhook.id) == WebhookDelivery.webhook_id)
                       .where(WebhookDelivery.status == "pending", WebhookDelivery.next_at <= t,
                              Webhook.active == True)  # noqa: E712
                       .order_by(WebhookDelivery.id).limit(limit)).all()
    session.rollback()  # end the read transaction: each attempt below is its own
    if not due:
        return 0
    own = client is None
    client = client or httpx.Client(timeout=TIMEOUT_S, headers={"User-Agent": USER_AGENT})
    ok = 0
    blocked: set[tuple[str, str]] = set()
    started = time.monotonic()
    try:
        for delivery_id in due:
            if time.monotonic() - started > RUN_BUDGET_S:
                break
            ok += _attempt(session, client, delivery_id, blocked)
    finally:
        if own:
            client.close()
    return ok


def _attempt(session: Session, client: httpx.Client, delivery_id: int, blocked: set[tuple[str, str]]) -> bool:
    d = session.get(WebhookDelivery, delivery_id, populate_existing=True, with_for_update=True)
    t = now()
    if d is None or d.status != "pending" or d.next_at > t:
        session.rollback()
        return False
    if d.order_key is not None:
        k = (d.webhook_id, d.order_key)
        if k in blocked or _head(session, d.webhook_id, d.order_key) != d.id:
            blocked.add(k)
            session.rollback()
            return False
    hook = session.get(Webhook, d.webhook_id)
    event = session.get(Event, d.event_id)
    assert hook is not None and event is not None
    d.attempts += 1
    d.next_at = t + timedelta(seconds=LEASE_S)  # a worker that dies mid-send: sent again after the lease
    log = WebhookAttempt(delivery_id=d.id, attempt=d.attempts, at=t, error="no answer recorded (worker stopped)")
    session.add_all([d, log])
    session.commit()
    body = payload(event, d)
    headers = {"Content-Type": "application/json", "X-Storeline-Signature": sign(hook.secret, body),
               "X-Storeline-Event": event.kind, "X-Storeline-Event-Id": str(event.id),
               "X-Storeline-Delivery": str(d.id)}
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    try:
        r = client.post(hook.url, content=body, headers=headers)
        status = r.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}: {r.text[:200]}"
    except httpx.HTTPError as e:
        error = f"{type(e).__name__}: {str(e)[:200]}"
    ms = round((time.perf_counter() - started) * 1000, 1)
    t = now()
    log.status_code, log.ok, log.error, log.ms = status, error is None, error, ms
    d.last_status, d.last_error = status, error
    if error is None:
        d.status, d.delivered_at = "delivered", t
    elif d.attempts >= MAX_ATTEMPTS:
        d.status = "failed"
    else:
        d.next_at = t + timedelta(seconds=backoff_s(d.attempts))
    session.add_all([d, log])
    session.commit()
    if error is not None and d.order_key is not None:
        blocked.add((d.webhook_id, d.order_key))
    return error is None


# ---------------------------------------------------------------------------------------------- management
def _out(hook: Webhook, counts: dict[tuple[str, str], int] | None = None) -> WebhookOut:
    counts = counts or {}
    return WebhookOut(id=hook.id, url=hook.url, kinds=list(hook.kinds or []), active=hook.active,
                      description=hook.description, created_by=hook.created_by, created_at=hook.created_at,
                      pending=counts.get((hook.id, "pending"), 0), failed=counts.get((hook.id, "failed"), 0))


def create_webhook(session: Session, body: WebhookCreate, actor: Principal) -> WebhookCreated:
    secret = body.secret or "whsec_" + secrets.token_urlsafe(32)
    hook = Webhook(id=new_id("whk"), url=body.url, secret=secret, kinds=list(body.kinds), active=True,
                   description=body.description, created_by=actor.username)
    session.add(hook)
    session.commit()
    invalidate_cache()
    return WebhookCreated(**_out(hook).model_dump(), secret=secret)


def list_webhooks(session: Session, include_inactive: bool = False) -> list[WebhookOut]:
    q = select(Webhook).order_by(Webhook.created_at, Webhook.id)
    if not include_inactive:
        q = q.where(Webhook.active == True)  # noqa: E712
    hooks = session.exec(q).all()
    counts = {(r[0], r[1]): int(r[2]) for r in session.exec(
        select(WebhookDelivery.webhook_id, WebhookDelivery.status, func.count())
        .where(col(WebhookDelivery.status).in_(UNDELIVERED)).group_by(WebhookDelivery.webhook_id,
                                                                        WebhookDelivery.status)).all()}
    return [_out(h, counts) for h in hooks]


def _hook(session: Session, webhook_id: str) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        raise NotFound("unknown_webhook", f"webhook {webhook_id} does not exist", {"id": webhook_id})
    return hook


def delete_webhook(session: Session, webhook_id: str) -> WebhookOut:
    """Deactivate: nothing more is queued or sent; the delivery log stays readable."""
    hook = _hook(session, webhook_id)
    if hook.active:
        hook.active = False
        session.add(hook)
        session.execute(update(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id,
                                                      WebhookDelivery.status == "pending").values(status="cancelled"))
        session.commit()
        invalidate_cache()
    return _out(hook)


def _delivery_out(d: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryOut:
    return DeliveryOut(id=d.id or 0, webhook_id=d.webhook_id, event_id=d.event_id, kind=d.kind, order_id=d.order_key,
                       status=d.status, attempts=d.attempts, next_at=d.next_at if d.status == "pending" else None,
                       last_status=d.last_status, last_error=d.last_error, created_at=d.created_at,
                       delivered_at=d.delivered_at,
                       log=[DeliveryAttempt(attempt=a.attempt, at=a.at, status_code=a.status_code, ok=a.ok,
                                            error=a.error, ms=a.ms) for a in attempts])


def deliveries(session: Session, webhook_id: str, status: str | None, offset: int, limit: int) -> DeliveryPage:
    _hook(session, webhook_id)
    q = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if status:
        q = q.where(WebhookDelivery.status == status)
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    rows = session.exec(q.order_by(col(WebhookDelivery.id).desc()).offset(offset).limit(limit)).all()
    logs: dict[int, list[WebhookAttempt]] = {}
    if rows:
        for a in session.exec(select(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_([d.id for d in rows]))
                              .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt)):
            logs.setdefault(a.delivery_id, []).append(a)
    return DeliveryPage(items=[_delivery_out(d, logs.get(d.id or 0, [])) for d in rows], total=int(total),
                        offset=offset, limit=limit)


def replay(session: Session, delivery_id: int) -> DeliveryOut:
    """Send this delivery again (failed, delivered or pending): due now, behind no retry wait."""
    d = session.get(WebhookDelivery, delivery_id)
    if d is None:
        raise NotFound("unknown_delivery", f"delivery {delivery_id} does not exist", {"id": delivery_id})
    hook = _hook(session, d.webhook_id)
    if not hook.active:
        raise Conflict("webhook_inactive", f"webhook {hook.id} was deleted; create a new one", {"id": hook.id})
    d.status, d.next_at, d.delivered_at = "pending", now(), None
    session.add(d)
    session.commit()
    attempts = list(session.exec(select(WebhookAttempt).where(WebhookAttempt.delivery_id == d.id)
                                 .order_by(WebhookAttempt.attempt)))
    return _delivery_out(d, attempts)
