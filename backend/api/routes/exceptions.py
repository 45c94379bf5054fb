"""The exceptions queue: list, acknowledge, resolve. HQ sees all; a manager their store's."""
from __future__ import annotations

from typing import Annotated, get_args

from fastapi import APIRouter, Query
from fastapi.responses import Response

from backend.api.csv_export import Format, FormatQuery, csv_response
from backend.api.deps import SessionDep, require
from backend.principal import Principal
from backend.services import exceptions
from shared.enums import Role
from shared.errors import Problem
from shared.hq import ExceptionCostList, ExceptionCostReport, ExceptionCosts, ExceptionKind, ExceptionList, ExceptionOut

router = APIRouter(tags=["exceptions"])
Reader = Annotated[Principal, require(Role.hq, Role.manager)]


@router.get("/exceptions", response_model=ExceptionList,
            responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with ?format=csv"}})
def list_exceptions(
    session: SessionDep, p: Reader,
    status: Annotated[str | None, Query(pattern="^(open|acknowledged|resolved|active|all)$",
                                        description="default: open and acknowledged")] = None,
    kind: Annotated[str | None, Query(max_length=30, description="e.g. " + ", ".join(get_args(ExceptionKind)))] = None,
    location: str | None = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    format: Format = FormatQuery,
) -> ExceptionList | Response:
    out = exceptions.list_exceptions(session, p, status, kind, location or None, offset, limit)
    if format == "csv":
        return csv_response(out.items, "exceptions.csv")
    return out


@router.post("/exceptions/{exc_id}/acknowledge", response_model=ExceptionOut,
             responses={404: {"model": Problem}, 409: {"model": Problem}})
def acknowledge(exc_id: str, session: SessionDep, p: Reader) -> ExceptionOut:
    """Someone is on it: it stays in the queue, marked acknowledged."""
    return exceptions.acknowledge(session, exc_id, p)


@router.post("/exceptions/{exc_id}/resolve", response_model=ExceptionOut, responses={404: {"model": Problem}})
def resolve(exc_id: str, session: SessionDep, p: Reader) -> ExceptionOut:
    """Handled: it leaves the queue (the scan reopens it only if its cause goes away and comes back)."""
    return exceptions.resolve(session, exc_id, p)


@router.get("/exceptions/costs", response_model=ExceptionCostList)
def get_costs(session: SessionDep, p: Reader) -> ExceptionCostList:
    """The handling cost of one exception, per kind (defaults until HQ sets its own)."""
    return exceptions.costs(session, p)


@router.put("/exceptions/costs", response_model=ExceptionCostList,
            responses={403: {"model": Problem}, 422: {"model": Problem}})
def put_costs(body: ExceptionCosts, session: SessionDep,
              p: Annotated[Principal, require(Role.hq)]) -> ExceptionCostList:
    """HQ sets the handling cost of some kinds; the others keep theirs."""
    return exceptions.set_costs(session, body, p)


@router.get("/exceptions/cost-report", response_model=ExceptionCostReport,
            responses={200: {"content": {"text/csv": {}},
                             "description": "JSON, or CSV (one row a week, a cost column per kind) with ?format=csv"}})
def cost_report(session: SessionDep, p: Reader, weeks: Annotated[int, Query(ge=1, le=104)] = 8,
                location: str | None = None, format: Format = FormatQuery) -> ExceptionCostReport | Response:
    """What exceptions cost each week, next to the orders they touched (a manager: their store's)."""
    out = exceptions.cost_report(session, p, weeks, location or None)
    if format == "csv":
        rows = [{**w.model_dump(exclude={"by_kind"}), **{f"{k.kind}_cost": k.cost for k in w.by_kind}}
                for w in out.weeks]
        return csv_response(rows, "exception-cost.csv")
    return out
