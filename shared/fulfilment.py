"""Store fulfilment as managers and HQ read it: workload, manifests, and the manager's actions."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from shared.enums import TaskStep


class WorkloadTask(BaseModel):
    id: str
    order_id: str
    order_number: str | None = None
    step: TaskStep
    assignee: str | None
    priority: int = 0
    promise_by: datetime | None
    age_minutes: float
    minutes_to_promise: float | None = Field(description="Negative once the promise has passed")
    late: bool


class AssociateLoad(BaseModel):
    username: str
    role: str | None = None
    open: int
    done_today: int


class Workload(BaseModel):
    store: str
    open_by_step: dict[str, int]
    tasks: list[WorkloadTask]
    by_associate: list[AssociateLoad]
    oldest_minutes: float


class AssignIn(BaseModel):
    assignee: str | None = Field(default=None, max_length=60, description="User name; null to unassign")


class PriorityIn(BaseModel):
    priority: int = Field(ge=0, le=100, description="Higher comes first in the store's queue")


class ManifestPackage(BaseModel):
    package_id: str
    task_id: str
    order_id: str
    tracking: str | None
    box: str | None
    weight_kg: float | None
    handed_over_at: datetime | None


class ManifestOut(BaseModel):
    id: str
    carrier: str
    day: str
    packages: int
    weight_kg: float
    items: list[ManifestPackage]


class Manifests(BaseModel):
    store: str
    date: str
    manifests: list[ManifestOut]
