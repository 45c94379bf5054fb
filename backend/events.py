"""The append-only event log. Every state change writes one, in the same transaction as the change."""
from __future__ import annotations

from typing import Any

from sqlmodel import Session

from backend.clock import now
from backend.models import Event

SINK = "recorded_events"  # session.info key: when set to a list, record() appends each event it writes to it


def record(
    session: Session,
    kind: str,
    entity: str,
    entity_id: str,
    *,
    order_id: str | None = None,
    location: str | None = None,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    ev = Event(
        at=now(), kind=kind, entity=entity, entity_id=entity_id, order_id=order_id,
        location=location, actor=actor, data=data or {},
    )
    session.add(ev)
    sink = session.info.get(SINK)
    if sink is not None:  # a caller that asked to keep what it records (orders.create_order)
        sink.append(ev)
    from backend.services import webhooks  # the outbox: a delivery row per interested webhook, same transaction

    webhooks.enqueue(session, ev)
    return ev
