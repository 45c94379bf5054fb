"""Who gets scarce stock: when stock arrives or is freed, waiting lines are served in the order of an explicit,
versioned policy (priority, customer tier, promise date, age, channel), not by who came last.

A policy is data (`AllocationPolicy` rows; the newest is in force):
* `rules`: sort keys, most important first. priority: higher first; customer_tier: higher rank in `tiers` first;
  promise_by: earlier promise first; age: older order first; channel: higher rank in `channels` first. Ties end
  on the order's age and then its id, so the order is always the same.
* `caps`: per channel (and SKU, or "*" for any), the units (`max_units`) or share of the SKU's ATP at the start
  of the round (`max_share`, rounded down) that the channel's lines may take in one round. Lines past their cap
  wait behind every other line (`hard: false`) or for the next round (`hard: true`). The cap counts a line's
  units when it is its turn, assuming the lines before it are placed: a round is a plan, routing then places.

`order_waiting_lines` gives each line the rule that decided its place (the first sort key on which it differs
from the line behind it; the last line: from the line ahead of it), and `place` routes a line and writes that
rule into its allocation event (`line.allocated`).
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from backend import events
from backend.models import Allocation, Order, OrderLine
from backend.models.policy import AllocationPolicy
from backend.principal import Principal
from shared.nodes import AllocationPolicyIn, AllocationPolicyOut

DEFAULT_RULES = ["priority", "customer_tier", "promise_by", "age"]
CAPPED, TIE, ONLY = "channel_cap", "tie", "only"
_FAR = 1e12


@dataclass(frozen=True)
class Policy:
    version: int | None = None
    rules: list[str] = field(default_factory=lambda: list(DEFAULT_RULES))
    tiers: dict[str, int] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)
    caps: list[dict[str, Any]] = field(default_factory=list)


def current(session: Session) -> Policy:
    row = session.exec(select(AllocationPolicy).order_by(col(AllocationPolicy.version).desc()).limit(1)).first()
    if row is None:
        return Policy()
    return Policy(version=row.version, rules=list(row.rules or DEFAULT_RULES), tiers=dict(row.tiers or {}),
                  channels=dict(row.channels or {}), caps=list(row.caps or []))


# ------------------------------------------------------------------------------------------ pure ordering
def _ts(d: datetime | None) -> float:
    return d.timestamp() if d is not None else _FAR


def sort_key(policy: Policy, order: Order) -> tuple:
    keys: list[float] = []
    for rule in policy.rules:
        if rule == "priority":
            keys.append(-float(order.priority or 0))
        elif rule == "customer_tier":
            keys.append(-float(policy.tiers.get(order.customer_tier or "", 0)))
        elif rule == "promise_by":
            keys.append(_ts(order.promise_by))
        elif rule == "age":
            keys.append(_ts(order.created_at))
        elif rule == "channel":
            keys.append(-float(policy.channels.get(order.channel, 0)))
    return tuple(keys)


def _deciding(policy: Policy, a: tuple, b: tuple) -> str:
    for rule, x, y in zip(policy.rules, a, b, strict=True):
        if x != y:
            return rule
    return TIE


def cap_for(policy: Policy, sku: str, channel: str) -> dict[str, Any] | None:
    """The cap on this channel for this SKU: a SKU's own cap before a "*" one."""
    found = None
    for cap in policy.caps:
        if cap.get("channel") != channel:
            continue
        if cap.get("sku") == sku:
            return cap
        if cap.get("sku", "*") == "*":
            found = found or cap
    return found


def cap_units(cap: dict[str, Any], atp: int) -> int:
    limits = []
    if cap.get("max_units") is not None:
        limits.append(int(cap["max_units"]))
    if cap.get("max_share") is not None:
        limits.append(math.floor(float(cap["max_share"]) * max(0, atp) + 1e-9))
    return min(limits) if limits else atp


