"""People override routing with a reason: HQ anywhere, a store manager at their store; the rate is watched."""
from __future__ import annotations

from tests.conftest import login
from tests.nodes import helpers as h


def _override(client, headers, order_id: str, **body):
    return client.post(f"/api/v1/orders/{order_id}/lines/1/override", json=body, headers=headers)


def _live(o: dict) -> list[tuple[str, int, str]]:
    return [x for x in h.allocations(o) if x[2] in ("reserved", "released", "picked", "packed")]


def test_hq_moves_a_line_and_the_target_must_have_the_stock(client, hq, integration):
    h.load(client, hq, integration, w1=10, t1=3)
    o = h.order(client, integration, "OV-1", qty=2)
    [(src, _, _)] = h.allocations(o)
    dst = "T1" if src == "W1" else "W1"
    r = _override(client, hq, o["id"], action="move", location=dst, reason="carrier_issue", note="storm at W1")
    assert r.status_code == 200, r.text
    moved = r.json()
    assert h.allocations(moved) == [(src, 2, "replaced"), (dst, 2, "reserved")]
    assert h.position(src, "SKU-9")[1] == 0 and h.position(dst, "SKU-9")[1] == 2
    [ev] = [e for e in moved["history"] if e["kind"] == "line.overridden"]
    assert ev["actor"] == "hq" and ev["data"]["reason"] == "carrier_issue" and ev["data"]["to"] == dst
    assert ev["data"]["from"] == [src] and ev["data"]["action"] == "move"
    from backend.db import session_scope
    from backend.models import Allocation, Order

    with session_scope() as s:
        assert s.get(Order, o["id"]).override is True, "the batch optimisation leaves it alone"
        assert {a.decided_by for a in s.exec(__import__("sqlmodel").select(Allocation).where(
            Allocation.order_id == o["id"], Allocation.state == "reserved"))} == {"override"}

    # P1 has none: refused with the reason, nothing changed.
    r = _override(client, hq, o["id"], action="move", location="P1", reason="cost")
    assert r.status_code == 409 and r.json()["code"] == "insufficient_stock"
    assert r.json()["details"] == {"location": "P1", "sku": "SKU-9", "available": 0, "needed": 2}
    assert _live(h.get_order(client, integration, o["id"])) == [(dst, 2, "reserved")]
    assert h.position(dst, "SKU-9")[1] == 2
    assert _override(client, hq, o["id"], action="move", location=dst, reason="x").json()["code"] == "already_there"
    assert _override(client, hq, o["id"], action="move", reason="x").status_code == 422
    assert _override(client, integration, o["id"], action="hold", reason="x").status_code == 403


def test_store_manager_holds_and_releases_a_line_at_their_store_only(client, hq, integration):
    h.load(client, hq, integration)
    o = h.order(client, integration, "OV-2", qty=1, sku="SKU-2", method="pickup", pickup_location="S1")
    mia, dan = login(client, "s1-mia", "3333"), login(client, "s2-dan", "5555")
    ana = login(client, "s1-ana", "1111")
    h.release_all()  # (tokens are made before the clock moves: a token from the future is refused)
    assert _live(h.get_order(client, integration, o["id"])) == [("S1", 1, "released")]

    assert _override(client, ana, o["id"], action="hold", reason="x").status_code == 403, "associates may not"
    r = _override(client, dan, o["id"], action="hold", reason="stock_doubt")
    assert r.status_code == 403 and r.json()["code"] == "wrong_location"
    # Dan may move a line to his own store, but S2 has no SKU-2.
    r = _override(client, dan, o["id"], action="move", location="S2", reason="store_capacity")
    assert r.status_code == 409 and r.json()["code"] == "insufficient_stock"

    r = _override(client, mia, o["id"], action="hold", reason="customer_request")
    assert r.status_code == 200, r.text
    held = r.json()
    assert _live(held) == [("S1", 1, "reserved")], "taken back from the queue, units still reserved at S1"
    assert h.release_all() == 0, "a held line is not released"
    assert _live(h.get_order(client, integration, o["id"])) == [("S1", 1, "reserved")]
    assert _override(client, mia, o["id"], action="hold", reason="again").status_code == 200, "idempotent"

    r = _override(client, mia, o["id"], action="release_hold", reason="customer_request")
    assert r.status_code == 200, r.text
    assert _live(r.json()) == [("S1", 1, "released")] and r.json()["status"] == "released"
    assert _override(client, mia, o["id"], action="release_hold", reason="x").json()["code"] == "not_held"


def test_override_rate_per_week_and_reason(client, hq, integration):
    h.load(client, hq, integration, w1=10, t1=10)
    a = h.order(client, integration, "OV-3")
    b = h.order(client, integration, "OV-4")
    h.order(client, integration, "OV-5")
    h.order(client, integration, "OV-6")
    for o, where, why in ((a, "T1", "carrier_issue"), (a, "W1", "Carrier_Issue"), (b, "T1", "cost")):
        src = _live(h.get_order(client, integration, o["id"]))[0][0]
        target = where if where != src else ("W1" if src == "T1" else "T1")
        assert _override(client, hq, o["id"], action="move", location=target, reason=why).status_code == 200
    r = client.get("/api/v1/hq/overrides", params={"weeks": 4}, headers=hq)
    assert r.status_code == 200, r.text
    stats = r.json()
    assert len(stats["weeks"]) == 4 and stats["weeks"][0]["start"] < stats["weeks"][-1]["start"]
    this = stats["weeks"][-1]
    assert (this["orders"], this["overrides"], this["overridden_orders"], this["rate"]) == (4, 3, 2, 0.5)
    assert this["by_reason"] == {"carrier_issue": 2, "cost": 1}
    assert [(x["reason"], x["overrides"]) for x in stats["reasons"]] == [("carrier_issue", 2), ("cost", 1)]
    assert stats["rate"] == 0.5 and all(w["overrides"] == 0 for w in stats["weeks"][:-1])
    mia = login(client, "s1-mia", "3333")
    assert client.get("/api/v1/hq/overrides", headers=mia).status_code == 403
