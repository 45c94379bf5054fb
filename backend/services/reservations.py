"""Atomic stock reservations: one conditional UPDATE each, so no unit is promised twice, across processes.

PostgreSQL re-checks the WHERE clause on the locked row under READ COMMITTED, so two orders racing for the
last unit cannot both succeed; SQLite allows one writer at a time (transactions start IMMEDIATE).
"""
from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

from backend.clock import now
from backend.models import StockMovement

# Available to promise, for any channel, before channel exposure rules. Blocked rows (a "not found" rejection
# waiting for a count or feed) promise nothing.
ATP_SQL = (
    "CASE WHEN i.blocked THEN 0 ELSE i.on_hand - i.reserved - COALESCE(i.safety_stock, l.safety_stock)"
    " - COALESCE(i.holdback, l.holdback) END"
)

_RESERVE_SQL = """
    UPDATE inventory SET reserved = reserved + :q, updated_at = :now
    WHERE location = :l AND sku = :s AND NOT blocked
      AND on_hand - reserved
          - COALESCE(safety_stock, (SELECT safety_stock FROM location WHERE code = :l))
          - COALESCE(holdback, (SELECT holdback FROM location WHERE code = :l)) >= :q
"""
_RESERVE = text(_RESERVE_SQL)
# PostgreSQL: the same conditional UPDATE and its stock movement in one statement (one round trip per line);
# the movement is written only when the update took the units.
_RESERVE_AND_LOG = text(
    f"WITH taken AS ({_RESERVE_SQL} RETURNING location, sku)"
    " INSERT INTO stockmovement (at, location, sku, on_hand_delta, reserved_delta, cause, ref, actor)"
    " SELECT :now, location, sku, 0, :q, 'reserve', CAST(:ref AS VARCHAR), CAST(:actor AS VARCHAR) FROM taken"
)
_UNRESERVE = text(
    "UPDATE inventory SET reserved = CASE WHEN reserved >= :q THEN reserved - :q ELSE 0 END, updated_at = :now"
    " WHERE location = :l AND sku = :s"
)
_CONSUME = text(
    "UPDATE inventory SET on_hand = CASE WHEN on_hand >= :q THEN on_hand - :q ELSE 0 END,"
    " reserved = CASE WHEN reserved >= :q THEN reserved - :q ELSE 0 END, updated_at = :now"
    " WHERE location = :l AND sku = :s"
)


def reserve(session: Session, location: str, sku: str, qty: int, ref: str | None = None,
            actor: str | None = None) -> bool:
    """Reserve `qty` units if that many are available to promise; False (and nothing changed) otherwise."""
    if qty <= 0:
        return True
    if session.get_bind().dialect.name == "postgresql":
        res = session.execute(_RESERVE_AND_LOG, {"q": qty, "l": location, "s": sku, "now": now(), "ref": ref,
                                                 "actor": actor})
        return res.rowcount == 1
    res = session.execute(_RESERVE, {"q": qty, "l": location, "s": sku, "now": now()})
    if res.rowcount != 1:
        return False
    session.add(StockMovement(location=location, sku=sku, reserved_delta=qty, cause="reserve", ref=ref, actor=actor))
    return True


def unreserve(session: Session, location: str, sku: str, qty: int, cause: str, ref: str | None = None,
              actor: str | None = None) -> None:
    if qty <= 0:
        return
    session.execute(_UNRESERVE, {"q": qty, "l": location, "s": sku, "now": now()})
    session.add(StockMovement(location=location, sku=sku, reserved_delta=-qty, cause=cause, ref=ref, actor=actor))


def consume(session: Session, location: str, sku: str, qty: int, ref: str | None = None,
            actor: str | None = None) -> None:
    """Reserved units leave the building (shipped or collected)."""
    if qty <= 0:
        return
    session.execute(_CONSUME, {"q": qty, "l": location, "s": sku, "now": now()})
    session.add(StockMovement(location=location, sku=sku, on_hand_delta=-qty, reserved_delta=-qty, cause="fulfil",
                              ref=ref, actor=actor))
