"""Released allocations become store tasks: one per (order, store), extended, brought back, never for non-stores."""
from __future__ import annotations

from sqlmodel import select

from tests.fulfilment.helpers import Tablet, act, get_order, order, read, release, released, setup


def _release_more(order_id: str, location: str, qty: int = 1) -> None:
    """Route one more unit of line 1 to `location` by hand, as routing does: reserve, allocate, release."""
    from backend.db import session_scope
    from backend.ids import new_id
    from backend.models import Allocation, OrderLine
    from backend.services import fulfilment, reservations

    with session_scope() as s:
        line = s.exec(select(OrderLine).where(OrderLine.order_id == order_id, OrderLine.line_id == "1")).one()
        assert reservations.reserve(s, location, line.sku, qty, ref=order_id)
        a = Allocation(id=new_id("alc"), order_id=order_id, line_pk=line.id, location=location, sku=line.sku,
                       quantity=qty, state="released")
        s.add(a)
        s.flush()
        fulfilment.on_released(s, [a])
        s.commit()


def _tasks(order_id: str) -> list[tuple]:
    from backend.models import Allocation, Task
    from backend.services import storeversion

    def get(s):
        out = []
        for t in s.exec(select(Task).where(Task.order_id == order_id).order_by(Task.created_at)):
            n = len(s.exec(select(Allocation).where(Allocation.task_id == t.id)).all())
            out.append((t.id, t.location, t.step, t.deleted, n, t.version == storeversion.current(s, t.location)))
        return out

    return read(get)


def test_one_task_per_order_and_store_extended_and_none_for_warehouses(client, hq, integration):
    setup(client, hq, integration)
    oid, tid = released(client, integration, "T-1", "same_day", lines=[("1", "SKU-2", 1)])
    assert _tasks(oid) == [(tid, "S1", "pick", False, 1, True)]
    ana = Tablet(client, "s1-ana")
    ana.pull()
    ana.applied(act("pick", tid, line_id="1"))
    assert _tasks(oid)[0][2] == "pack"
    _release_more(oid, "S1")
    _release_more(oid, "W1")
    assert _tasks(oid) == [(tid, "S1", "pick", False, 2, True)], "extended, back to pick; no task at W1"
    ana.pull()
    assert ana.line(tid)["quantity"] == 2 and ana.line(tid)["picked"] == 1


def test_a_task_comes_back_when_its_order_is_routed_back(client, hq, integration):
    setup(client, hq, integration)
    oid, tid = released(client, integration, "T-2", "same_day", lines=[("1", "SKU-2", 1)])
    ana = Tablet(client, "s1-ana")
    ana.pull()
    ana.applied(act("reject", tid, line_id="1", reason="customer_hold"))
    ana.pull()
    assert tid not in ana.tasks and _tasks(oid)[0][3] is True
    _release_more(oid, "S1")
    ana.pull()
    assert _tasks(oid)[0][:4] == (tid, "S1", "pick", False)
    assert ana.tasks[tid]["step"] == "pick" and ana.line(tid)["quantity"] == 2 and ana.line(tid)["rejected"] == 1


def test_a_finished_task_is_not_reopened(client, hq, integration):
    setup(client, hq, integration)
    oid, tid = released(client, integration, "T-3", "pickup", lines=[("1", "SKU-2", 1)], pickup_location="S1")
    from backend.models import Task

    ana = Tablet(client, "s1-ana")
    ana.applied(act("pick", tid, line_id="1"))
    code = read(lambda s: s.get(Task, tid).pickup_code)
    ana.applied(act("handover_customer", tid, pickup_code=code))
    _release_more(oid, "S1")
    tasks = _tasks(oid)
    assert [t[2] for t in tasks] == ["done", "pick"] and tasks[1][0] != tid


def test_orders_not_at_a_store_get_no_task(client, hq, integration):
    setup(client, hq, integration)
    o = order(client, integration, "T-4", "same_day", lines=[("1", "SKU-3", 20)])
    release(o["id"])
    got = get_order(client, integration, o["id"])
    assert [(a["location"], a["state"]) for a in got["lines"][0]["allocations"]] == [("W1", "released")]
    assert _tasks(o["id"]) == []
