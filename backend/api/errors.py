"""Every error leaves as JSON `{"code", "message", "details"}`; nothing escapes as a bare 500."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.errors import DomainError
from backend.services.bulk import describe_validation_error

log = logging.getLogger("storeline.errors")

_STATUS_CODES = {
    400: "bad_request", 401: "not_authenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
    429: "too_many_requests",
}


def problem(status: int, code: str, message: str, details: dict | None = None, headers: dict | None = None):
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse({"code": code, "message": message, "details": details or {}}, status_code=status,
                        headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, e: DomainError):
        return problem(e.status, e.code, e.message, e.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, e: RequestValidationError):
        errors = [{"loc": [str(x) for x in err.get("loc", ())], "msg": err.get("msg", "")} for err in e.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(x for x in first["loc"] if x not in ("body",)) or "request"
        msg = first["msg"].removeprefix("Value error, ")
        return problem(422, "invalid_request", f"{where}: {msg}", {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException):
        code = _STATUS_CODES.get(e.status_code, "error")
        msg = e.detail if isinstance(e.detail, str) else code.replace("_", " ")
        return problem(e.status_code, code, msg, headers=getattr(e, "headers", None))

    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, e: OperationalError):
        log.warning("database unavailable: %s", e)
        return problem(503, "database_unavailable", "the database is unavailable; retry shortly",
                       headers={"Retry-After": "2"})

    @app.exception_handler(DBAPIError)
    async def _db_error(_: Request, e: DBAPIError):
        if getattr(e, "connection_invalidated", False):
            return problem(503, "database_unavailable", "the database connection was lost; retry shortly",
                           headers={"Retry-After": "2"})
        log.exception("database error")
        return problem(500, "internal_error", "an internal error occurred; it has been logged")


__all__ = ["describe_validation_error", "install", "problem"]
