"""Outbound webhooks: written with the change (outbox), signed, retried, in order per order, logged, replayable."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.nodes import helpers as h

SECRET = "test-webhook-secret-0123456789"
KINDS = ["order.routed", "order.backordered", "order.cancelled", "order.shipped", "line.rejected", "work.available"]


class Receiver:
    """An integrator's endpoint on 127.0.0.1 that refuses its first `fail_first` requests with a 503."""

    def __init__(self, fail_first: int):
        self.fail_first = fail_first
        self.received: list[dict] = []  # every request, in arrival order, with the answer given
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    ok = len(outer.received) >= outer.fail_first
                    outer.received.append({"body": body, "signature": self.headers["X-Storeline-Signature"],
                                           "delivery": int(self.headers["X-Storeline-Delivery"]),
                                           "kind": self.headers["X-Storeline-Event"], "ok": ok})
                self.send_response(200 if ok else 503)
                self.end_headers()
                self.wfile.write(b"thanks" if ok else b"busy")

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/storeline"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class WorkerDied(Exception):
    """The delivery worker's process dies right after a POST went out, before it could note the answer."""


class DiesAfterSending(httpx.BaseTransport):
    def __init__(self, after: int):
        self.inner = httpx.HTTPTransport()
        self.left = after

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        self.left -= 1
        if self.left == 0:
            raise WorkerDied()
        return response


def _run_worker(client: httpx.Client | None = None) -> int:
    """One scheduler tick of a freshly started worker: a new session and no cached state."""
    from backend.db import session_scope
    from backend.services import webhooks

    webhooks.invalidate_cache()
    with session_scope() as s:
        return webhooks.deliver_due(s, client=client)


def _make_events(client, hq, integration) -> dict[str, str]:
    h.load(client, hq, integration, w1=3)
    w1 = h.node_key(client, hq, "W1")
    a = h.order(client, integration, "WH-A", qty=2)  # routed to W1
    b = h.order(client, integration, "WH-B", qty=1)  # routed to W1
    c = h.order(client, integration, "WH-C", qty=5)  # backordered: W1 has 0 left
    assert client.post(f"/api/v1/orders/{b['id']}/cancel", headers=integration).status_code == 200
    h.release_all()  # A's allocation goes to W1's work feed: work.available
    work = client.get("/api/v1/locations/W1/work", headers=w1).json()["items"]
    [item] = [x for x in work if x["order_id"] == a["id"]]
    r = client.post("/api/v1/locations/W1/shipments", headers=w1, json={
        "shipment_id": "WH-S1", "carrier": "UPS", "lines": [{"allocation_id": item["allocation_id"], "quantity": 2}]})
    assert r.status_code == 200, r.text  # order.shipped
    return {"A": a["id"], "B": b["id"], "C": c["id"]}


