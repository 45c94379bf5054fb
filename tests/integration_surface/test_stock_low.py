"""`stock.low`: raised once when a SKU's chain-wide ATP falls to the threshold, again only after it recovered."""
from __future__ import annotations

from sqlmodel import select

from tests.nodes import helpers as h


def _scan() -> int:
    from backend.db import session_scope
    from backend.services import stock_alerts

    with session_scope() as s:
        return stock_alerts.scan(s, threshold=2)


def _low_events(sku: str) -> list[dict]:
    from backend.db import session_scope
    from backend.models import Event, WebhookDelivery

    with session_scope() as s:
        evs = s.exec(select(Event).where(Event.kind == "stock.low", Event.entity_id == sku).order_by(Event.id)).all()
        queued = {d.event_id for d in s.exec(select(WebhookDelivery).where(WebhookDelivery.kind == "stock.low"))}
        return [{**e.data, "queued": e.id in queued} for e in evs]


def test_stock_low_is_raised_once_per_fall_and_goes_to_subscribed_webhooks(client, hq, integration):
    h.load(client, hq, integration, w1=3)  # SKU-9 only at W1
    r = client.post("/api/v1/webhooks", headers=integration,
                    json={"url": "https://erp.example.test/hooks", "kinds": ["stock.low"]})
    assert r.status_code == 201, r.text
    _scan()
    assert _low_events("SKU-9") == [], "3 units across the chain is above the threshold of 2"

    h.order(client, integration, "LOW-1", qty=2)  # ATP 3 -> 1
    _scan()
    _scan()  # still low: no second event
    assert _low_events("SKU-9") == [{"sku": "SKU-9", "atp": 1, "threshold": 2, "queued": True}]

    h.stock(client, integration, W1=12)  # replenished: ATP 10, the alert is forgotten
    _scan()
    h.order(client, integration, "LOW-2", qty=9)  # ATP 1 again: a new fall, a new event
    _scan()
    assert [e["atp"] for e in _low_events("SKU-9")] == [1, 1]
