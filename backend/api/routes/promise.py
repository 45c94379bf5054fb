"""Delivery options before checkout (with an optional soft hold), and how often promises are kept."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from backend.api.deps import SessionDep, require
from backend.principal import Principal
from backend.services import promise
from shared.enums import Role
from shared.errors import Problem
from shared.promise import PromiseAccuracy, PromiseRequest, PromiseResponse, QuoteOut

router = APIRouter(tags=["promise"])


@router.post("/promise", response_model=PromiseResponse, responses={422: {"model": Problem}},
             summary="Delivery options for a cart: which methods can be honoured, by when, and why not")
def delivery_options(body: PromiseRequest, session: SessionDep,
                     p: Annotated[Principal, require(Role.integration, Role.hq)]) -> PromiseResponse:
    """Same-day, next-day, standard and pickup at the nearest stores, each with its earliest honest promise or the
    reason it is not available. With `"hold": true` the planned units are kept until `expires_at`; an order sent
    with `quote_id` before then gets that plan."""
    return promise.quote(session, body, p)


@router.get("/promise/{quote_id}", response_model=QuoteOut, responses={404: {"model": Problem}})
def read_quote(quote_id: str, session: SessionDep,
               _: Annotated[Principal, require(Role.integration, Role.hq)]) -> QuoteOut:
    return promise.get_quote(session, quote_id)


@router.get("/hq/promises", response_model=PromiseAccuracy, responses={422: {"model": Problem}},
            summary="Shares of promises kept: handed over (to a carrier or the customer) by the promised time")
def promise_accuracy(session: SessionDep, _: Annotated[Principal, require(Role.hq)],
                     from_: Annotated[datetime | None, Query(alias="from")] = None,
                     to: datetime | None = None,
                     group: Literal["method", "store", "week"] = "method") -> PromiseAccuracy:
    """Orders whose promise falls in [from, to) (default: the last 7 days): kept, late, overdue (open, promise
    passed), pending and cancelled, in total and by delivery method, by store or by week of the promise."""
    return promise.promise_accuracy(session, from_, to, group)
