"""Inventory: stock feeds, positions, availability, counts and channel exposure rules."""
from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from backend.api.bodies import parse_csv
from backend.api.deps import CurrentPrincipal, SessionDep, require
from backend.errors import DomainError
from backend.principal import Principal
from backend.services import channels, counts, feeds, inventory
from shared.enums import CountStatus, Role
from shared.errors import Problem
from shared.inventory import (
    Availability,
    ChannelList,
    ChannelsUpsert,
    CountIn,
    CountOut,
    FeedResult,
    LevelsFeed,
    PositionOut,
)
from shared.masterdata import BulkResult, Page

router = APIRouter(tags=["inventory"])
Feeder = Annotated[Principal, require(Role.hq, Role.integration)]

LEVELS_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": LevelsFeed.model_json_schema()},
    "text/csv": {"schema": {"type": "string", "description": "header location,sku,on_hand (or delta); optional"
                            " safety_stock, holdback; mode from ?mode= or from the header"}}}}}
CHANNELS_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": ChannelsUpsert.model_json_schema()}}}}


@router.put("/inventory/levels", response_model=FeedResult, openapi_extra=LEVELS_BODY,
            responses={400: {"model": Problem}, 422: {"model": Problem}},
            summary="Stock feed: snapshot or delta levels in bulk (JSON or CSV); bad rows are listed, never applied")
async def put_levels(request: Request, session: SessionDep, p: Feeder,
                     mode: Annotated[str | None, Query(pattern="^(snapshot|delta)$",
                                                       description="CSV only: snapshot or delta")] = None,
                     ) -> FeedResult:
    raw = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return await run_in_threadpool(_feed, session, raw, ctype, mode, p.username)


def _feed(session: Any, raw: bytes, ctype: str, mode: str | None, actor: str) -> FeedResult:
    if ctype in ("text/csv", "application/csv"):
        rows = parse_csv(raw)
        if mode is None:
            header = raw[:500].decode("utf-8-sig", "replace").splitlines()[0] if raw else ""
            cols = {c.strip() for c in header.split(",")}
            mode = "delta" if "delta" in cols and "on_hand" not in cols else "snapshot"
        return feeds.apply_levels(session, mode, rows, actor)
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DomainError("invalid_json", f"the body is not valid JSON: {e}", status=400) from e
    if not isinstance(body, dict) or not isinstance(body.get("rows"), list):
        raise DomainError("invalid_request", "the body must be an object with a list under 'rows'", status=422)
    body_mode = body.get("mode", mode or "snapshot")
    if body_mode not in ("snapshot", "delta"):
        raise DomainError("invalid_request", f"mode must be snapshot or delta, not {body_mode!r}", status=422)
    if len(body["rows"]) > 500_000:
        raise DomainError("too_many_rows", "send at most 500,000 rows per feed", status=422)
    return feeds.apply_levels(session, body_mode, body["rows"], actor)


@router.get("/inventory/availability", response_model=Availability,
            responses={404: {"model": Problem}, 422: {"model": Problem}},
            summary="ATP of one SKU for a channel at every location, nearest first when `near` is given")
def get_availability(session: SessionDep, _: CurrentPrincipal,
                     sku: Annotated[str, Query(min_length=1, max_length=40)],
                     channel: Annotated[str, Query(min_length=1, max_length=40)] = "web",
                     near: Annotated[str | None, Query(max_length=60, description="ZIP or lat,lon")] = None,
                     radius_km: Annotated[float | None, Query(gt=0, le=20_000)] = None) -> Response:
    data = inventory.availability_data(session, sku, channel, near, radius_km)
    # Already in the documented shape: skip re-validating a thousand rows on the web shop's hottest call.
    return Response(json.dumps(data, separators=(",", ":")), media_type="application/json")


@router.get("/inventory/positions", response_model=Page[PositionOut], responses={403: {"model": Problem}},
            summary="Stock rows: on hand, reserved, safety stock, holdback, blocked, ATP")
def get_positions(session: SessionDep, p: CurrentPrincipal, location: str | None = None, sku: str | None = None,
                  offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                  limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> Page[PositionOut]:
    return inventory.positions(session, p, location, sku, offset, limit)


@router.put("/channels", response_model=BulkResult, openapi_extra=CHANNELS_BODY, tags=["master data"],
            summary="Upsert channels by code with their stock exposure rules")
async def put_channels(request: Request, session: SessionDep,
                       p: Annotated[Principal, require(Role.hq)]) -> BulkResult:
    try:
        body = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DomainError("invalid_json", f"the body is not valid JSON: {e}", status=400) from e
    if not isinstance(body, dict) or not isinstance(body.get("channels"), list):
        raise DomainError("invalid_request", "the body must be an object with a list under 'channels'", status=422)
    return await run_in_threadpool(channels.upsert_channels, session, body["channels"], p)


@router.get("/channels", response_model=ChannelList, tags=["master data"])
def get_channels(session: SessionDep, _: CurrentPrincipal) -> ChannelList:
    return ChannelList(channels=channels.list_channels(session))


@router.post("/stores/{code}/counts", response_model=CountOut, status_code=201,
             responses={403: {"model": Problem}, 404: {"model": Problem}, 422: {"model": Problem}},
             summary="Record a stock count; small variances apply at once, large ones wait for a manager")
def post_count(code: str, body: CountIn, session: SessionDep, p: CurrentPrincipal) -> CountOut:
    return counts.record_count(session, code, body.sku, body.counted, p)


@router.get("/stores/{code}/counts", response_model=Page[CountOut], responses={403: {"model": Problem}})
def get_counts(code: str, session: SessionDep, p: CurrentPrincipal, status: CountStatus | None = None,
               offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
               limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> Page[CountOut]:
    return counts.list_counts(session, code, status.value if status else None, p, offset, limit)


@router.post("/stores/{code}/counts/{count_id}/approve", response_model=CountOut,
             responses={403: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem}})
def approve_count(code: str, count_id: str, session: SessionDep, p: CurrentPrincipal) -> CountOut:
    return counts.decide(session, code, count_id, True, p)


@router.post("/stores/{code}/counts/{count_id}/decline", response_model=CountOut,
             responses={403: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem}})
def decline_count(code: str, count_id: str, session: SessionDep, p: CurrentPrincipal) -> CountOut:
    return counts.decide(session, code, count_id, False, p)
