"""A store's task from release to handover: every step, and what the order and the stock say afterwards."""
from __future__ import annotations

import hashlib

from sqlmodel import select

from tests.fulfilment.helpers import Tablet, act, get_order, read, released, setup, stock

BARCODE_1 = "0012345678905"  # SKU-1
BARCODE_2 = "0012345678912"  # SKU-2


def test_ship_from_store_pick_pack_handover(client, hq, integration):
    setup(client, hq, integration)
    oid, tid = released(client, integration, "F-1", "same_day", lines=[("1", "SKU-1", 2), ("2", "SKU-2", 1)])
    ana = Tablet(client, "s1-ana")
    ana.pull()
    t = ana.tasks[tid]
    assert t["step"] == "pick" and t["assignee"] is None and t["order_id"] == oid
    assert t["order_number"] == "F-1" and t["delivery_method"] == "same_day" and t["pickup_code_sha256"] is None
    assert [(x["line_id"], x["sku"], x["quantity"], x["picked"], x["rejected"]) for x in t["lines"]] == [
        ("1", "SKU-1", 2, 0, 0), ("2", "SKU-2", 1, 0, 0)]
    assert ana.line(tid, "1")["barcodes"] == [BARCODE_1] and ana.line(tid, "1")["name"] == "Trail runner 42"
    assert {"SKU-1", "SKU-2"} <= set(ana.products) and ana.products["SKU-1"]["barcodes"] == [BARCODE_1]

    ana.applied(act("pick", tid, line_id="1", quantity=1, barcode=BARCODE_1))
    ana.pull()
    assert ana.tasks[tid]["assignee"] == "s1-ana", "a pick on an unclaimed task claims it"
    assert ana.line(tid, "1")["picked"] == 1 and ana.tasks[tid]["step"] == "pick"
    ana.applied(act("pick", tid, line_id="1", quantity=1))  # a tap, no scan
    ana.applied(act("pick", tid, line_id="2", barcode=BARCODE_2))
    ana.pull()
    assert ana.tasks[tid]["step"] == "pack"
    assert get_order(client, integration, oid)["status"] == "picked"

    ana.applied(act("pack", tid, packages=2, box="M", weight_kg=3.0))
    ana.pull()
    assert ana.tasks[tid]["step"] == "handover"
    o = get_order(client, integration, oid)
    assert o["status"] == "packed" and {ln["status"] for ln in o["lines"]} == {"packed"}
    assert {a["state"] for ln in o["lines"] for a in ln["allocations"]} == {"packed"}

    before = stock("S1", "SKU-1")
    ana.applied(act("handover_carrier", tid, carrier="UPS", tracking=["1Z001", "1Z002"]))
    ana.pull()
    assert ana.tasks[tid]["step"] == "done"
    o = get_order(client, integration, oid)
    assert o["status"] == "shipped" and {ln["status"] for ln in o["lines"]} == {"shipped"}
    assert {a["state"] for ln in o["lines"] for a in ln["allocations"]} == {"fulfilled"}
    assert stock("S1", "SKU-1") == (before[0] - 2, before[1] - 2), "shipped units leave on hand"
    kinds = [h["kind"] for h in o["history"]]
    assert {"task.created", "line.picked", "task.packed", "task.shipped"} <= set(kinds)

    m = client.get("/api/v1/stores/S1/manifests", headers=ana.headers).json()
    (ups,) = m["manifests"]
    assert ups["carrier"] == "UPS" and ups["packages"] == 2 and ups["weight_kg"] == 3.0
    assert sorted(x["tracking"] for x in ups["items"]) == ["1Z001", "1Z002"]
    assert {x["order_id"] for x in ups["items"]} == {oid}
    assert client.get(f"/api/v1/stores/S1/manifests?date={m['date']}", headers=hq).json() == m
    assert client.get("/api/v1/stores/S1/manifests?date=2001-01-01", headers=hq).json()["manifests"] == []
    assert client.get("/api/v1/stores/S1/manifests?date=yesterday", headers=hq).status_code == 422
    cai = Tablet(client, "s2-cai")
    assert client.get("/api/v1/stores/S1/manifests", headers=cai.headers).status_code == 403


def test_store_pickup_goes_pick_then_handover_with_a_code(client, hq, integration):
    from backend.models import Event, Task

    setup(client, hq, integration)
    oid, tid = released(client, integration, "P-1", "pickup", lines=[("1", "SKU-2", 2)], pickup_location="S1")
    ana = Tablet(client, "s1-ana")
    ana.pull()
    assert ana.tasks[tid]["delivery_method"] == "pickup" and ana.tasks[tid]["pickup_code_sha256"] is None
    ana.applied(act("claim", tid))
    ana.applied(act("pick", tid, line_id="1", quantity=2, barcode=BARCODE_2))
    ana.pull()
    t = ana.tasks[tid]
    assert t["step"] == "handover", "a store pickup skips packing"
    code = read(lambda s: s.get(Task, tid).pickup_code)
    assert code and len(code) == 4 and code.isdigit()
    assert t["pickup_code_sha256"] == hashlib.sha256(f"{tid}:{code}".encode()).hexdigest()
    ready = read(lambda s: [e.data for e in s.exec(select(Event).where(Event.kind == "pickup.ready",
                                                                        Event.order_id == oid))])
    assert len(ready) == 1 and ready[0]["pickup_code"] == code
    assert get_order(client, integration, oid)["status"] == "picked"

    ana.refused(act("pack", tid, packages=1), "wrong_state")
    ana.refused(act("handover_carrier", tid, carrier="UPS"), "wrong_state")
    wrong = "0000" if code != "0000" else "1111"
    ana.refused(act("handover_customer", tid, pickup_code=wrong), "wrong_pickup_code")
    ana.refused(act("handover_customer", tid), "wrong_pickup_code")
    before = stock("S1", "SKU-2")
    ana.applied(act("handover_customer", tid, pickup_code=code))
    o = get_order(client, integration, oid)
    assert o["status"] == "collected" and o["lines"][0]["status"] == "collected"
    assert stock("S1", "SKU-2") == (before[0] - 2, before[1] - 2)
    ana.pull()
    assert ana.tasks[tid]["step"] == "done"
    ana.refused(act("handover_customer", tid, pickup_code=code), "wrong_state")
