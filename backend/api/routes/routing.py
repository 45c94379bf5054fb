"""Routing: run the batch optimisation now."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel

from backend.api.deps import SessionDep, require
from backend.principal import Principal
from backend.services import batch
from shared.enums import Role

router = APIRouter(tags=["routing"])


class BatchOut(BaseModel):
    orders: int
    changed: int
    cost_before: float
    cost_after: float | None
    seconds: float
    skipped: int | None = None


@router.post("/routing/batch", response_model=BatchOut,
             summary="Re-optimise every order not yet released to a location (also runs on a schedule)")
def run_batch(session: SessionDep, p: Annotated[Principal, require(Role.hq, Role.integration)]) -> BatchOut:
    return BatchOut(**batch.run_batch(session, actor=p.username))
