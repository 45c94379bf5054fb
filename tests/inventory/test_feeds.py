"""Stock feeds: snapshot and delta, JSON and CSV, row-level rejections, one transaction, traceable changes."""
from __future__ import annotations

from sqlmodel import select

from backend.models import Event, ExceptionItem, StockMovement
from backend.services import reservations
from tests import retailer
from tests.inventory.util import LEVELS, feed, position


def test_snapshot_applies_good_rows_and_lists_bad_ones(client, hq, integration):
    retailer.load(client, hq, integration, stock=False)
    rows = [
        dict(location="S1", sku="SKU-1", on_hand=7),
        dict(location="NOPE", sku="SKU-1", on_hand=1),
        dict(location="S1", sku="NOPE", on_hand=1),
        dict(location="S1", sku="SKU-2", on_hand=-3),
        dict(location="S1", sku="SKU-3"),
        dict(location="S2", sku="SKU-1", on_hand="many"),
        dict(location="S2", sku="SKU-2", on_hand=4, safety_stock=1, holdback=2),
        "not an object",
    ]
    body = feed(client, integration, rows)
    assert body["applied"] == 2
    assert [(x["row"], x["code"]) for x in body["rejected"]] == [
        (2, "unknown_location"), (3, "unknown_sku"), (4, "negative_on_hand"), (5, "missing_field"),
        (6, "invalid_row"), (8, "invalid_row")]
    assert all(x["message"] for x in body["rejected"])
    assert position(client, hq, "S1", "SKU-1")["on_hand"] == 7
    s2 = position(client, hq, "S2", "SKU-2")
    assert (s2["on_hand"], s2["safety_stock"], s2["holdback"], s2["atp"]) == (4, 1, 2, 1)
    assert position(client, hq, "S1", "SKU-2") is None and position(client, hq, "S1", "SKU-3") is None


def test_csv_snapshot_and_delta(client, hq, integration):
    retailer.load(client, hq, integration, stock=False)
    csv = "location,sku,on_hand\nS1,SKU-1,5\nS1,SKU-2,-1\nZZ,SKU-2,3\nS2,SKU-1,2\n"
    r = client.put(LEVELS, content=csv, headers={**integration, "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["applied"] == 2
    assert [(x["row"], x["code"]) for x in r.json()["rejected"]] == [(2, "negative_on_hand"), (3, "unknown_location")]
    # A CSV with a delta column is a delta feed.
    csv = "location,sku,delta\nS1,SKU-1,-2\nS2,SKU-1,-5\nS2,SKU-1,1\n"
    r = client.put(LEVELS, content=csv, headers={**integration, "content-type": "text/csv"})
    assert r.json()["applied"] == 2
    assert [(x["row"], x["code"]) for x in r.json()["rejected"]] == [(2, "below_zero")]
    assert position(client, hq, "S1", "SKU-1")["on_hand"] == 3
    assert position(client, hq, "S2", "SKU-1")["on_hand"] == 3


def test_delta_rows_apply_in_order_and_never_go_below_zero(client, hq, integration):
    retailer.load(client, hq, integration)  # S1 SKU-1 on hand 2
    body = feed(client, integration, [
        dict(location="S1", sku="SKU-1", delta=-3),
        dict(location="S1", sku="SKU-1", delta=4),
        dict(location="S1", sku="SKU-1", delta=-5),
        dict(location="S1", sku="SKU-1", on_hand=9),
        dict(location="S3", sku="SKU-1", delta=2),
    ], mode="delta")
    assert body["applied"] == 3
    assert [(x["row"], x["code"]) for x in body["rejected"]] == [(1, "below_zero"), (4, "missing_field")]
    assert position(client, hq, "S1", "SKU-1")["on_hand"] == 1
    assert position(client, hq, "S3", "SKU-1")["on_hand"] == 2


def test_feed_keeps_reservations_and_raises_a_shortfall(client, hq, integration, session):
    retailer.load(client, hq, integration)  # S1 SKU-2 on hand 5
    assert reservations.reserve(session, "S1", "SKU-2", 4, ref="ord_x")
    session.commit()
    body = feed(client, integration, [dict(location="S1", sku="SKU-2", on_hand=1)])
    assert body["applied"] == 1 and body["changed"] == 1
    p = position(client, hq, "S1", "SKU-2")
    assert (p["on_hand"], p["reserved"], p["atp"]) == (1, 4, 0)
    exc = session.exec(select(ExceptionItem).where(ExceptionItem.kind == "stock_shortfall")).one()
    assert (exc.location, exc.sku, exc.status) == ("S1", "SKU-2", "open") and exc.message and exc.action
    session.rollback()  # end the read (SQLite: every transaction holds the one write lock)
    # The same shortfall again refreshes the one exception rather than adding another.
    feed(client, integration, [dict(location="S1", sku="SKU-2", on_hand=2)])
    assert len(session.exec(select(ExceptionItem).where(ExceptionItem.kind == "stock_shortfall")).all()) == 1


def test_every_change_is_traceable_to_its_feed(client, hq, integration, session):
    retailer.load(client, hq, integration, stock=False)
    first = feed(client, integration, [dict(location="S1", sku="SKU-1", on_hand=3),
                                       dict(location="S2", sku="SKU-1", on_hand=0)])
    second = feed(client, integration, [dict(location="S1", sku="SKU-1", on_hand=3),  # unchanged
                                        dict(location="S2", sku="SKU-1", on_hand=6)])
    assert (first["changed"], second["changed"]) == (2, 1)
    moves = session.exec(select(StockMovement).where(StockMovement.cause == "feed")
                         .order_by(StockMovement.id)).all()
    assert [(m.location, m.on_hand_delta, m.ref) for m in moves] == [
        ("S1", 3, first["feed_id"]), ("S2", 0, first["feed_id"]), ("S2", 6, second["feed_id"])]
    fed = session.exec(select(Event).where(Event.kind == "stock.fed").order_by(Event.id)).all()
    assert [e.entity_id for e in fed] == [first["feed_id"], second["feed_id"]]
    assert fed[1].data["changed"] == 1 and fed[1].actor


def test_only_hq_and_integrations_feed(client, hq, integration):
    retailer.load(client, hq, integration, stock=False)
    from tests.conftest import login

    ana = login(client, "s1-ana", "1111")
    body = {"mode": "snapshot", "rows": [dict(location="S1", sku="SKU-1", on_hand=1)]}
    assert client.put(LEVELS, json=body).status_code == 401
    r = client.put(LEVELS, json=body, headers=ana)
    assert r.status_code == 403 and r.json()["code"] == "forbidden_role"
    assert client.put(LEVELS, json=body, headers=hq).status_code == 200
    bad = client.put(LEVELS, json={"mode": "sometimes", "rows": []}, headers=hq)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"
    assert client.put(LEVELS, content=b"{nope", headers={**hq, "content-type": "application/json"}
                      ).json()["code"] == "invalid_json"
