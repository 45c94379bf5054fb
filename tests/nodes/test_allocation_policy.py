"""Scarce stock goes to waiting orders by an explicit policy (priority, tier, promise, age, channel caps)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from tests.nodes import helpers as h

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@dataclass
class FakeOrder:
    id: str
    channel: str = "web"
    priority: int = 0
    customer_tier: str | None = None
    promise_by: datetime | None = None
    created_at: datetime = T0


@dataclass
class FakeLine:
    order_id: str
    sku: str = "SKU-9"
    quantity: int = 1
    line_id: str = "1"


def _arrange(policy, specs: list[FakeOrder], atp: int = 10, qty: dict[str, int] | None = None):
    from backend.services.allocation_policy import arrange

    orders = {o.id: o for o in specs}
    lines = [FakeLine(o.id, quantity=(qty or {}).get(o.id, 1)) for o in reversed(specs)]
    return [(ln.order_id, rule) for ln, rule in arrange(policy, lines, orders, {"SKU-9": atp})]


def test_rules_in_order_with_the_deciding_rule_and_soft_and_hard_caps():
    from backend.services.allocation_policy import Policy

    specs = [
        FakeOrder("A", created_at=T0),
        FakeOrder("B", priority=5, created_at=T0 + timedelta(minutes=1)),
        FakeOrder("C", channel="marketplace", priority=9, created_at=T0 + timedelta(minutes=2)),
        FakeOrder("D", channel="marketplace", priority=9, created_at=T0 + timedelta(minutes=3)),
        FakeOrder("E", customer_tier="gold", created_at=T0 + timedelta(minutes=4)),
        FakeOrder("F", promise_by=T0 + timedelta(days=1), created_at=T0 + timedelta(minutes=5)),
    ]
    plain = Policy(tiers={"gold": 2})
    # priority 9 (C older than D), 5, then priority 0: gold first, then the earlier promise, then the older order.
    assert _arrange(plain, specs) == [("C", "age"), ("D", "priority"), ("B", "priority"), ("E", "customer_tier"),
                                      ("F", "promise_by"), ("A", "promise_by")]
    soft = Policy(tiers={"gold": 2}, caps=[{"sku": "SKU-9", "channel": "marketplace", "max_units": 1}])
    assert _arrange(soft, specs) == [("C", "priority"), ("B", "priority"), ("E", "customer_tier"),
                                     ("F", "promise_by"), ("A", "promise_by"), ("D", "channel_cap")]
    hard = Policy(tiers={"gold": 2}, caps=[{"sku": "*", "channel": "marketplace", "max_share": 0.25, "hard": True}])
    assert [x for x, _ in _arrange(hard, specs, atp=4)] == ["C", "B", "E", "F", "A"], "25% of 4 units = 1"
    assert [x for x, _ in _arrange(hard, specs, atp=3)] == ["B", "E", "F", "A"], "25% of 3 units = 0"
    # A cap counts units: a 2-unit marketplace line does not fit a 1-unit cap, the 1-unit one behind it does.
    assert [x for x, _ in _arrange(soft, specs, qty={"C": 2})] == ["D", "B", "E", "F", "A", "C"]
    # Age first: who came first is served first, whatever the priority.
    assert [x for x, _ in _arrange(Policy(rules=["age"]), specs)] == ["A", "B", "C", "D", "E", "F"]
    assert _arrange(Policy(), specs[:1]) == [("A", "only")]


def test_freed_scarce_stock_goes_by_policy_and_each_allocation_says_which_rule_decided(client, hq, integration):
    h.load(client, hq, integration, w1=0)
    r = client.put("/api/v1/hq/allocation-policy", headers=hq, json={
        "rules": ["priority", "customer_tier", "promise_by", "age"], "tiers": {"gold": 2, "silver": 1},
        "caps": [{"sku": "SKU-9", "channel": "marketplace", "max_units": 1}], "note": "boot launch"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] >= 1 and client.get("/api/v1/hq/allocation-policy", headers=hq).json()["caps"][0][
        "max_units"] == 1
    bad = client.put("/api/v1/hq/allocation-policy", headers=hq, json={"rules": ["priority", "luck"]})
    assert bad.status_code == 422
    assert client.put("/api/v1/hq/allocation-policy", headers=integration, json={}).status_code == 403

    soon = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    ids = {}
    for name, kw in (("A", {}), ("B", {"priority": 5}), ("C", {"channel": "marketplace", "priority": 9}),
                     ("D", {"channel": "marketplace", "priority": 9}), ("E", {"customer_tier": "gold"}),
                     ("F", {"promise_by": soon})):
        o = h.order(client, integration, f"AP-{name}", **kw)
        assert o["status"] == "backordered", "nothing in stock yet"
        ids[name] = o["id"]

    h.stock(client, integration, W1=4)  # the feed retries the waiting lines, in the policy's order

    status = {n: h.get_order(client, integration, i)["status"] for n, i in ids.items()}
    # Hand-computed: C (priority 9; D, also 9, is over marketplace's cap of 1), B (5), E (gold), F (earlier
    # promise than A) get the 4 units; A and D wait.
    assert status == {"A": "backordered", "B": "routed", "C": "routed", "D": "backordered", "E": "routed",
                      "F": "routed"}
    from backend.db import session_scope
    from backend.models import Allocation, Event

    with session_scope() as s:
        events = s.exec(select(Event).where(Event.kind == "line.allocated").order_by(Event.id)).all()
        got = [(next(n for n, i in ids.items() if i == e.order_id), e.data["rule"], e.data["rank"]) for e in events]
        assert got == [("C", "priority", 1), ("B", "priority", 2), ("E", "customer_tier", 3),
                       ("F", "promise_by", 4)]
        assert {e.data["policy_version"] for e in events} == {r.json()["version"]}
        by = {a.decided_by for a in s.exec(select(Allocation).where(Allocation.sku == "SKU-9"))}
        assert by == {"policy"}

    # Two more units, a new round: D is marketplace's first line of this round, so both D and A are served.
    h.stock(client, integration, W1=6)
    status = {n: h.get_order(client, integration, i)["status"] for n, i in ids.items()}
    assert status["A"] == "routed" and status["D"] == "routed"
