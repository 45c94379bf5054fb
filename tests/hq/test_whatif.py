"""What-if: four same-day orders near Albany went to the Harrisburg DC (the routing setting in force made store picks
dear). Replayed with cheap store handling and the batch switched off, they go to the stores that had the stock at
the time: S1 had 2 units then (its 3 from a later feed do not count), S2 had 1, and the last order still ships from
the DC."""
from __future__ import annotations

from datetime import timedelta

import pytest

from backend.db import session_scope
from backend.models import Allocation, InventoryPosition, StockMovement
from tests.conftest import login
from tests.hq import data
from tests.hq.data import T0, alloc, order

FROM, TO = T0 - timedelta(hours=25), T0 - timedelta(hours=1)


def _history(s) -> None:
    s.add_all([InventoryPosition(location="S1", sku="SKU-1", on_hand=5),
               InventoryPosition(location="S2", sku="SKU-1", on_hand=1),
               InventoryPosition(location="W1", sku="SKU-1", on_hand=96)])
    # an order from before the period held 1 unit at S1 at `from` and was fulfilled during it
    order(s, "pre", "standard", promise=FROM + timedelta(days=3), created=FROM - timedelta(hours=5), status="shipped")
    alloc(s, "pre", "S1", "SKU-1", 1, "fulfilled", FROM - timedelta(hours=5), fulfilled=FROM + timedelta(hours=5))
    s.add(StockMovement(at=FROM - timedelta(hours=5), location="S1", sku="SKU-1", reserved_delta=1, cause="reserve",
                        ref="pre"))
    s.add(StockMovement(at=FROM + timedelta(hours=5), location="S1", sku="SKU-1", on_hand_delta=-1, reserved_delta=-1,
                        cause="fulfil", ref="pre"))
    # the four orders of the period, all served from W1; the first was rejected by S2 before
    for k in range(1, 5):
        created = FROM + timedelta(hours=k)
        oid = f"sd{k}"
        order(s, oid, "same_day", promise=created + timedelta(hours=8), created=created, status="shipped")
        a = alloc(s, oid, "W1", "SKU-1", 1, "fulfilled", created, created, created, created + timedelta(hours=6),
                  created=created + timedelta(minutes=1))
        if k == 1:
            s.add(Allocation(id="alc_sd1_s2", order_id=oid, line_pk=a.line_pk, location="S2", sku="SKU-1", quantity=1,
                             state="rejected", created_at=created, rejected=1))
        s.add(StockMovement(at=created, location="W1", sku="SKU-1", reserved_delta=1, cause="reserve", ref=oid))
        s.add(StockMovement(at=created + timedelta(hours=6), location="W1", sku="SKU-1", on_hand_delta=-1,
                            reserved_delta=-1, cause="fulfil", ref=oid))
    # after the period: S1 got 3 more units
    s.add(StockMovement(at=T0 - timedelta(minutes=30), location="S1", sku="SKU-1", on_hand_delta=3, cause="feed",
                        ref="feed_1"))
    # not in the period
    order(s, "later", "same_day", promise=T0 + timedelta(hours=5), created=T0 - timedelta(minutes=20))
    s.commit()


@pytest.fixture
def past(client, hq, integration):
    data.setup(client, hq, integration)
    mia = login(client, "s1-mia", "3333")
    r = client.put("/api/v1/routing/settings", headers=hq, json={"weights": {"handling": {"store": 50.0}}})
    assert r.status_code == 200
    data.freeze()
    with session_scope() as s:
        _history(s)
    return {"hq": hq, "mia": mia}


def _run(client, headers, **body):
    return client.post("/api/v1/hq/whatif", headers=headers,
                       json={"from": FROM.isoformat(), "to": TO.isoformat()} | body)


def test_whatif_without_the_batch_compares_side_by_side(client, past):
    r = _run(client, past["hq"], weights={"handling": {"store": 2.5}}, batch=False)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["orders"], out["batch"], out["priced_with_version"]) == (4, False, 1)
    assert out["weights"]["handling"]["store"] == 2.5 and out["weights"]["handling"]["warehouse"] == 0.75

    actual, whatif = out["actual"], out["whatif"]
    assert actual["store_load"] == {"W1": 4}
    assert whatif["store_load"] == {"S1": 2, "S2": 1, "W1": 1}
    assert (actual["packages"], whatif["packages"]) == (4, 4)
    assert (actual["promises_kept"], whatif["promises_kept"]) == (0.0, 0.75)
    assert whatif["promises_kept_by_method"] == {"same_day": 0.75}
    assert (actual["split_rate"], whatif["split_rate"], actual["unfilled_lines"], whatif["unfilled_lines"]) == (
        0.0, 0.0, 0, 0)
    # priced with the setting in force (store handling 50): the stores cost more, and the misses cost less
    assert whatif["terms"]["handling"] == round(3 * 50 + 0.75, 2) and actual["terms"]["handling"] == 3.0
    assert actual["terms"]["promise_miss"] == 160.0 and whatif["terms"]["promise_miss"] == 40.0
    shipping = sum(actual["terms"][t] for t in ("package", "transfer", "units", "handling"))
    assert actual["shipping_cost"] == pytest.approx(shipping, abs=0.02)
    rows = {c["figure"]: c for c in out["comparison"]}
    assert list(rows) == ["total_cost", "shipping_cost", "packages", "split_rate", "promises_kept", "unfilled_lines"]
    assert rows["promises_kept"] == {"figure": "promises_kept", "actual": 0.0, "whatif": 0.75, "change": 0.75}
    assert rows["total_cost"]["change"] == round(whatif["total_cost"] - actual["total_cost"], 4)
    assert out["orders_changed"] == 3
    assert {e["order_id"]: e["whatif"] for e in out["examples"]} == {"sd1": ["S1"], "sd2": ["S1"], "sd3": ["S2"]}
    assert all(e["actual"] == ["W1"] for e in out["examples"])
    assert any("rebuilt from stock movements" in n for n in out["notes"])


def test_whatif_with_the_batch_replays_it(client, past):
    with session_scope() as s:  # two standard orders, held back from release: the batch may move them
        for k in (1, 2):
            created = FROM + timedelta(hours=5, minutes=k)
            order(s, f"st{k}", "standard", promise=created + timedelta(days=5), created=created, status="shipped")
            alloc(s, f"st{k}", "W1", "SKU-1", 1, "fulfilled", FROM + timedelta(hours=6))
        s.commit()
    off = _run(client, past["hq"], weights={"handling": {"store": 2.5}}, batch=False).json()
    r = _run(client, past["hq"], weights={"handling": {"store": 2.5}}, batch=True)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["batch"], out["orders"], off["batch_runs"]) == (True, 6, 0) and out["batch_runs"] >= 1
    assert any("Batch optimisation replayed" in n for n in out["notes"])
    load = out["whatif"]["store_load"]
    assert sum(load.values()) == 6 and load.get("S1", 0) <= 2 and load.get("S2", 0) <= 1  # the stock of the time


def test_whatif_refuses_bad_input(client, past):
    h = past["hq"]
    assert _run(client, h, weights={"bogus": 1}).json()["code"] == "invalid_weights"
    r = client.post("/api/v1/hq/whatif", headers=h, json={"from": TO.isoformat(), "to": FROM.isoformat()})
    assert r.status_code == 422 and r.json()["code"] == "invalid_period"
    r = client.post("/api/v1/hq/whatif", headers=h, json={"from": "2026-11-01T00:00:00", "to": TO.isoformat()})
    assert r.status_code == 422
    assert _run(client, past["mia"]).status_code == 403
