"""A store's workload and manifests, and the manager's actions on its queue."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import CurrentPrincipal, SessionDep
from backend.services import fulfilment
from shared.errors import Problem
from shared.fulfilment import AssignIn, Manifests, PriorityIn, Workload
from shared.sync import TaskData

router = APIRouter(tags=["fulfilment"])
ERRORS = {403: {"model": Problem}, 404: {"model": Problem}}


@router.get("/stores/{code}/workload", response_model=Workload, responses=ERRORS,
            summary="Open tasks by step, their age against the promise, and who is doing what")
def workload(code: str, session: SessionDep, p: CurrentPrincipal) -> Workload:
    return fulfilment.workload(session, code, p)


@router.get("/stores/{code}/manifests", response_model=Manifests, responses=ERRORS,
            summary="Packages handed to each carrier on a store-local day (default today)")
def manifests(code: str, session: SessionDep, p: CurrentPrincipal,
              date: Annotated[str | None, Query(description="YYYY-MM-DD, the store's local day")] = None
              ) -> Manifests:
    return fulfilment.manifests(session, code, date, p)


@router.post("/stores/{code}/tasks/{task_id}/assign", response_model=TaskData,
             responses={**ERRORS, 409: {"model": Problem}}, summary="Give a task to one of the store's staff")
def assign(code: str, task_id: str, body: AssignIn, session: SessionDep, p: CurrentPrincipal) -> TaskData:
    return fulfilment.assign_task(session, code, task_id, body.assignee, p)


@router.post("/stores/{code}/tasks/{task_id}/priority", response_model=TaskData,
             responses={**ERRORS, 409: {"model": Problem}}, summary="Move a task up (or down) the store's queue")
def priority(code: str, task_id: str, body: PriorityIn, session: SessionDep, p: CurrentPrincipal) -> TaskData:
    return fulfilment.prioritise_task(session, code, task_id, body.priority, p)
