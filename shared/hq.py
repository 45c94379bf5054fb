"""HQ and store manager insight: store performance, trends, exceptions, routing settings and the what-if replay."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ExceptionKind = Literal["promise_at_risk", "unfillable", "repeated_rejects", "stock_mismatch", "stock_shortfall",
                        "task_idle"]
ExceptionStatus = Literal["open", "acknowledged", "resolved"]
TrendMetric = Literal["reject_rate", "orders_fulfilled", "promises_kept"]


class Period(BaseModel):
    """A half-open time range [from, to)."""

    model_config = ConfigDict(populate_by_name=True)
    from_: datetime = Field(alias="from")
    to: datetime


class Figures(BaseModel):
    """One store's (or the chain's) figures over a period. Each step's work counts in the period it happened in:
    picks by picked_at, packs by packed_at, handovers by fulfilled_at, releases by released_at, rejections by their
    time. Step minutes are per order and store (first release to last pick, last pick to last pack, last pack to
    handover); 0 where nothing happened. They are exact when the period is computed live; over whole past days the
    server reads daily histograms instead (within 5 % of 1 + minutes). Counts and ratios are exact either way."""

    orders_fulfilled: int = 0
    units_fulfilled: int = 0
    lines_released: int = 0
    lines_rejected: int = 0
    reject_rate: float = Field(0.0, description="rejected lines / lines released to the store")
    reject_reasons: dict[str, int] = Field(default_factory=dict)
    pick_minutes_median: float = 0.0
    pick_minutes_p90: float = 0.0
    pack_minutes_median: float = 0.0
    pack_minutes_p90: float = 0.0
    handover_minutes_median: float = 0.0
    handover_minutes_p90: float = 0.0
    promises_kept: dict[str, float] = Field(default_factory=dict, description="delivery method -> share kept")
    promises_kept_overall: float = 0.0
    counts: int = 0
    inventory_accuracy: float = Field(0.0, description="share of counts that found no variance")
    mean_abs_variance: float = 0.0
    reliability: float = Field(0.95, description="how far its stock can be trusted, 0..1 (backend/services/reliability."
                                                 "py; the chain row: the stores' mean)")
    tasks_today: int = 0
    daily_capacity: int = 0
    capacity_use: float = Field(0.0, description="tasks released today (store's local day) / daily capacity")


class StoreFigures(Figures):
    store: str
    name: str


class Performance(BaseModel):
    period: Period
    chain: Figures
    stores: list[StoreFigures]


class TrendPoint(BaseModel):
    date: str = Field(description="UTC day, YYYY-MM-DD")
    value: float
    count: int = Field(description="the events behind the value (denominator of a rate)")


class Trend(BaseModel):
    metric: TrendMetric
    days: int
    store: str | None = Field(None, description="None: the whole chain")
    series: list[TrendPoint]


class ExceptionOut(BaseModel):
    id: str
    kind: str
    severity: str
    order_id: str | None = None
    location: str | None = None
    sku: str | None = None
    message: str
    action: str
    status: ExceptionStatus
    raised_at: datetime
    updated_at: datetime | None = None
    resolved_by: str | None = None


class ExceptionList(BaseModel):
    items: list[ExceptionOut]
    total: int


class ExceptionCostIn(BaseModel):
    kind: ExceptionKind
    cost: float = Field(ge=0, le=100_000, description="USD to handle one exception of this kind")


class ExceptionCosts(BaseModel):
    costs: list[ExceptionCostIn] = Field(min_length=1, max_length=50)


class ExceptionCostOut(ExceptionCostIn):
    default: bool = Field(description="true: the published default, never changed by HQ")
    updated_by: str | None = None
    updated_at: datetime | None = None


class ExceptionCostList(BaseModel):
    costs: list[ExceptionCostOut]


class KindCost(BaseModel):
    kind: str
    exceptions: int
    orders: int = Field(description="distinct orders these exceptions touched")
    cost: float


class WeekCost(BaseModel):
    week_start: str = Field(description="Monday of the ISO week, UTC")
    exceptions: int
    orders: int = Field(description="distinct orders the week's exceptions touched")
    cost: float
    cost_per_order: float | None = Field(description="cost / orders touched; None when no order was touched")
    by_kind: list[KindCost]


class ExceptionCostReport(BaseModel):
    weeks: list[WeekCost] = Field(description="oldest first, every week of the period, zeros where none")
    total_cost: float
    location: str | None = None


class RoutingSettingsOut(BaseModel):
    version: int = Field(description="0: the published defaults, never changed")
    weights: dict[str, Any] = Field(description="every routing weight in force")
    note: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None


class RoutingSettingsIn(BaseModel):
    weights: dict[str, Any] = Field(description="weights to set; absent ones take the published defaults")
    note: str | None = Field(None, max_length=300)


class WhatIfIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: datetime = Field(alias="from")
    to: datetime
    weights: dict[str, Any] = Field(default_factory=dict,
                                    description="changes to the current routing weights (partial)")
    batch: bool = Field(True, description="also replay the periodic batch optimisation")

    @field_validator("from_", "to")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("times need a time zone, e.g. 2026-11-25T00:00:00Z")
        return v


class PlanFigures(BaseModel):
    total_cost: float
    shipping_cost: float
    terms: dict[str, float]
    packages: int
    split_rate: float = Field(description="multi-line orders served from 2+ locations / multi-line orders")
    promises_kept: float = Field(description="projected share of orders whose promise is kept")
    promises_kept_by_method: dict[str, float]
    unfilled_lines: int
    store_load: dict[str, int] = Field(description="location -> orders (packages) it serves")


class Comparison(BaseModel):
    figure: str
    actual: float
    whatif: float
    change: float


class WhatIfChange(BaseModel):
    order_id: str
    actual: list[str]
    whatif: list[str]


class WhatIfOut(BaseModel):
    period: Period
    orders: int
    batch: bool
    batch_runs: int = Field(0, description="how many times the replayed batch optimisation ran")
    weights: dict[str, Any] = Field(description="the weights the replay routed with")
    priced_with_version: int = Field(description="both plans are priced with this routing setting (the current one)")
    actual: PlanFigures
    whatif: PlanFigures
    comparison: list[Comparison]
    orders_changed: int
    examples: list[WhatIfChange]
    notes: list[str]
    seconds: float
