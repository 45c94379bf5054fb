"""A store gives a line back: the stock is corrected, the line is re-routed at once (never back to that store),
and the rest of the task goes on."""
from __future__ import annotations

from sqlmodel import select

from tests.fulfilment.helpers import Tablet, act, get_order, read, released, setup, stock


def _rejections(order_id: str) -> list[tuple]:
    from backend.models import Rejection

    return read(lambda s: [(r.line_id, r.location, r.sku, r.quantity, r.reason, r.note, r.actor) for r in s.exec(
        select(Rejection).where(Rejection.order_id == order_id).order_by(Rejection.at))])


def _blocked(location: str, sku: str) -> bool:
    from backend.models import InventoryPosition

    return read(lambda s: s.get(InventoryPosition, (location, sku)).blocked)


def test_whole_rejection_reroutes_the_line_and_withdraws_the_task(client, hq, integration):
    setup(client, hq, integration)
    oid, tid = released(client, integration, "J-1", "same_day", lines=[("1", "SKU-1", 1)])
    on_hand, reserved = stock("S1", "SKU-1")
    ana = Tablet(client, "s1-ana")
    ana.pull()
    ana.applied(act("reject", tid, line_id="1", reason="not_found"))
    assert _rejections(oid) == [("1", "S1", "SKU-1", 1, "not_found", None, "s1-ana")]
    assert _blocked("S1", "SKU-1"), "not found: nothing more is promised from S1 until a count"
    assert stock("S1", "SKU-1") == (on_hand, reserved - 1), "the reservation is freed, on hand untouched"
    o = get_order(client, integration, oid)
    (line,) = o["lines"]
    allocs = [(a["location"], a["quantity"], a["state"]) for a in line["allocations"]]
    assert ("S1", 1, "rejected") in allocs
    live = [a for a in allocs if a[2] in ("reserved", "released")]
    assert live and all(loc != "S1" for loc, _, _ in live), f"re-routed elsewhere at once: {allocs}"
    assert line["status"] in ("routed", "released") and o["status"] in ("routed", "released")
    assert "line.rejected" in [h["kind"] for h in o["history"]]
    changes = ana.pull()
    assert tid not in ana.tasks, "nothing left for S1: the task is withdrawn"
    assert {"entity": "task", "op": "delete", "id": tid, "data": {"outcome": "rejected"}} in changes
    ana.refused(act("pick", tid, line_id="1"), "rerouted")


def test_partial_rejection_splits_the_allocation_and_the_rest_goes_on(client, hq, integration):
    setup(client, hq, integration)
    oid, tid = released(client, integration, "J-2", "same_day", lines=[("1", "SKU-2", 3), ("2", "SKU-1", 1)])
    on_hand, _ = stock("S1", "SKU-2")
    ana = Tablet(client, "s1-ana")
    ana.pull()
    ana.applied(act("pick", tid, line_id="1", quantity=1))
    ana.refused(act("reject", tid, line_id="1", reason="damaged", quantity=3), "over_quantity")
    ana.applied(act("reject", tid, line_id="1", reason="damaged", quantity=1))
    assert stock("S1", "SKU-2")[0] == on_hand - 1, "damaged: the rejected unit leaves on hand"
    ana.pull()
    line = ana.line(tid, "1")
    assert (line["quantity"], line["picked"], line["rejected"]) == (3, 1, 1)
    assert ana.tasks[tid]["step"] == "pick"
    o = get_order(client, integration, oid)
    allocs = sorted((a["location"], a["quantity"], a["state"]) for a in o["lines"][0]["allocations"])
    assert ("S1", 1, "rejected") in allocs and ("S1", 2, "released") in allocs
    elsewhere = [a for a in allocs if a[0] != "S1"]
    assert sum(q for _, q, _ in elsewhere) == 1, f"the rejected unit is re-routed away from S1: {allocs}"
    ana.applied(act("reject", tid, line_id="2", reason="other", note="box torn open"))
    ana.applied(act("pick", tid, line_id="1", quantity=1))
    ana.pull()
    assert ana.tasks[tid]["step"] == "pack", "every unit picked or given back: on to packing"
    assert ana.line(tid, "2")["rejected"] == 1
    assert [r[4:6] for r in _rejections(oid)] == [("damaged", None), ("other", "box torn open")]
    ana.applied(act("pack", tid))
    ana.applied(act("handover_carrier", tid, carrier="FedEx", tracking=["F1"]))
    o = get_order(client, integration, oid)
    s1 = [a for ln in o["lines"] for a in ln["allocations"] if a["location"] == "S1"]
    assert sorted((a["quantity"], a["state"]) for a in s1) == [(1, "rejected"), (1, "rejected"), (2, "fulfilled")]
    assert o["status"] not in ("shipped", "packed"), "the re-routed units are still on their way"
