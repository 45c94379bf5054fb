"""The tablet's whole conversation with the server: pull changes, push actions."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.enums import ActionType, DeliveryMethod, RejectReason, TaskStep


class TaskLine(BaseModel):
    line_id: str
    sku: str
    name: str | None = None
    quantity: int
    picked: int = 0
    rejected: int = 0
    barcodes: list[str] = Field(default_factory=list)


class TaskData(BaseModel):
    id: str
    order_id: str
    order_number: str | None = None
    step: TaskStep
    delivery_method: DeliveryMethod
    promise_by: datetime | None
    assignee: str | None
    pickup_code_sha256: str | None = Field(default=None, description='sha256 hex of f"{task_id}:{pickup_code}"'
                                                                      " for a store pickup ready for collection")
    priority: int = 0
    location: str | None = None
    lines: list[TaskLine]


class ProductData(BaseModel):
    sku: str
    name: str
    barcodes: list[str] = Field(default_factory=list)
    weight_kg: float | None = None


class ReasonCodeData(BaseModel):
    code: str
    label: str
    needs_note: bool = False
    position: int = 0


class UserData(BaseModel):
    username: str
    role: str
    name: str | None = None


class Change(BaseModel):
    entity: Literal["task", "order", "product", "reason_code", "user"]
    op: Literal["upsert", "delete"]
    id: str
    data: dict[str, Any] = Field(default_factory=dict)


class PullResponse(BaseModel):
    cursor: str
    has_more: bool
    changes: list[Change]
    reset: bool = False


class Action(BaseModel):
    id: str = Field(min_length=8, max_length=64,
                    description="Made on the device (a UUID); replays return the first result")
    type: ActionType
    task_id: str | None = None
    line_id: str | None = None
    quantity: int | None = Field(default=None, ge=0, le=10_000)
    barcode: str | None = Field(default=None, max_length=64)
    reason: RejectReason | None = None
    note: str | None = Field(default=None, max_length=500)
    packages: int | None = Field(default=None, ge=1, le=100)
    box: str | None = Field(default=None, max_length=40)
    weight_kg: float | None = Field(default=None, ge=0, le=2000)
    carrier: str | None = Field(default=None, max_length=40)
    tracking: list[str] | None = Field(default=None, max_length=100)
    pickup_code: str | None = Field(default=None, max_length=20)
    sku: str | None = Field(default=None, max_length=40)
    counted: int | None = Field(default=None, ge=0, le=1_000_000)
    assignee: str | None = Field(default=None, max_length=60)
    at: datetime | None = None


class PushRequest(BaseModel):
    device_id: str = Field(min_length=1, max_length=64)
    actions: list[Action] = Field(max_length=1000)


class ActionResult(BaseModel):
    id: str
    status: Literal["applied", "rejected"]
    code: str | None = None
    message: str | None = None


class PushResponse(BaseModel):
    results: list[ActionResult]
    cursor: str
