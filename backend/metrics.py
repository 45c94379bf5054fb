"""Prometheus metrics: the shared instruments others import, the request middleware and the /metrics page.

With several uvicorn workers `backend.server` sets PROMETHEUS_MULTIPROC_DIR before any worker starts, so each
worker writes its samples to files there and /metrics (answered by any one worker) adds them all up.
Import the instruments and use them; never create new ones inside a request:

    from backend.metrics import ROUTING_DECISIONS
    ROUTING_DECISIONS.labels(outcome="routed").inc()
"""
from __future__ import annotations

import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_HTTP = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

HTTP_LATENCY = Histogram("storeline_http_request_seconds", "HTTP request latency by route template and status",
                         ["method", "route", "status"], buckets=_HTTP)
ROUTING_DECISIONS = Counter("storeline_routing_decisions", "Real-time routing decisions by outcome "
                            "(routed, split, backordered, ...)", ["outcome"])
ROUTING_LATENCY = Histogram("storeline_routing_seconds", "Time to route one order in process", buckets=_FAST)
BATCH_SECONDS = Histogram("storeline_batch_seconds", "Duration of one batch optimisation", buckets=_SLOW)
SYNC_PUSH_ACTIONS = Counter("storeline_sync_push_actions", "Tablet actions pushed, by result status", ["status"])
SYNC_PULL_SECONDS = Histogram("storeline_sync_pull_seconds", "Time to answer one tablet pull", buckets=_FAST)
RESERVATIONS = Counter("storeline_reservations", "Stock reservation attempts by result (ok, short, ...)", ["result"])
REJECTIONS = Counter("storeline_rejections", "Lines given back by a location, by reason", ["reason"])
JOB_RUNS = Counter("storeline_job_runs", "Scheduled job runs by job and result", ["job", "result"])
JOB_SECONDS = Histogram("storeline_job_seconds", "Duration of scheduled jobs", ["job"], buckets=_SLOW)


def render() -> tuple[bytes, str]:
    """The exposition text: this process's registry, or every worker's files in multi-process mode."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def metrics_endpoint(_: Request) -> Response:
    body, ctype = render()
    return Response(body, media_type=ctype)


class RequestMetrics:
    """Pure ASGI middleware timing every HTTP request by route template (never the raw path: ids would explode
    the label set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            HTTP_LATENCY.labels(scope["method"], route_template(scope), str(status)).observe(
                time.perf_counter() - start)


def route_template(scope: Scope) -> str:
    """The matched route's full path template, e.g. `/api/v1/orders/{order_id}`.

    FastAPI leaves the matched APIRoute in scope["route"] with its path relative to the included router, so the
    router's (static) prefix is taken from the request path's leading segments. Plain Starlette routes
    and mounts (/metrics, /docs, /app) leave only their endpoint, looked up in the app's top-level routes.
    """
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not template:
        app = scope.get("app")
        endpoint = scope.get("endpoint")
        for r in getattr(app, "routes", ()):
            if endpoint is not None and endpoint in (getattr(r, "endpoint", None), getattr(r, "app", None)):
                return r.path
        return "unmatched"
    if ":path}" in template:
        return template
    parts = scope["path"].split("/")
    extra = len(parts) - 1 - template.count("/")
    return "/".join(parts[: 1 + extra]) + template if extra > 0 else template