def arrange(policy: Policy, lines: list[OrderLine], orders: dict[str, Order],
            atp: dict[str, int]) -> list[tuple[OrderLine, str]]:
    """The serving order of `lines` with each line's deciding rule (see module doc). No database."""
    keyed = sorted(((sort_key(policy, orders[ln.order_id]), _ts(orders[ln.order_id].created_at), ln.order_id,
                     ln.line_id, ln) for ln in lines), key=lambda t: t[:4])
    used: dict[tuple[str, str], int] = defaultdict(int)
    head: list[tuple[tuple, OrderLine]] = []
    tail: list[tuple[OrderLine, str]] = []
    for key, _age, _oid, _lid, ln in keyed:
        channel = orders[ln.order_id].channel
        cap = cap_for(policy, ln.sku, channel)
        if cap is not None:
            limit = cap_units(cap, atp.get(ln.sku, 0))
            if used[(ln.sku, channel)] + ln.quantity > limit:
                if not cap.get("hard"):
                    tail.append((ln, CAPPED))
                continue
            used[(ln.sku, channel)] += ln.quantity
        head.append((key, ln))
    out: list[tuple[OrderLine, str]] = []
    for i, (key, ln) in enumerate(head):
        if len(head) == 1:
            rule = ONLY
        elif i + 1 < len(head):
            rule = _deciding(policy, key, head[i + 1][0])
        else:
            rule = _deciding(policy, head[i - 1][0], key)
        out.append((ln, rule))
    return out + tail


# ------------------------------------------------------------------------------------------------ database
def order_waiting_lines(session: Session, lines: list[OrderLine]) -> list[tuple[OrderLine, str]]:
    """Waiting lines in the order the policy in force serves them, each with the rule that decided its place.
    Lines over a hard channel cap are left out (they wait for the next round)."""
    if not lines:
        return []
    policy = current(session)
    orders = {o.id: o for o in session.exec(select(Order).where(col(Order.id).in_({ln.order_id for ln in lines})))}
    atp: dict[str, int] = {}
    if policy.caps:
        from backend.services.routing import atp_rows

        for sku, _loc, units in atp_rows(session, sorted({ln.sku for ln in lines})):
            atp[sku] = atp.get(sku, 0) + units
    return arrange(policy, lines, orders, atp)


def place(session: Session, line: OrderLine, rule: str, rank: int, actor: str | None) -> bool:
    """Route a waiting line again (routing.reroute_line); when it got stock, mark its new allocations as the
    policy's and record the deciding rule. Returns True when the line left the backorder. No commit."""
    from backend.services.routing import reroute_line

    before = {a.id for a in session.exec(select(Allocation).where(Allocation.line_pk == line.id))}
    status = line.status
    reroute_line(session, line, exclude=[], actor=actor)
    new = [a for a in session.exec(select(Allocation).where(Allocation.line_pk == line.id)) if a.id not in before]
    if not new:
        return False
    for a in new:
        a.decided_by = "policy"
        session.add(a)
    version = session.exec(select(AllocationPolicy.version).order_by(col(AllocationPolicy.version).desc())
                           .limit(1)).first()
    events.record(session, "line.allocated", "order_line", line.id, order_id=line.order_id, actor=actor,
                  data={"by": "policy", "rule": rule, "rank": rank, "policy_version": version,
                        "line_id": line.line_id, "sku": line.sku,
                        "allocations": [{"allocation_id": a.id, "location": a.location, "quantity": a.quantity}
                                        for a in new]})
    return status != line.status and line.status != "backordered"


# ---------------------------------------------------------------------------------------------- settings
def policy_out(session: Session) -> AllocationPolicyOut:
    row = session.exec(select(AllocationPolicy).order_by(col(AllocationPolicy.version).desc()).limit(1)).first()
    if row is None:
        return AllocationPolicyOut(version=None, rules=list(DEFAULT_RULES))
    return AllocationPolicyOut(version=row.version, rules=row.rules, tiers=row.tiers, channels=row.channels,
                               caps=row.caps, note=row.note, created_by=row.created_by, created_at=row.created_at)


def set_policy(session: Session, body: AllocationPolicyIn, actor: Principal) -> AllocationPolicyOut:
    """A new version of the policy, in force from now on (older versions stay for the record)."""
    row = AllocationPolicy(rules=list(body.rules), tiers=dict(body.tiers), channels=dict(body.channels),
                           caps=[c.model_dump() for c in body.caps], note=body.note, created_by=actor.username)
    session.add(row)
    session.flush()
    events.record(session, "allocation_policy.changed", "allocation_policy", str(row.version), actor=actor.username,
                  data={"version": row.version, "rules": row.rules, "caps": row.caps, "tiers": row.tiers,
                        "channels": row.channels})
    session.commit()
    return policy_out(session)
