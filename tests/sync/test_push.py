"""Push: each action applied exactly once, whoever sends it and however often; conflicts reported, nothing lost."""
from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.exc import OperationalError
from sqlmodel import func, select

from tests.fulfilment.helpers import Tablet, act, get_order, read, released, setup

BARCODE_2 = "0012345678912"  # SKU-2


def _count(model, *where) -> int:
    return read(lambda s: s.exec(select(func.count()).select_from(model).where(*where)).one())


def _picked_events(order_id: str) -> int:
    from backend.models import Event

    return _count(Event, Event.kind == "line.picked", Event.order_id == order_id)


def test_a_replayed_batch_gets_its_first_results_and_changes_nothing(client, hq, integration):
    from backend.models import SyncAction

    setup(client, hq, integration)
    oid, tid = released(client, integration, "X-1", "same_day", lines=[("1", "SKU-2", 2)])
    ana = Tablet(client, "s1-ana")
    batch = [act("claim", tid), act("pick", tid, line_id="1", barcode=BARCODE_2),
             act("pick", tid, line_id="1", quantity=5), act("pick", tid, line_id="1", barcode=BARCODE_2)]
    batch.append(dict(batch[1]))  # the same id twice in one batch
    first = ana.push(*batch)
    assert [r["id"] for r in first] == [a["id"] for a in batch], "results in request order"
    assert [(r["status"], r["code"]) for r in first] == [
        ("applied", None), ("applied", None), ("rejected", "over_quantity"), ("applied", None), ("applied", None)]
    ana.pull()
    state = ana.tasks[tid]
    again = ana.push(*batch)
    assert again == first
    ana.pull()
    assert ana.tasks[tid] == state and ana.line(tid)["picked"] == 2 and state["step"] == "pack"
    assert _picked_events(oid) == 2 and _count(SyncAction) == 4


def test_two_devices_sending_the_same_actions_in_different_orders(client, hq, integration):
    from backend.models import SyncAction

    setup(client, hq, integration)
    oid, tid = released(client, integration, "X-2", "same_day", lines=[("1", "SKU-2", 2), ("2", "SKU-1", 1)])
    a_dev = Tablet(client, "s1-ana", device_id="tab-a")
    b_dev = Tablet(client, "s1-ana", device_id="tab-b")
    ben = Tablet(client, "s1-ben", device_id="tab-c")
    actions = [act("claim", tid), act("pick", tid, line_id="1"), act("pick", tid, line_id="1"),
               act("pick", tid, line_id="2"), act("pick", tid, line_id="2")]
    shuffled = actions[::-1]
    random.Random(7).shuffle(shuffled)
    b_results = {r["id"]: r for r in b_dev.push(*shuffled)}
    a_results = a_dev.push(*actions)
    assert [r["id"] for r in a_results] == [a["id"] for a in actions]
    assert all(r == b_results[r["id"]] for r in a_results), "device A gets the results B's sending produced"
    assert sorted(r["status"] for r in a_results) == ["applied"] * 4 + ["rejected"], "line 2 has one unit only"
    assert ben.push(*actions) == a_results, "a known action id answers the same from any device"
    a_dev.pull()
    t = a_dev.tasks[tid]
    assert (a_dev.line(tid, "1")["picked"], a_dev.line(tid, "2")["picked"], t["step"]) == (2, 1, "pack")
    assert _picked_events(oid) == 3 and _count(SyncAction) == 5


def test_the_same_batch_pushed_concurrently_is_applied_once(client, hq, integration):
    from backend.models import SyncAction

    setup(client, hq, integration)
    oid, tid = released(client, integration, "X-3", "same_day", lines=[("1", "SKU-2", 4)])
    tablets = [Tablet(client, "s1-ana", device_id=f"tab-{i}") for i in range(4)]
    batch = [act("pick", tid, line_id="1") for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda t: t.push(*batch), tablets))
    assert all(r == results[0] for r in results)
    assert [r["status"] for r in results[0]] == ["applied"] * 4
    tablets[0].pull()
    assert tablets[0].line(tid)["picked"] == 4 and _picked_events(oid) == 4 and _count(SyncAction) == 4


