"""Engine, sessions and transactions for SQLite (embedded default) and PostgreSQL (production)."""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from backend.config import get_settings


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on both databases (SQLite keeps no zone, so it is restored on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use backend.clock.now()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):  # noqa: ANN001
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _rec):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # noqa: ANN001
            # One writer at a time, taken up front: a deferred transaction that later writes fails at once
            # with SQLITE_BUSY instead of waiting, so every transaction starts IMMEDIATE.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_recycle=1800)


@lru_cache
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine() -> Engine:
    return _engine_for(get_settings().db_url())


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session whose work is rolled back unless the caller committed it."""
    session = Session(engine or get_engine(), expire_on_commit=False)
    try:
        yield session
    finally:
        try:
            session.rollback()
        except DBAPIError:  # the connection died (database restart) after the work: nothing left to undo
            session.invalidate()
        session.close()


async def get_session() -> AsyncIterator[Session]:
    """FastAPI dependency: one session per request; services commit, anything else is rolled back.

    Async, so that it costs a request no trips to the thread pool: opening a session does no I/O, and ending one
    only does when a transaction is still open (a read, or an error), which then runs in the thread pool."""
    scope = session_scope()
    session = scope.__enter__()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(scope.__exit__, None, None, None)
        else:
            scope.__exit__(None, None, None)
