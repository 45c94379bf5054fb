"""The status words and codes of the public contract (see MISSION.md, "Payload shapes")."""
from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    associate = "associate"
    manager = "manager"
    hq = "hq"
    integration = "integration"
    node = "node"


class LocationType(StrEnum):
    store = "store"
    warehouse = "warehouse"
    threepl = "3pl"
    supplier = "supplier"


class DeliveryMethod(StrEnum):
    same_day = "same_day"
    next_day = "next_day"
    standard = "standard"
    pickup = "pickup"


class OrderStatus(StrEnum):
    created = "created"
    routed = "routed"
    released = "released"
    picked = "picked"
    packed = "packed"
    shipped = "shipped"
    collected = "collected"
    cancelled = "cancelled"
    backordered = "backordered"


class LineStatus(StrEnum):
    created = "created"
    routed = "routed"
    released = "released"
    picked = "picked"
    packed = "packed"
    shipped = "shipped"
    collected = "collected"
    cancelled = "cancelled"
    backordered = "backordered"
    rejected = "rejected"


class AllocationState(StrEnum):
    reserved = "reserved"
    released = "released"
    picked = "picked"
    packed = "packed"
    fulfilled = "fulfilled"
    rejected = "rejected"
    cancelled = "cancelled"
    replaced = "replaced"


LIVE_ALLOCATION_STATES = frozenset(
    {AllocationState.reserved, AllocationState.released, AllocationState.picked, AllocationState.packed}
)


class TaskStep(StrEnum):
    pick = "pick"
    pack = "pack"
    handover = "handover"
    done = "done"


class RejectReason(StrEnum):
    not_found = "not_found"
    damaged = "damaged"
    wrong_item = "wrong_item"
    customer_hold = "customer_hold"
    other = "other"


REJECT_REASON_LABELS: dict[RejectReason, str] = {
    RejectReason.not_found: "Not found on the shelf",
    RejectReason.damaged: "Damaged",
    RejectReason.wrong_item: "Wrong item in the box or on the shelf",
    RejectReason.customer_hold: "Held for a customer in the store",
    RejectReason.other: "Other (add a note)",
}


class ActionType(StrEnum):
    claim = "claim"
    assign = "assign"
    pick = "pick"
    reject = "reject"
    pack = "pack"
    handover_carrier = "handover_carrier"
    handover_customer = "handover_customer"
    count = "count"


class CountStatus(StrEnum):
    applied = "applied"
    pending_approval = "pending_approval"
    approved = "approved"
    declined = "declined"