def test_a_temporary_failure_is_not_recorded_and_the_retry_applies(client, hq, integration, monkeypatch):
    from backend.models import SyncAction
    from backend.services import actions, sync

    setup(client, hq, integration)
    oid, tid = released(client, integration, "X-4", "same_day", lines=[("1", "SKU-2", 2)])
    ana = Tablet(client, "s1-ana")
    real = actions.apply

    def db_down(session, p, a):
        raise OperationalError("UPDATE storeversion", {}, Exception("server closed the connection"))

    monkeypatch.setattr(actions, "apply", db_down)
    first = act("pick", tid, line_id="1")
    body = ana.push(first, status=503)
    assert body["code"] == "database_unavailable" and _count(SyncAction) == 0

    calls = {"n": 0}

    def second_fails(session, p, a):
        calls["n"] += 1
        if calls["n"] == 2:
            db_down(session, p, a)
        return real(session, p, a)

    monkeypatch.setattr(actions, "apply", second_fails)
    second = act("pick", tid, line_id="1")
    ana.push(first, second, status=503)  # one commit group: all of it, or nothing
    assert _count(SyncAction) == 0 and _picked_events(oid) == 0

    calls["n"] = 0
    monkeypatch.setattr(sync, "COMMIT_EVERY", 1)
    partial = ana.push(first, second)
    assert [(r["id"], r["status"]) for r in partial] == [(first["id"], "applied")], "the rest is sent again"
    monkeypatch.setattr(actions, "apply", real)
    done = ana.push(first, second)
    assert [r["status"] for r in done] == ["applied", "applied"] and done[0] == partial[0]
    assert _picked_events(oid) == 2


def test_a_failure_inside_an_action_leaves_nothing_half_done(client, hq, integration, monkeypatch):
    from backend.models import Package
    from backend.models.fulfilment import Manifest
    from backend.services import reservations

    setup(client, hq, integration)
    oid, tid = released(client, integration, "X-5", "same_day", lines=[("1", "SKU-2", 1)])
    ana = Tablet(client, "s1-ana")
    ana.applied(act("pick", tid, line_id="1"))
    ana.applied(act("pack", tid, packages=1))

    def crash(*args, **kw):
        raise OperationalError("UPDATE inventory", {}, Exception("connection lost"))

    monkeypatch.setattr(reservations, "consume", crash)
    handover = act("handover_carrier", tid, carrier="UPS", tracking=["1Z9"])
    ana.push(handover, status=503)
    assert _count(Manifest) == 0 and _count(Package, Package.shipped_at.is_not(None)) == 0  # type: ignore
    assert get_order(client, integration, oid)["status"] == "packed"
    monkeypatch.undo()
    assert ana.one(handover)["status"] == "applied"
    assert get_order(client, integration, oid)["status"] == "shipped" and _count(Manifest) == 1


def test_an_offline_tablet_replays_and_each_conflict_is_reported(client, hq, integration):
    setup(client, hq, integration)
    o1, t1 = released(client, integration, "OFF-1", "same_day", lines=[("1", "SKU-2", 1)])
    o2, t2 = released(client, integration, "OFF-2", "same_day", lines=[("1", "SKU-2", 1)])
    o3, t3 = released(client, integration, "OFF-3", "same_day", lines=[("1", "SKU-2", 1)])
    o5, t5 = released(client, integration, "OFF-5", "same_day", lines=[("1", "SKU-2", 1), ("2", "SKU-1", 1)])
    ana, ben, mia = Tablet(client, "s1-ana"), Tablet(client, "s1-ben"), Tablet(client, "s1-mia")
    ana.pull()
    assert {t1, t2, t3, t5} <= set(ana.tasks)

    # While the tablet is offline: HQ cancels one order, Ben gives two lines back (re-routed at once),
    # and the manager hands the half-re-routed order to Ana.
    assert client.post(f"/api/v1/orders/{o1}/cancel", json={"reason": "fraud check"},
                       headers=integration).status_code == 200
    ben.applied(act("reject", t2, line_id="1", reason="customer_hold"))
    ben.applied(act("reject", t5, line_id="1", reason="customer_hold"))
    r = client.post(f"/api/v1/stores/S1/tasks/{t5}/assign", json={"assignee": "s1-ana"}, headers=mia.headers)
    assert r.status_code == 200

    outbox = [act("claim", t1), act("pick", t1, line_id="1"),
              act("claim", t2), act("pick", t2, line_id="1"),
              act("claim", t3), act("pick", t3, line_id="1", barcode=BARCODE_2), act("pack", t3, packages=1),
              act("pick", t5, line_id="1"), act("pick", t5, line_id="2"),
              act("count", sku="SKU-3", counted=0)]
    results = ana.push(*outbox)
    got = [(r["status"], r["code"]) for r in results]
    assert got == [("rejected", "order_cancelled"), ("rejected", "order_cancelled"),
                   ("rejected", "rerouted"), ("rejected", "rerouted"),
                   ("applied", None), ("applied", None), ("applied", None),
                   ("rejected", "rerouted"), ("applied", None),
                   ("applied", None)], results
    assert all(r["message"] for r in results), "every result carries a sentence for the screen"
    assert ana.push(*outbox) == results

    changes = ana.pull()
    tasks = {c["id"]: c for c in changes if c["entity"] == "task"}
    assert tasks[t1]["op"] == "delete" and tasks[t1]["data"]["outcome"] == "cancelled"
    assert tasks[t2]["op"] == "delete"
    assert ana.tasks[t3]["step"] == "handover" and ana.tasks[t5]["step"] == "pack"
    assert (ana.line(t5, "1")["rejected"], ana.line(t5, "2")["picked"]) == (1, 1)
    fresh = Tablet(client, "s1-mia", device_id="fresh")
    fresh.pull()
    live = {k: v for k, v in ana.tasks.items() if v["step"] != "done"}
    assert live == fresh.tasks, "after replaying, the tablet's copy is the server's"
    o2_allocs = get_order(client, integration, o2)["lines"][0]["allocations"]
    assert any(a["location"] != "S1" and a["state"] in ("reserved", "released") for a in o2_allocs)
    assert get_order(client, integration, o1)["status"] == "cancelled"


