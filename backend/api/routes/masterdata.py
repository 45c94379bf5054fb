"""Master data, upserted in bulk by code, SKU or user name (JSON, or CSV for locations and products)."""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from backend.api.bodies import csv_or_json_rows
from backend.api.deps import CurrentPrincipal, SessionDep, require
from backend.principal import Principal
from backend.services import masterdata
from shared.enums import Role
from shared.masterdata import BulkResult, LocationOut, LocationsUpsert, Page, ProductOut, ProductsUpsert, UserOut

router = APIRouter(tags=["master data"])
Writer = Annotated[Principal, require(Role.hq, Role.integration)]

LOCATION_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": LocationsUpsert.model_json_schema()},
    "text/csv": {"schema": {"type": "string"}}}}}
PRODUCT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": ProductsUpsert.model_json_schema()},
    "text/csv": {"schema": {"type": "string"}}}}}


@router.put("/locations", response_model=BulkResult, openapi_extra=LOCATION_BODY)
async def put_locations(request: Request, session: SessionDep, p: Writer) -> BulkResult:
    rows = await csv_or_json_rows(request, "locations")
    return masterdata.upsert_locations(session, rows, p)


@router.get("/locations", response_model=Page[LocationOut])
def get_locations(session: SessionDep, _: CurrentPrincipal, type: str | None = None, active: bool | None = None,
                  offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                  limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> Page[LocationOut]:
    items, total = masterdata.list_locations(session, type, active, offset, limit)
    return Page[LocationOut](items=items, total=total, offset=offset, limit=limit)


@router.put("/products", response_model=BulkResult, openapi_extra=PRODUCT_BODY)
async def put_products(request: Request, session: SessionDep, p: Writer) -> BulkResult:
    rows = await csv_or_json_rows(request, "products")
    for r in rows:  # CSV carries barcodes as one column separated by spaces or '|'
        if isinstance(r.get("barcodes"), str):
            r["barcodes"] = [b for b in r["barcodes"].replace("|", " ").split() if b]
    return masterdata.upsert_products(session, rows, p)


@router.get("/products", response_model=Page[ProductOut])
def get_products(session: SessionDep, _: CurrentPrincipal, q: str | None = None,
                 offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                 limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> Page[ProductOut]:
    items, total = masterdata.list_products(session, q, offset, limit)
    return Page[ProductOut](items=items, total=total, offset=offset, limit=limit)


@router.put("/users", response_model=BulkResult)
async def put_users(request: Request, session: SessionDep,
                    p: Annotated[Principal, require(Role.hq, Role.manager)]) -> BulkResult:
    rows: list[Any] = await csv_or_json_rows(request, "users")
    return masterdata.upsert_users(session, rows, p)


@router.get("/users", response_model=list[UserOut])
def get_users(session: SessionDep, p: Annotated[Principal, require(Role.hq, Role.manager)],
              store: str | None = None) -> list[UserOut]:
    return masterdata.list_users(session, p, store)
