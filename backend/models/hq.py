"""HQ read-model rollups: each store's raw sums per closed UTC day (and per whole month), so that store performance
over a long period adds up a few rows per store instead of scanning a year of allocations
(backend/services/hq_rollup.py keeps them; backend/services/hq.py reads them)."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from backend.models.base import json_col, ts


class HqRollupBlock(SQLModel, table=True):
    """A block of whole UTC days whose rows in HqRollup are complete: a day (days = 1) or a calendar month (days =
    its length). A block without a row here is computed live from the event data."""

    start: date = Field(primary_key=True)
    days: int = Field(primary_key=True)
    computed_at: datetime = ts()


class HqRollup(SQLModel, table=True):
    """One store's sums over one block (no row: nothing happened there): lines released and rejected, rejected
    lines by reason (`rej_<reason>`), orders handed over, their units, promises kept and orders with a promise by
    delivery method (`<method>_orders` ...), counts; a reason or method outside the contract's lists in `extra`
    ({"reasons": {...}, "methods": {m: [orders, units, kept, promised]}}, `has_extra`); and `hist`, the step-time
    histograms, packed (backend/services/hq.py `pack_hist`). Plain integer columns, so that SQL sums them."""

    location: str = Field(primary_key=True, max_length=40)
    start: date = Field(primary_key=True)
    days: int = Field(primary_key=True)
    released: int = 0
    rejected: int = 0
    counts: int = 0
    exact: int = 0
    abs_variance: int = 0
    rej_not_found: int = 0
    rej_damaged: int = 0
    rej_wrong_item: int = 0
    rej_customer_hold: int = 0
    rej_other: int = 0
    same_day_orders: int = 0
    same_day_units: int = 0
    same_day_kept: int = 0
    same_day_promised: int = 0
    next_day_orders: int = 0
    next_day_units: int = 0
    next_day_kept: int = 0
    next_day_promised: int = 0
    standard_orders: int = 0
    standard_units: int = 0
    standard_kept: int = 0
    standard_promised: int = 0
    pickup_orders: int = 0
    pickup_units: int = 0
    pickup_kept: int = 0
    pickup_promised: int = 0
    has_extra: bool = False
    extra: dict = json_col()
    hist: bytes = Field(default=b"", sa_column=Column(LargeBinary, nullable=False))

    __table_args__ = (Index("ix_hqrollup_block", "start", "days"),)