def test_count_action_goes_to_the_count_service(client, hq, integration):
    setup(client, hq, integration)
    ana = Tablet(client, "s1-ana")
    ok = ana.applied(act("count", sku="SKU-2", counted=5))
    assert "applied" in ok["message"]
    ana.refused(act("count", sku="NOPE", counted=1), "unknown_sku")
    ana.refused(act("count", sku="SKU-2"), "invalid_action")


def test_refused_actions_amid_applied_ones_leave_nothing_behind(client, hq, integration, monkeypatch):
    """A batch runs without a savepoint per action while no refused action has changed anything; one that did
    (here a handler that changes the task and then refuses) sends its group through savepoints again: the same
    results, each applied action once, nothing of the refused one."""
    from backend.models import Event, SyncAction, Task
    from backend.services import actions
    from shared.enums import ActionType

    setup(client, hq, integration)
    o1, t1 = released(client, integration, "MIX-1", "same_day", lines=[("1", "SKU-2", 2)])
    o2, t2 = released(client, integration, "MIX-2", "same_day", lines=[("1", "SKU-2", 1)])
    o3, t3 = released(client, integration, "MIX-3", "same_day", lines=[("1", "SKU-2", 1)])
    ana = Tablet(client, "s1-ana")
    batch = [act("pick", t1, line_id="1", barcode="0000000000000"),  # not in the catalogue
             act("pick", t1, line_id="1", barcode=BARCODE_2),
             act("pick", t1, line_id="1", quantity=5),  # more than is left
             act("claim", t2), act("pick", t2, line_id="1", barcode=BARCODE_2),
             act("pick", t1, line_id="1")]
    got = ana.push(*batch)
    assert [(r["status"], r["code"]) for r in got] == [
        ("rejected", "wrong_barcode"), ("applied", None), ("rejected", "over_quantity"),
        ("applied", None), ("applied", None), ("applied", None)], got
    assert _picked_events(o1) == 2 and _picked_events(o2) == 1 and _count(SyncAction) == len(batch)
    assert ana.push(*batch) == got and _picked_events(o1) == 2

    real = actions._HANDLERS[ActionType.claim]

    def claim_then_refuse(session, p, a, ctx):
        if a.task_id == t3:
            ctx.task.priority = 99
            session.flush()
            raise actions.ActionRejected("wrong_state", "changed, then refused")
        return real(session, p, a, ctx)

    monkeypatch.setitem(actions._HANDLERS, ActionType.claim, claim_then_refuse)
    second = [act("claim", t3), act("pick", t3, line_id="1"), act("claim", t3)]
    got = ana.push(*second)
    assert [(r["status"], r["code"]) for r in got] == [
        ("rejected", "wrong_state"), ("applied", None), ("rejected", "wrong_state")], got
    assert read(lambda s: s.get(Task, t3).priority) == 0
    assert _picked_events(o3) == 1 and _count(Event, Event.kind == "task.claimed", Event.order_id == o3) == 1
    assert read(lambda s: s.get(Task, t3).assignee) == "s1-ana"
    monkeypatch.undo()
    assert ana.push(*second) == got and _count(SyncAction) == len(batch) + len(second)
