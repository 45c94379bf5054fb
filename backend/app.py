"""The FastAPI application: routes under /api/v1, health, metrics, the store app bundle at /app/."""
from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy import text

from backend import scheduler
from backend.api import errors
from backend.api.limits import BodyLimit
from backend.api.routes import auth, masterdata, orders, tracking
from backend.config import Settings, get_settings
from backend.db import get_engine
from backend.logging import RequestContext, configure_logging
from backend.metrics import RequestMetrics, metrics_endpoint

API_PREFIX = "/api/v1"
BULK_PATHS = (f"{API_PREFIX}/inventory/levels", f"{API_PREFIX}/products", f"{API_PREFIX}/locations",
              f"{API_PREFIX}/users", f"{API_PREFIX}/sync/push")


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0].replace(' ', '_') if route.tags else 'api'}-{route.name}"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Everything built so far (modules, routes, schemas) lives as long as the process: keep it out of the
        # collector's full passes, which otherwise pause a request for 100+ ms every few hundred requests.
        gc.freeze()
        async with scheduler.running(settings) as jobs:
            app.state.scheduler = jobs
            yield

    app = FastAPI(title="Storeline", version="0.1.0", generate_unique_id_function=_operation_id,
                  description="Order management for retailers who fulfil online orders from stores.",
                  lifespan=lifespan)
    errors.install(app)
    api = APIRouter(prefix=API_PREFIX)
    for module in (auth, masterdata, orders):
        api.include_router(module.router)
    _include_optional(api)
    app.include_router(api)
    app.include_router(tracking.router)  # the customer's tracking page, /track/{token}

    @app.get("/health", tags=["ops"], summary="Liveness: the process answers")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"], summary="Readiness: the database answers")
    def ready() -> JSONResponse:
        try:
            with get_engine().connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as e:  # noqa: BLE001 - any failure means not ready
            return JSONResponse({"status": "unavailable", "database": str(e)[:200]}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/app/" if settings.app_dir.joinpath("index.html").exists() else "/docs")

    _mount_app_bundle(app, settings)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, max_json_bytes=settings.max_json_body_bytes,
                       bulk_paths=BULK_PATHS)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["X-Request-ID"])
    app.add_middleware(RequestMetrics)
    app.add_middleware(RequestContext)  # outermost of ours: every log line below it carries the request id
    return app


def _include_optional(api: APIRouter) -> None:
    """Routers of the other parts (inventory, routing, fulfilment, sync, HQ...), included when present."""
    import importlib

    for name in ("inventory", "routing", "fulfilment", "sync", "hq", "exceptions", "nodes", "promise", "webhooks"):
        try:
            module = importlib.import_module(f"backend.api.routes.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"backend.api.routes.{name}":
                raise
            continue
        api.include_router(module.router)


def _mount_app_bundle(app: FastAPI, settings: Settings) -> None:
    from backend.api.bundle import BundleFiles

    if settings.app_dir.joinpath("index.html").exists():
        app.mount("/app", BundleFiles(directory=settings.app_dir, html=True), name="store-app")
