"""Background sync (started with ``page.run_task``): push the outbox, then pull until ``has_more`` is false.

One cycle at a time; woken at once after every tap (``kick``), every ``interval`` seconds otherwise, and with
exponential backoff (1, 2, 4 … ``max_backoff`` s) while the server cannot be reached. An action keeps its
id across retries, so the server applies it exactly once whatever happens to a response on the way back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from store_app.local.outbox import now_iso
from store_app.state import API, AppState
from store_app.transport import Offline, Response

log = logging.getLogger("store_app.sync")

PUSH_BATCH = 200


class ServerError(Exception):
    def __init__(self, what: str, resp: Response) -> None:
        code = resp.error_code() or f"HTTP {resp.status}"
        super().__init__(f"{what}: {code}")
        self.resp = resp


class SyncLoop:
    def __init__(self, state: AppState, interval: float = 10.0, max_backoff: float = 16.0) -> None:
        self.state = state
        self.interval = interval
        self.max_backoff = max_backoff
        self.failures = 0
        self._wake: asyncio.Event | None = None
        self._stopped = False
        self._lock: asyncio.Lock | None = None
        self.cycles = 0
        state.sync_kick = self.kick
        state.sync_force = lambda: self.kick(force=True)

    def kick(self, force: bool = False) -> None:
        """Wake the loop now. A tap does not cut a backoff short (while the server is unreachable a retry per
        tap would only cost the tablet time); the Sync now button does."""
        if self._wake is not None and (force or self.failures == 0):
            self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self.kick(force=True)

    async def run(self) -> None:
        self._wake = asyncio.Event()
        while not self._stopped:
            self._wake.clear()
            await self.sync_once()
            delay = self.interval if self.failures == 0 else min(self.max_backoff, 2 ** (self.failures - 1))
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def sync_once(self) -> bool:
        """One push + pull; updates ``state.sync``; returns True when it reached the server."""
        st = self.state
        if st.session is None or not st.session.store:
            return False  # HQ users have no store queue to sync: their screens read live data
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            st.sync.running = True
            try:
                await self._push()
                await self._pull()
            except Offline as e:
                self.failures += 1
                st.sync.online = False
                st.sync.error = None
                log.info("offline: %s", e)
                return False
            except Exception as e:  # noqa: BLE001 - a server answer we could not use: show it, retry later
                self.failures += 1
                st.sync.online = True
                st.sync.error = str(e)[:160]
                log.warning("sync failed: %s", e)
                return False
            else:
                self.failures = 0
                st.sync.online = True
                st.sync.error = None
                st.set_synced()
                return True
            finally:
                self.cycles += 1
                st.sync.running = False
                st.notify("sync")

    async def _push(self) -> None:
        st = self.state
        for username in st.outbox.pending_users():
            token = await st.token_for(username)
            if token is None:
                continue
            while True:
                batch = st.outbox.batch(username, PUSH_BATCH)
                if not batch:
                    break
                st.outbox.mark_attempt([a["id"] for a in batch])
                body = {"device_id": st.device_id, "actions": batch}
                resp = await st.transport.request("POST", f"{API}/sync/push", token=token, json_body=body,
                                                  timeout=20)
                if resp.status == 401:
                    token = await st.token_for(username, renew=True)
                    if token is None:
                        break
                    continue
                if not resp.ok or not isinstance(resp.body, dict):
                    raise ServerError("push", resp)
                results = resp.body.get("results") or []
                st.outbox.store_results(results)
                st.notify("pushed")
                if len(results) < len(batch):
                    break  # the server answered for part of the batch only; the rest goes next cycle

    async def _pull(self) -> None:
        st = self.state
        s = st.session
        if s is None:
            return
        token = await st.token_for(s.username)
        if token is None:
            return
        started = now_iso()
        key = f"cursor:{st.store or ''}"
        for _ in range(1000):  # bounded: a page per iteration
            cursor = st.db.get_meta(key)
            resp = await st.transport.request("GET", f"{API}/sync/pull", token=token,
                                              params={"cursor": cursor} if cursor else None, timeout=20)
            if resp.status == 401:
                token = await st.token_for(s.username, renew=True)
                if token is None:
                    return
                continue
            if not resp.ok or not isinstance(resp.body, dict):
                raise ServerError("pull", resp)
            body = resp.body
            st.cache.apply_changes(body.get("changes") or [], reset=bool(body.get("reset")),
                                   cursor=(key, str(body.get("cursor") or cursor or "")))
            if body.get("changes"):
                st.notify("pulled")
            if not body.get("has_more"):
                break
        st.outbox.confirm_applied(started)
