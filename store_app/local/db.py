"""SQLite schema and connection for the tablet's local data.

In the browser the file lives on an IDBFS mount (see :mod:`store_app.local.persist`); in Flet's server web
mode (development) it is a plain file. Every write happens inside :meth:`LocalDB.transaction`, and the
``on_commit`` hook runs after each committed transaction (the browser flushes the file to IndexedDB there).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY, name TEXT, role TEXT NOT NULL, store TEXT,
    pin_hash TEXT, pin_salt TEXT, pin_iterations INTEGER,
    token TEXT, token_expires REAL, last_login TEXT
);
-- server: the task as the server last sent it (NULL once deleted); view: server + this tablet's
-- unconfirmed actions (what the screens show). removed: the server has deleted it or marked it done.
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, server TEXT, view TEXT NOT NULL, step TEXT NOT NULL,
    removed INTEGER NOT NULL DEFAULT 0, order_number TEXT, promise_by TEXT, assignee TEXT,
    delivery_method TEXT
);
CREATE INDEX IF NOT EXISTS tasks_step ON tasks (step, removed, promise_by);
CREATE TABLE IF NOT EXISTS products (sku TEXT PRIMARY KEY, name TEXT, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS barcodes (barcode TEXT PRIMARY KEY, sku TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reason_codes (
    code TEXT PRIMARY KEY, label TEXT NOT NULL, needs_note INTEGER NOT NULL DEFAULT 0, position INTEGER
);
CREATE TABLE IF NOT EXISTS store_users (username TEXT PRIMARY KEY, role TEXT, data TEXT);
-- state: pending (not yet accepted by the server), applied, rejected. confirmed: a full pull has run since
-- the server applied it, so the server copy of the task already carries its effect.
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, username TEXT NOT NULL,
    type TEXT NOT NULL, task_id TEXT, body TEXT NOT NULL, created_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', code TEXT, message TEXT, synced_at TEXT,
    confirmed INTEGER NOT NULL DEFAULT 0, dismissed INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, seq);
CREATE INDEX IF NOT EXISTS outbox_task ON outbox (task_id, seq);
"""


class LocalDB:
    """One SQLite connection (the app is single-threaded: one asyncio loop, no threads)."""

    def __init__(self, path: str, on_commit: Callable[[], None] | None = None) -> None:
        self.path = path
        self.on_commit = on_commit
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        # Durability in the browser comes from FS.syncfs after each commit, not from fsync.
        self.conn.execute("PRAGMA journal_mode=MEMORY")  # rollback works; no -journal file to sync
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._depth = 0
        self.conn.executescript(SCHEMA)
        if self.get_meta("schema_version") is None:
            with self.transaction():
                self.set_meta("schema_version", str(SCHEMA_VERSION))

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on error); nested calls join the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self._depth = 0
            self.conn.execute("ROLLBACK")
            raise
        self._depth = 0
        self.conn.execute("COMMIT")
        if self.on_commit:
            self.on_commit()

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        return self.conn.execute(sql, params).fetchone()

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row else default

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self.conn.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self.conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                              (key, value, value))

    def close(self) -> None:
        self.conn.close()


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


def loads(text: str | None) -> Any:
    return json.loads(text) if text else None
