"""Outbound webhooks (subscriptions, delivery log, replay) and carrier documents (labels, packing slips)."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from backend.api.deps import CurrentPrincipal, SessionDep, require
from backend.principal import Principal
from backend.services import documents, webhooks
from shared.enums import Role
from shared.errors import Problem
from shared.nodes import (
    WEBHOOK_KINDS,
    DeliveryOut,
    DeliveryPage,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)

router = APIRouter()
Admin = Annotated[Principal, require(Role.hq, Role.integration)]
ERRORS = {401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem},
          422: {"model": Problem}}
PDF = {200: {"content": {"application/pdf": {}}, "description": "A PDF"}, **ERRORS}


@router.post("/webhooks", response_model=WebhookCreated, status_code=201, tags=["webhooks"], responses=ERRORS,
             summary="Subscribe a URL to events", description=(
                 f"Kinds: {', '.join(WEBHOOK_KINDS)}. Each delivery is a JSON POST with `X-Storeline-Signature: "
                 "sha256=<hex HMAC-SHA256 of the raw body with the secret>`, retried with exponential backoff. An "
                 "order's events arrive in order: a later one waits until the earlier one was accepted (a 2xx), "
                 "so a delivery that failed for good holds its order's later ones until it is replayed. "
                 "Deduplicate by the body's `id` (the event id): delivery is at least once."))
def create_webhook(body: WebhookCreate, session: SessionDep, p: Admin) -> WebhookCreated:
    return webhooks.create_webhook(session, body, p)


@router.get("/webhooks", response_model=WebhookList, tags=["webhooks"])
def list_webhooks(session: SessionDep, _: Admin, include_inactive: bool = False) -> WebhookList:
    return WebhookList(items=webhooks.list_webhooks(session, include_inactive))


@router.delete("/webhooks/{webhook_id}", response_model=WebhookOut, tags=["webhooks"], responses=ERRORS,
               summary="Stop a webhook (its delivery log stays readable)")
def delete_webhook(webhook_id: str, session: SessionDep, _: Admin) -> WebhookOut:
    return webhooks.delete_webhook(session, webhook_id)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=DeliveryPage, tags=["webhooks"], responses=ERRORS,
            summary="The delivery log: every event sent, each attempt with the receiver's answer")
def list_deliveries(webhook_id: str, session: SessionDep, _: Admin, status: str | None = None,
                    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> DeliveryPage:
    return webhooks.deliveries(session, webhook_id, status, offset, limit)


@router.post("/webhooks/deliveries/{delivery_id}/replay", response_model=DeliveryOut, tags=["webhooks"],
             responses=ERRORS, summary="Send a delivery again")
def replay_delivery(delivery_id: int, session: SessionDep, _: Admin) -> DeliveryOut:
    return webhooks.replay(session, delivery_id)


@router.get("/packages/{package_id}/label.pdf", response_class=Response, tags=["documents"], responses=PDF,
            summary="The package's shipping label (4 x 6 inch PDF, Code 128 tracking barcode)")
def package_label(package_id: str, session: SessionDep, p: CurrentPrincipal) -> Response:
    pdf, tracking = documents.label_pdf(session, package_id, p)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="label-{tracking or package_id}.pdf"'})


@router.get("/orders/{order_id}/packing-slip.pdf", response_class=Response, tags=["documents"], responses=PDF,
            summary="The order's packing slip (for the caller's store; HQ may name a location)")
def packing_slip(order_id: str, session: SessionDep, p: CurrentPrincipal, location: str | None = None) -> Response:
    pdf = documents.packing_slip_pdf(session, order_id, p, location)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="packing-slip-{order_id}.pdf"'})
