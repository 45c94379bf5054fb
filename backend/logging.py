"""Structured logs (structlog): JSON lines in production, readable lines in development, a request id in each.

`configure_logging` routes the standard library's loggers (uvicorn, SQLAlchemy, ours) through the same
formatter, so a `logging.getLogger(...).exception(...)` inside a request also carries that request's id.
`RequestContext` takes the caller's X-Request-ID (or makes one), binds it for the request's logs and returns it
as a response header.
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from typing import IO, Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_MARK = "_storeline_handler"
_timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
_shared: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    _timestamper,
]


def configure_logging(json_logs: bool = True, level: str | int = "INFO", stream: IO[str] | None = None) -> None:
    """Idempotent: replaces only the handler it installed before, so test runners keep theirs."""
    structlog.configure(
        processors=[*_shared, structlog.processors.StackInfoRenderer(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any = (structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer(
        colors=False, exception_formatter=structlog.dev.plain_traceback))
    final = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json_logs:
        final.append(structlog.processors.format_exc_info)
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=_shared, processors=[*final, renderer])
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    setattr(handler, _MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    for noisy in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    for k, v in headers:
        if k == b"x-request-id":
            value = v.decode("latin-1").strip()
            if _VALID_ID.match(value):
                return value
            break
    return uuid.uuid4().hex


class RequestContext:
    """Pure ASGI middleware: request id in, request id out, and a log line for every server error."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = get_logger("storeline.request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_from(scope["headers"])
        scope.setdefault("state", {})["request_id"] = rid
        tokens = structlog.contextvars.bind_contextvars(request_id=rid)
        start = time.perf_counter()
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            self.log.exception("unhandled error", method=scope["method"], path=scope["path"])
            if not started:  # answer in the contract's error shape, then let the server log the traceback too
                await send_wrapper({"type": "http.response.start", "status": 500, "headers": [
                    (b"content-type", b"application/json")]})
                await send_wrapper({"type": "http.response.body", "body": json.dumps({
                    "code": "internal_error", "message": "an internal error occurred; it has been logged",
                    "details": {"request_id": rid}}).encode()})
            raise
        else:
            if status >= 500:  # 503: the database is away, already logged as such; the caller retries
                (self.log.warning if status == 503 else self.log.error)(
                    "server error", method=scope["method"], path=scope["path"], status=status,
                    ms=round((time.perf_counter() - start) * 1000, 1))
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
