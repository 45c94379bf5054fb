"""Every node fulfils through Storeline: the node API (work, shipments, rejections) for warehouses, 3PLs and
suppliers, the API keys they use, manual overrides of routing, and the scarce-stock allocation policy."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import SessionDep, require
from backend.principal import Principal
from backend.services import allocation_policy, apikeys, nodes, overrides
from backend.services.orders import order_out
from shared.enums import Role
from shared.errors import Problem
from shared.nodes import (
    AllocationPolicyIn,
    AllocationPolicyOut,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    NodeRejectionsIn,
    NodeRejectionsOut,
    OverrideIn,
    OverrideStats,
    ShipmentIn,
    ShipmentOut,
    WorkPage,
)
from shared.orders import OrderOut

router = APIRouter(tags=["nodes"])
NodeCaller = Annotated[Principal, require(Role.node, Role.hq, Role.integration)]
HQ = Annotated[Principal, require(Role.hq)]
ERRORS = {401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem},
          422: {"model": Problem}}


# ------------------------------------------------------------------------------------------------- API keys
@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201, tags=["api keys"], responses=ERRORS,
             summary="Create an API key (HQ); the key is shown in this answer only")
def create_api_key(body: ApiKeyCreate, session: SessionDep, p: HQ) -> ApiKeyCreated:
    return apikeys.create_key(session, body, p)


@router.get("/api-keys", response_model=ApiKeyList, tags=["api keys"], summary="API keys (never their secrets)")
def list_api_keys(session: SessionDep, _: HQ) -> ApiKeyList:
    return ApiKeyList(items=apikeys.list_keys(session))


@router.post("/api-keys/{key_id}/revoke", response_model=ApiKeyOut, tags=["api keys"], responses=ERRORS,
             summary="Revoke an API key: it answers 401 from now on")
def revoke_api_key(key_id: str, session: SessionDep, p: HQ) -> ApiKeyOut:
    return apikeys.revoke_key(session, key_id, p)


# -------------------------------------------------------------------------------------------- the node API
@router.get("/locations/{code}/work", response_model=WorkPage, responses=ERRORS,
            summary="Lines released to this node, and later changes to them, after the cursor")
def node_work(code: str, session: SessionDep, p: NodeCaller, cursor: str | None = None,
              limit: Annotated[int, Query(ge=1, le=nodes.MAX_PAGE)] = 200) -> WorkPage:
    """Follow `has_more`; keep the last `cursor` and send it back next time. An item whose `state` is
    `cancelled`, `replaced` or `rejected` must not be shipped (the order was cancelled or moved)."""
    return nodes.work(session, code, cursor, limit, p)


@router.post("/locations/{code}/shipments", response_model=ShipmentOut, responses=ERRORS,
             summary="Confirm shipped units (idempotent by shipment_id)")
def node_shipment(code: str, body: ShipmentIn, session: SessionDep, p: NodeCaller) -> ShipmentOut:
    return nodes.confirm_shipment(session, code, body, p)


@router.post("/locations/{code}/rejections", response_model=NodeRejectionsOut, responses=ERRORS,
             summary="Give lines back: stock corrected, lines re-routed elsewhere at once")
def node_rejections(code: str, body: NodeRejectionsIn, session: SessionDep, p: NodeCaller) -> NodeRejectionsOut:
    return nodes.reject_lines(session, code, body, p)


# ------------------------------------------------------------------------------------------------ overrides
@router.post("/orders/{order_id}/lines/{line_id}/override", response_model=OrderOut, tags=["overrides"],
             responses=ERRORS, summary="Move a line, hold it or release the hold, with a reason")
def override_line(order_id: str, line_id: str, body: OverrideIn, session: SessionDep,
                  p: Annotated[Principal, require(Role.hq, Role.manager)]) -> OrderOut:
    """HQ: any line. A store manager: lines at their store, or moving a line to their store. The order is then
    left alone by the batch optimisation."""
    return order_out(session, overrides.override_line(session, order_id, line_id, body, p))


@router.get("/hq/overrides", response_model=OverrideStats, tags=["overrides"],
            summary="Override rate per week and per reason")
def override_rate(session: SessionDep, _: HQ, weeks: Annotated[int, Query(ge=1, le=104)] = 8) -> OverrideStats:
    return overrides.override_stats(session, weeks)


# ---------------------------------------------------------------------------------------- allocation policy
@router.get("/hq/allocation-policy", response_model=AllocationPolicyOut, tags=["allocation policy"],
            summary="How scarce stock is shared among waiting orders (the policy in force)")
def get_allocation_policy(session: SessionDep, _: HQ) -> AllocationPolicyOut:
    return allocation_policy.policy_out(session)


@router.put("/hq/allocation-policy", response_model=AllocationPolicyOut, tags=["allocation policy"],
            responses=ERRORS, summary="A new version of the allocation policy, in force at once")
def put_allocation_policy(body: AllocationPolicyIn, session: SessionDep, p: HQ) -> AllocationPolicyOut:
    return allocation_policy.set_policy(session, body, p)
