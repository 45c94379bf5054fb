"""The closed loop: a store's rejection corrects its stock and lowers its reliability; fulfilled lines raise it."""
from __future__ import annotations

import pytest
from sqlmodel import select

from backend import clock
from backend.models import Event, StockMovement
from backend.services import inventory, reliability
from tests import retailer
from tests.conftest import login
from tests.inventory.util import availability, feed, position

COUNTS = "/api/v1/stores/{}/counts"


def test_not_found_zeroes_atp_until_a_count_and_lowers_the_score(client, hq, integration, session):
    retailer.load(client, hq, integration)  # S1 SKU-2 on hand 5
    inventory.apply_rejection(session, "S1", "SKU-2", 1, "not_found", "s1-ana", "ord_1")
    session.commit()
    p = position(client, hq, "S1", "SKU-2")
    assert (p["on_hand"], p["blocked"], p["atp"]) == (5, True, 0)
    assert "S1" not in [x["location"] for x in availability(client, hq, "SKU-2")["locations"]]
    scores = reliability.reliability_by_location(session)
    assert scores["S1"] < scores["S2"] == pytest.approx(reliability.PRIOR)
    move = session.exec(select(StockMovement).where(StockMovement.cause == "reject")).one()
    assert (move.location, move.sku, move.ref, move.actor) == ("S1", "SKU-2", "ord_1", "s1-ana")
    assert session.exec(select(Event).where(Event.kind == "stock.blocked")).one().data["reason"] == "not_found"
    session.rollback()
    ana = login(client, "s1-ana", "1111")
    c = client.post(COUNTS.format("S1"), json={"sku": "SKU-2", "counted": 5}, headers=ana).json()
    assert c["status"] == "applied"
    p = position(client, hq, "S1", "SKU-2")
    assert (p["blocked"], p["atp"]) == (False, 5)


def test_a_feed_also_clears_the_block(client, hq, integration, session):
    retailer.load(client, hq, integration)
    inventory.apply_rejection(session, "S1", "SKU-2", 1, "not_found", "s1-ana", "ord_1")
    session.commit()
    assert feed(client, integration, [dict(location="S1", sku="SKU-2", on_hand=5)])["changed"] == 1
    assert position(client, hq, "S1", "SKU-2")["atp"] == 5


@pytest.mark.parametrize("reason", ["damaged", "wrong_item"])
def test_damaged_and_wrong_item_take_units_off_never_below_zero(client, hq, integration, session, reason):
    retailer.load(client, hq, integration)  # S1 SKU-1 on hand 2
    inventory.apply_rejection(session, "S1", "SKU-1", 1, reason, "s1-ana", "ord_1")
    inventory.apply_rejection(session, "S1", "SKU-1", 5, reason, "s1-ana", "ord_2")
    session.commit()
    p = position(client, hq, "S1", "SKU-1")
    assert (p["on_hand"], p["blocked"]) == (0, False)
    moves = session.exec(select(StockMovement).where(StockMovement.cause == "reject")
                         .order_by(StockMovement.id)).all()
    assert [m.on_hand_delta for m in moves] == [-1, -1]
    assert reliability.reliability_by_location(session)["S1"] < reliability.PRIOR


@pytest.mark.parametrize("reason", ["customer_hold", "other"])
def test_holds_change_neither_stock_nor_score(client, hq, integration, session, reason):
    retailer.load(client, hq, integration)
    inventory.apply_rejection(session, "S1", "SKU-1", 1, reason, "s1-ana", "ord_1")
    session.commit()
    p = position(client, hq, "S1", "SKU-1")
    assert (p["on_hand"], p["blocked"], p["atp"]) == (2, False, 2)
    assert reliability.reliability_by_location(session)["S1"] == pytest.approx(reliability.PRIOR)


def test_score_is_beta_smoothed_and_decays(client, hq, integration, session):
    retailer.load(client, hq, integration, stock=False)
    for _ in range(30):
        reliability.record_fulfilled(session, "S1", "SKU-1", 1)
    session.commit()
    good = reliability.reliability_by_location(session)["S1"]
    assert good == pytest.approx((30 + 19) / (30 + 20))
    reliability.record_bad(session, "S1", "SKU-1", "reject:not_found")
    session.commit()
    one_bad = reliability.reliability_by_location(session)["S1"]
    assert one_bad == pytest.approx((30 + 19) / (31 + 20), rel=1e-3)
    # A half-life later both tallies count half: the miss weighs more against fewer recent good lines.
    clock.shift(reliability.HALF_LIFE_DAYS * 86400)
    assert reliability.reliability_by_location(session)["S1"] == pytest.approx((15 + 19) / (15.5 + 20), rel=1e-3)
    # ... and long after, the store is back at the prior.
    clock.shift(reliability.HALF_LIFE_DAYS * 86400 * 20)
    assert reliability.reliability_by_location(session)["S1"] == pytest.approx(reliability.PRIOR, abs=1e-3)
    assert reliability.reliability_of(session, "S1", "general") == pytest.approx(reliability.PRIOR, abs=1e-3)
