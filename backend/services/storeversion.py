"""The per-store change counter behind the tablets' pull cursor.

Bumped with an UPDATE (a row lock held to commit) in every transaction that changes what a store sees, so
versions commit in order per store and a pull never skips a change that commits late.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session


def bump(session: Session, location: str) -> int:
    row = session.execute(text("UPDATE storeversion SET version = version + 1 WHERE location = :l RETURNING version"),
                          {"l": location}).first()
    if row is None:
        session.execute(text("INSERT INTO storeversion (location, version) VALUES (:l, 1)"), {"l": location})
        return 1
    return int(row[0])


def current(session: Session, location: str) -> int:
    row = session.execute(text("SELECT version FROM storeversion WHERE location = :l"), {"l": location}).first()
    return int(row[0]) if row else 0
