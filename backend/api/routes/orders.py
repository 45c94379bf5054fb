"""Orders: capture (idempotent), read, cancel."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response

from backend.api.deps import CurrentPrincipal, SessionDep, require
from backend.principal import Principal
from backend.services import orders
from shared.enums import Role
from shared.errors import Problem
from shared.orders import CancelIn, OrderCreate, OrderOut

router = APIRouter(tags=["orders"])


@router.post("/orders", response_model=OrderOut, status_code=201,
             responses={200: {"model": OrderOut, "description": "The same (channel, external_id) again"},
                        422: {"model": Problem}})
def create_order(body: OrderCreate, response: Response, session: SessionDep,
                 p: Annotated[Principal, require(Role.integration, Role.hq)]) -> OrderOut:
    order, created = orders.create_order(session, body, p)
    if not created:
        response.status_code = 200
    return orders.order_out(session, order)


@router.get("/orders/{order_id}", response_model=OrderOut, responses={404: {"model": Problem}})
def get_order(order_id: str, session: SessionDep, p: CurrentPrincipal) -> OrderOut:
    return orders.order_out(session, orders.get_order(session, order_id, p))


@router.post("/orders/{order_id}/cancel", response_model=OrderOut, responses={409: {"model": Problem}})
def cancel_order(order_id: str, session: SessionDep, p: Annotated[Principal, require(Role.integration, Role.hq)],
                 body: CancelIn | None = None) -> OrderOut:
    order = orders.cancel_order(session, order_id, (body or CancelIn()).reason, p)
    return orders.order_out(session, order)
