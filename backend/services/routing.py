"""Routing service: loads the network and stock, asks the routing domain, reserves the winner's units."""
from __future__ import annotations

from sqlmodel import Session

from backend.models import Order


def route_new_order(session: Session, order: Order, *, actor: str | None, quote_id: str | None = None) -> None:
    """Route a just-created order in its own transaction (filled in by the routing engine)."""
    return None
