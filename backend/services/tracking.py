"""What a customer's tracking link shows, and revoking links.

A tracking token is an unguessable 192-bit string (`secrets.token_urlsafe(24)`) stored on the order. The page it
opens shows only that order, in words: no internal ids, no location codes, no address, no other order.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlmodel import Session, col, select

from backend import events
from backend.clock import now
from backend.config import get_settings
from backend.errors import NotFound
from backend.models import Location, Order, OrderLine, Package, Product, Task
from backend.principal import Principal
from backend.services.geocode import zip_point
from shared.promise import TrackingRevokeOut

TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


class TrackingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STORELINE_TRACKING_", extra="ignore")

    requests_per_minute: int = 30  # per client IP and process (see backend/api/routes/tracking.py)


@dataclass
class PackageView:
    carrier: str | None
    tracking: str | None
    shipped_at: datetime | None


@dataclass
class PickupView:
    store: str
    address: str | None
    hours: str | None
    ready: bool
    code: str | None  # only once the order is ready to collect


@dataclass
class TrackingView:
    order_number: str
    status: str  # a contract status word, or "ready" (a pickup waiting at the counter)
    headline: str
    detail: str
    delivery_method: str
    promise_by: datetime | None
    tz: ZoneInfo
    items: list[tuple[str, int]] = field(default_factory=list)
    packages: list[PackageView] = field(default_factory=list)
    pickup: PickupView | None = None
    updated_at: datetime | None = None


_WORDS = {
    "created": ("Order received", "We have your order and are finding the best place to send it from."),
    "routed": ("Order received", "We have your order and it is planned for preparation."),
    "backordered": ("Waiting for stock", "Some items are waiting for stock. We will send them as soon as they "
                                         "arrive."),
    "released": ("Being prepared", "Your order is being prepared."),
    "picked": ("Being packed", "Your items have been picked and are being packed."),
    "packed": ("Packed", "Your order is packed and waiting for the carrier."),
    "shipped": ("On its way", "Your order has been handed to the carrier."),
    "collected": ("Collected", "You have collected your order. Thank you!"),
    "cancelled": ("Cancelled", "This order was cancelled."),
}
_PICKUP_WORDS = {
    "released": ("Being prepared", "The store is getting your order ready. We will show your pickup code here "
                                   "when it is ready to collect."),
    "picked": ("Being prepared", "The store is getting your order ready."),
    "ready": ("Ready to collect", "Your order is waiting for you at the store. Show the pickup code at the "
                                  "counter."),
}


def tracking_url(token: str | None) -> str | None:
    return f"{get_settings().public_url.rstrip('/')}/track/{token}" if token else None


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "America/New_York")
    except (KeyError, ValueError):
        return ZoneInfo("America/New_York")


def view(session: Session, token: str) -> TrackingView | None:
    """The page's content for a token, or None (unknown, revoked or malformed)."""
    if not TOKEN_RE.fullmatch(token or ""):
        return None
    order = session.exec(select(Order).where(Order.tracking_token == token)).first()
    if order is None or not secrets.compare_digest(order.tracking_token or "", token):
        return None
    pickup_store = session.get(Location, order.pickup_location) if order.pickup_location else None
    if pickup_store is not None:
        tz = _zone(pickup_store.timezone)
    else:
        z = (order.ship_to or {}).get("zip")
        p = zip_point(z) if z else None
        tz = _zone(p[2] if p else None)
    status = order.status
    pickup = None
    if order.delivery_method == "pickup" and pickup_store is not None:
        task = session.exec(select(Task).where(Task.order_id == order.id, Task.location == pickup_store.code,
                                               Task.deleted == False)  # noqa: E712
                            .order_by(col(Task.created_at).desc())).first()
        ready = (task is not None and task.step == "handover" and bool(task.pickup_code)
                 and status not in ("collected", "cancelled"))
        if ready:
            status = "ready"
        pickup = PickupView(store=pickup_store.name, address=pickup_store.address, hours=pickup_store.hours,
                            ready=ready, code=task.pickup_code if ready and task else None)
    words = (_PICKUP_WORDS if order.delivery_method == "pickup" else {}).get(status) or _WORDS.get(
        status, ("In progress", "We are working on your order."))
    items = [(name or sku, qty) for sku, name, qty in session.exec(
        select(OrderLine.sku, Product.name, OrderLine.quantity).join(Product, col(Product.sku) == OrderLine.sku)
        .where(OrderLine.order_id == order.id, OrderLine.status != "cancelled").order_by(OrderLine.line_id))]
    packages = [PackageView(pk.carrier, pk.tracking, pk.shipped_at) for pk in session.exec(
        select(Package).where(Package.order_id == order.id, col(Package.shipped_at).is_not(None))
        .order_by(Package.shipped_at, Package.id))]
    return TrackingView(order_number=order.external_id, status=status, headline=words[0], detail=words[1],
                        delivery_method=order.delivery_method, promise_by=order.promise_by, tz=tz, items=items,
                        packages=packages, pickup=pickup, updated_at=order.updated_at)


def revoke(session: Session, order_id: str, reissue: bool, actor: Principal) -> TrackingRevokeOut:
    """The order's tracking link stops working at once; with `reissue`, the order gets a new one."""
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound("unknown_order", f"order {order_id} does not exist", {"order_id": order_id})
    order.tracking_token = secrets.token_urlsafe(24) if reissue else None
    order.updated_at = now()
    session.add(order)
    events.record(session, "order.tracking_revoked", "order", order.id, order_id=order.id, actor=actor.username,
                  data={"reissued": reissue})
    session.commit()
    return TrackingRevokeOut(order_id=order.id, tracking_url=tracking_url(order.tracking_token))
