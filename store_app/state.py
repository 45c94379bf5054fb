"""AppState: the session, the local data and the sync status. Screens read it; taps go through it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from store_app.local.cache import Cache
from store_app.local.db import LocalDB
from store_app.local.outbox import Outbox, now_iso
from store_app.local.persist import Flusher
from store_app.local.pin import check_pin, hash_pin
from store_app.transport import Offline, Response, Transport

API = "/api/v1"


@dataclass
class Session:
    username: str
    role: str
    store: str | None
    name: str | None = None
    token: str | None = None
    token_expires: float = 0.0
    offline_login: bool = False
    pin: str | None = field(default=None, repr=False)  # in memory only: renews the token when online again


@dataclass
class SyncStatus:
    online: bool | None = None  # None: not tried yet
    last_sync: str | None = None
    error: str | None = None
    running: bool = False
    needs_login: bool = False


class LoginError(Exception):
    pass


class AppState:
    def __init__(self, db: LocalDB, transport: Transport, flusher: Flusher | None = None) -> None:
        self.db = db
        self.transport = transport
        self.flusher = flusher or Flusher()
        self.outbox = Outbox(db)
        self.cache = Cache(db, self.outbox)
        self.session: Session | None = None
        self.sync = SyncStatus(last_sync=db.get_meta("last_sync"))
        self.listeners: list[Callable[[str], None]] = []
        self.sync_kick: Callable[[], None] = lambda: None
        self.sync_force: Callable[[], None] = lambda: None
        device = db.get_meta("device_id")
        if device is None:
            device = "tab-" + uuid.uuid4().hex[:12]
            with db.transaction():
                db.set_meta("device_id", device)
        self.device_id = device

    # ------------------------------------------------------------ events
    def notify(self, what: str) -> None:
        for fn in list(self.listeners):
            fn(what)

    # ------------------------------------------------------------ login
    @property
    def last_user(self) -> str | None:
        return self.db.get_meta("last_user")

    def known_user(self, username: str) -> dict | None:
        row = self.db.one("SELECT * FROM users WHERE username = ?", (username,))
        return dict(row) if row else None

    async def login(self, username: str, pin: str) -> Session:
        """Online when the server answers; offline against the PIN hash kept from an earlier sign-in."""
        username = username.strip().lower()
        if not username or not pin:
            raise LoginError("Enter your user name and PIN.")
        try:
            resp = await self.transport.request("POST", f"{API}/auth/token", form={
                "username": username, "password": pin, "grant_type": "password"}, timeout=6)
        except Offline:
            resp = None
        if resp is not None and resp.status in (400, 401, 403):
            raise LoginError("Wrong user name or PIN.")
        if resp is not None and resp.ok and isinstance(resp.body, dict) and resp.body.get("access_token"):
            token = resp.body["access_token"]
            expires = time.time() + float(resp.body.get("expires_in") or 3600)
            try:
                me = await self.transport.request("GET", f"{API}/me", token=token, timeout=6)
            except Offline:
                me = Response(0, None)
            info = me.body if me.ok and isinstance(me.body, dict) else {}
            known = self.known_user(username) or {}
            role = info.get("role") or known.get("role") or "associate"
            store = info.get("store") if "store" in info else known.get("store")
            session = Session(username, role, store, info.get("name") or known.get("name"), token, expires, False, pin)
            pin_hash, salt, iterations = hash_pin(pin)
            with self.db.transaction() as c:
                c.execute(
                    "INSERT INTO users(username, name, role, store, pin_hash, pin_salt, pin_iterations, token, "
                    "token_expires, last_login) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(username) DO UPDATE SET "
                    "name=excluded.name, role=excluded.role, store=excluded.store, pin_hash=excluded.pin_hash, "
                    "pin_salt=excluded.pin_salt, pin_iterations=excluded.pin_iterations, token=excluded.token, "
                    "token_expires=excluded.token_expires, last_login=excluded.last_login",
                    (username, session.name, role, store, pin_hash, salt, iterations, token, expires, now_iso()))
                self.db.set_meta("last_user", username)
            self.sync.online = True
        else:
            known = self.known_user(username)
            if known is None or not known.get("pin_hash"):
                if resp is None:
                    raise LoginError("No connection, and this user has not signed in on this tablet before.")
                raise LoginError(f"The server could not sign you in (HTTP {resp.status}). Try again.")
            if not check_pin(pin, known["pin_hash"], known["pin_salt"], known["pin_iterations"]):
                raise LoginError("Wrong user name or PIN.")
            token = known.get("token") if (known.get("token_expires") or 0) > time.time() + 30 else None
            session = Session(username, known["role"], known.get("store"), known.get("name"), token,
                              known.get("token_expires") or 0.0, True, pin)
            with self.db.transaction():
                self.db.set_meta("last_user", username)
            if resp is None:
                self.sync.online = False
        if session.store and self.db.get_meta("store") not in (None, session.store):
            self.cache.reset_store()
        if session.store:
            with self.db.transaction():
                self.db.set_meta("store", session.store)
        self.session = session
        self.sync.needs_login = False
        self.notify("session")
        self.sync_kick()
        return session

    def logout(self) -> None:
        self.session = None
        self.notify("session")

    async def token_for(self, username: str, renew: bool = False) -> str | None:
        """A bearer token to push ``username``'s actions with (renewed with the in-memory PIN when possible)."""
        s = self.session
        if s and s.username == username:
            if s.token and s.token_expires > time.time() + 30 and not renew:
                return s.token
            if s.pin:
                resp = await self.transport.request("POST", f"{API}/auth/token", form={
                    "username": username, "password": s.pin, "grant_type": "password"}, timeout=6)
                if resp.ok and isinstance(resp.body, dict) and resp.body.get("access_token"):
                    s.token = resp.body["access_token"]
                    s.token_expires = time.time() + float(resp.body.get("expires_in") or 3600)
                    with self.db.transaction() as c:
                        c.execute("UPDATE users SET token = ?, token_expires = ? WHERE username = ?",
                                  (s.token, s.token_expires, username))
                    return s.token
                if resp.status in (400, 401, 403):
                    self.sync.needs_login = True
                return None
            self.sync.needs_login = True
            return None
        row = self.known_user(username)
        if row and row.get("token") and (row.get("token_expires") or 0) > time.time() + 30 and not renew:
            return row["token"]
        return None

    # ------------------------------------------------------------ taps
    def act(self, type: str, **fields: Any) -> dict:
        """Record one tap: local effect + outbox row in one transaction; the sync loop is woken up."""
        assert self.session is not None, "signed-in user required"
        action = self.outbox.record(type, self.session.username, **fields)
        self.notify("local")
        self.sync_kick()
        return action

    # ------------------------------------------------------------ status
    @property
    def waiting(self) -> int:
        return self.outbox.waiting()

    @property
    def store(self) -> str | None:
        return (self.session.store if self.session else None) or self.db.get_meta("store")

    def set_synced(self) -> None:
        self.sync.last_sync = now_iso()
        with self.db.transaction():
            self.db.set_meta("last_sync", self.sync.last_sync)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