def test_every_event_is_delivered_as_often_as_the_log_says_in_order_per_order_and_signed(client, hq, integration):
    with Receiver(fail_first=3) as rx:
        r = client.post("/api/v1/webhooks", headers=integration, json={"url": rx.url, "secret": SECRET,
                                                                       "kinds": KINDS})
        assert r.status_code == 201, r.text
        hook = r.json()
        assert hook["secret"] == SECRET and client.get("/api/v1/webhooks", headers=hq).json()["items"][0]["id"] == \
            hook["id"] and "secret" not in client.get("/api/v1/webhooks", headers=hq).json()["items"][0]
        ids = _make_events(client, hq, integration)

        from sqlmodel import select

        from backend import clock
        from backend.db import session_scope
        from backend.models import Event, WebhookAttempt, WebhookDelivery
        from backend.services import webhooks

        with session_scope() as s:
            outbox = s.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
            wanted = s.exec(select(Event).where(Event.kind.in_(KINDS)).order_by(Event.id)).all()
            assert [d.event_id for d in outbox] == [e.id for e in wanted], "one outbox row per wanted event"
            assert {d.kind for d in outbox} == {"order.routed", "order.backordered", "order.cancelled",
                                                "order.shipped", "work.available"}
        assert rx.received == [], "nothing is sent inside the request that made the change"

        # The worker runs; the receiver refuses the first three requests; a worker dies right after a POST; each
        # run is a fresh worker, and time moves on past each retry's backoff.
        ticks = 0
        with httpx.Client(transport=DiesAfterSending(after=5)) as dying, pytest.raises(WorkerDied):
            for _ in range(10):
                _run_worker(dying)
                clock.shift(webhooks.BACKOFF_MAX_S)
        while ticks < 30:
            ticks += 1
            _run_worker()
            with session_scope() as s:
                if not s.exec(select(WebhookDelivery).where(WebhookDelivery.status != "delivered")).all():
                    break
            clock.shift(webhooks.BACKOFF_MAX_S + webhooks.LEASE_S)
        with session_scope() as s:
            deliveries = s.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
            log = s.exec(select(WebhookAttempt)).all()
            events = {e.id: e for e in s.exec(select(Event))}
            assert {d.status for d in deliveries} == {"delivered"}
            # Exactly as often as the log says: one request per logged attempt, per delivery.
            for d in deliveries:
                sent = [x for x in rx.received if x["delivery"] == d.id]
                attempts = sorted((a for a in log if a.delivery_id == d.id), key=lambda a: a.attempt)
                assert len(sent) == d.attempts == len(attempts)
                for x, a in zip(sent, attempts, strict=True):
                    if a.error and "worker stopped" in a.error:
                        continue  # the worker died before it could note the answer: sent again later
                    assert (a.ok, a.status_code) == (x["ok"], 200 if x["ok"] else 503)
                assert sent[-1]["ok"] and attempts[-1].ok
            assert len([x for x in rx.received if not x["ok"]]) == 3
            crashed = [a for a in log if a.error and "worker stopped" in a.error]
            assert len(crashed) == 1, "the POST the dying worker made is in the log, answer unknown"
            # In order per order: nothing of an order arrives before its earlier events were accepted.
            accepted: set[int] = set()
            for x in rx.received:
                body = json.loads(x["body"])
                earlier = [d.event_id for d in deliveries
                           if d.order_key == body["order_id"] and d.event_id < body["id"]]
                assert body["order_id"] is None or set(earlier) <= accepted, (body["kind"], body["order_id"])
                if x["ok"]:
                    accepted.add(body["id"])
                # Signed with the secret over the exact body.
                assert x["signature"] == "sha256=" + hmac.new(SECRET.encode(), x["body"], hashlib.sha256).hexdigest()
                assert body["kind"] == events[body["id"]].kind == x["kind"]
            per_order = [json.loads(x["body"]) for x in rx.received if x["ok"]]
            firsts = {b["id"]: b["kind"] for b in per_order if b["order_id"] == ids["A"]}  # receivers dedupe by id
            assert list(firsts.values()) == ["order.routed", "work.available", "order.shipped"]

        # The integrator reads the log and replays one delivery: it arrives once more, and the log says so.
        page = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=integration).json()
        assert page["total"] == len(deliveries) and all(d["status"] == "delivered" for d in page["items"])
        first = min(page["items"], key=lambda d: d["id"])
        assert first["attempts"] == len(first["log"]) >= 2 and first["log"][-1]["ok"] is True
        assert first["log"][0]["status_code"] == 503
        r = client.post(f"/api/v1/webhooks/deliveries/{first['id']}/replay", headers=integration)
        assert r.status_code == 200 and r.json()["status"] == "pending"
        before = len(rx.received)
        _run_worker()
        assert len(rx.received) == before + 1 and rx.received[-1]["delivery"] == first["id"]
        again = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=integration).json()
        replayed = next(d for d in again["items"] if d["id"] == first["id"])
        assert replayed["status"] == "delivered" and replayed["attempts"] == first["attempts"] + 1

        # Deleted: nothing more is queued.
        assert client.delete(f"/api/v1/webhooks/{hook['id']}", headers=hq).json()["active"] is False
        h.order(client, integration, "WH-D", qty=1)
        with session_scope() as s:
            assert len(s.exec(select(WebhookDelivery)).all()) == len(deliveries)


def test_webhook_input_is_checked_and_only_hq_or_integrations_manage_them(client, hq, integration):
    h.load(client, hq, integration)
    bad = client.post("/api/v1/webhooks", headers=hq, json={"url": "ftp://x", "kinds": ["order.routed"]})
    assert bad.status_code == 422
    bad = client.post("/api/v1/webhooks", headers=hq, json={"url": "https://example.test/h", "kinds": ["nope"]})
    assert bad.status_code == 422
    made = client.post("/api/v1/webhooks", headers=hq, json={"url": "https://example.test/h",
                                                             "kinds": ["stock.low"]})
    assert made.status_code == 201 and made.json()["secret"].startswith("whsec_")
    w1 = h.node_key(client, hq, "W1")
    assert client.get("/api/v1/webhooks", headers=w1).status_code == 403
    assert client.get("/api/v1/webhooks/whk_nope/deliveries", headers=hq).status_code == 404
    assert client.post("/api/v1/webhooks/deliveries/999999/replay", headers=hq).status_code == 404


def test_outbox_rows_roll_back_with_the_change(session):
    """A delivery row exists only if the change that made its event committed."""
    from sqlmodel import select

    from backend import events
    from backend.models import Webhook, WebhookDelivery
    from backend.services import webhooks

    session.add(Webhook(id="whk_t", url="http://127.0.0.1:9/x", secret=SECRET, kinds=["stock.low"]))
    session.commit()
    webhooks.invalidate_cache()
    events.record(session, "stock.low", "inventory", "W1/SKU-1", data={"atp": 1})
    session.rollback()
    assert session.exec(select(WebhookDelivery)).all() == []
    events.record(session, "stock.low", "inventory", "W1/SKU-1", data={"atp": 1})
    events.record(session, "order.created", "order", "ord_x")  # not subscribed
    session.commit()
    [d] = session.exec(select(WebhookDelivery)).all()
    assert (d.kind, d.status, d.order_key) == ("stock.low", "pending", None)
