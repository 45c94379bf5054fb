"""The tablet's whole conversation with the server: pull changes, push actions, and a nudge when to pull."""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from backend.api.deps import CurrentPrincipal, SessionDep, principal_from_token
from backend.config import get_settings
from backend.db import session_scope
from backend.errors import Unauthorized
from backend.services import storeversion, sync
from backend.services.tasks import Cursor
from shared.errors import Problem
from shared.sync import PullResponse, PushRequest, PushResponse

router = APIRouter(tags=["sync"])
ERRORS = {401: {"model": Problem}, 403: {"model": Problem}}


@router.get("/sync/pull", response_model=PullResponse, responses=ERRORS,
            summary="Changes for the caller's store since the cursor (no cursor: a full snapshot)")
def pull(session: SessionDep, p: CurrentPrincipal, cursor: str | None = None,
         limit: Annotated[int, Query(ge=1, le=sync.MAX_LIMIT)] = sync.DEFAULT_LIMIT) -> JSONResponse:
    return JSONResponse(sync.pull(session, p, cursor, limit))  # already the PullResponse shape


@router.post("/sync/push", response_model=PushResponse, responses={**ERRORS, 503: {"model": Problem}},
             summary="Apply the tablet's actions in order, each exactly once")
def push(body: PushRequest, session: SessionDep, p: CurrentPrincipal) -> PushResponse:
    return sync.push(session, p, body)


# ------------------------------------------------------------------------------------------ server-sent events
class _Versions:
    """Store versions read at most every `ttl` seconds per process, however many tablets listen."""

    def __init__(self, ttl: float = 0.4):
        self.ttl = ttl
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def _read(self, store: str) -> int:
        with session_scope() as s:
            return storeversion.current(s, store)

    async def get(self, store: str) -> int:
        key = (get_settings().db_url(), store)
        at, v = self._seen.get(key, (0.0, -1))
        if time.monotonic() - at > self.ttl:
            v = await run_in_threadpool(self._read, store)
            self._seen[key] = (time.monotonic(), v)
        return v


_versions = _Versions()


def _principal(request: Request, token: str | None):  # noqa: ANN202
    header = request.headers.get("authorization", "")
    raw = header[7:].strip() if header.lower().startswith("bearer ") else token
    if not raw:
        raise Unauthorized("not_authenticated", "send a Bearer token, or ?token= (EventSource cannot set headers)")
    with session_scope() as s:
        return principal_from_token(s, raw)


@router.get("/sync/events", responses={200: {"content": {"text/event-stream": {}}}, **ERRORS},
            summary="Server-sent events: a message with the store's cursor whenever it moves (then pull)")
async def events(request: Request, token: str | None = None,
                 timeout: Annotated[float, Query(ge=0.5, le=3600)] = 300,
                 interval: Annotated[float, Query(ge=0.1, le=10)] = 0.5) -> StreamingResponse:
    p = await run_in_threadpool(_principal, request, token)
    store = sync.store_of(p)

    async def stream() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        last = None
        beat = started = time.monotonic()
        while True:
            v = await _versions.get(store)
            if v != last:
                last = v
                beat = time.monotonic()
                yield f"data: {json.dumps({'cursor': Cursor(store=store, version=v).encode(), 'version': v})}\n\n"
            elif time.monotonic() - beat > 15:
                beat = time.monotonic()
                yield ": keep-alive\n\n"
            if time.monotonic() - started >= timeout or await request.is_disconnected():
                return
            await asyncio.sleep(interval)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
