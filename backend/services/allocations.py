"""Allocation life cycle helpers shared by routing, fulfilment and cancellation."""
from __future__ import annotations

from sqlmodel import Session, col, select

from backend import events
from backend.clock import now
from backend.models import Allocation, Task
from backend.services import reservations, storeversion
from shared.enums import LIVE_ALLOCATION_STATES


def live_for_order(session: Session, order_id: str) -> list[Allocation]:
    return list(session.exec(select(Allocation).where(
        Allocation.order_id == order_id, col(Allocation.state).in_([s.value for s in LIVE_ALLOCATION_STATES]))))


def live_for_task(session: Session, task_id: str) -> list[Allocation]:
    return list(session.exec(select(Allocation).where(
        Allocation.task_id == task_id, col(Allocation.state).in_([s.value for s in LIVE_ALLOCATION_STATES]))))


def end(session: Session, a: Allocation, state: str, *, reason: str, actor: str | None,
        release_units: int | None = None) -> None:
    """End a live allocation (cancelled, rejected or replaced): its unpicked reservation is freed, its store task
    updated, and the tablets see the change. `release_units` overrides how many reserved units go back."""
    units = a.quantity - a.rejected if release_units is None else release_units
    reservations.unreserve(session, a.location, a.sku, units, cause=state, ref=a.order_id, actor=actor)
    a.state = state
    a.ended_at = now()
    a.end_reason = reason
    if a.node_seq is not None:  # a node's work feed shows that it ended (backend/services/nodes.py)
        a.node_seq = storeversion.bump(session, a.location)
    session.add(a)
    events.record(session, f"allocation.{state}", "allocation", a.id, order_id=a.order_id, location=a.location,
                  actor=actor, data={"sku": a.sku, "quantity": a.quantity, "reason": reason})
    if a.task_id:
        session.flush()
        touch_task(session, a.task_id, ended_outcome=state)


def touch_task(session: Session, task_id: str, ended_outcome: str | None = None) -> None:
    """A task's content changed: bump its store's version; tombstone it when nothing live is left in it."""
    task = session.get(Task, task_id)
    if task is None:
        return
    if ended_outcome and task.step != "done" and not live_for_task(session, task_id):
        task.step = "done"
        task.deleted = True
        task.outcome = {"cancelled": "cancelled", "rejected": "rejected"}.get(ended_outcome, "rerouted")
    task.version = storeversion.bump(session, task.location)
    task.updated_at = now()
    session.add(task)
