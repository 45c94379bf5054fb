"""Every action is checked against the task's state, the actor's store and role; each refusal has its code."""
from __future__ import annotations

from tests.fulfilment.helpers import Tablet, act, get_order, released, setup

BARCODE_1 = "0012345678905"  # SKU-1
BARCODE_2 = "0012345678912"  # SKU-2


def test_refusals_leave_the_task_as_it_was(client, hq, integration):
    setup(client, hq, integration)
    oid, tid = released(client, integration, "R-1", "same_day", lines=[("1", "SKU-1", 2)])
    ana, ben, mia = Tablet(client, "s1-ana"), Tablet(client, "s1-ben"), Tablet(client, "s1-mia")
    cai = Tablet(client, "s2-cai")
    ana.pull()
    before = ana.tasks[tid]

    cai.refused(act("claim", tid), "wrong_location")
    cai.refused(act("pick", tid, line_id="1"), "wrong_location")
    ana.refused(act("claim", "tsk_nope"), "unknown_task")
    ana.refused(act("claim"), "invalid_action")
    ana.refused(act("pack", tid, packages=1), "wrong_state")
    ana.refused(act("handover_carrier", tid, carrier="UPS"), "wrong_state")
    ana.refused(act("handover_customer", tid, pickup_code="1234"), "wrong_state")
    ana.refused(act("pick", tid, line_id="1", barcode=BARCODE_2), "wrong_barcode")
    ana.refused(act("pick", tid, line_id="1", barcode="999"), "wrong_barcode")
    ana.refused(act("pick", tid, line_id="1", quantity=3), "over_quantity")
    ana.refused(act("pick", tid, line_id="9"), "unknown_line")
    ana.refused(act("reject", tid, line_id="1", reason="other"), "note_required")
    ana.refused(act("reject", tid, line_id="1", reason="other", note="  "), "note_required")
    ana.refused(act("reject", tid, line_id="1", reason="damaged", quantity=5), "over_quantity")
    ana.refused(act("assign", tid, assignee="s1-ben"), "forbidden")
    ana.pull()
    assert ana.tasks[tid] == before, "nothing a refused action touched stayed changed"
    assert get_order(client, integration, oid)["status"] == "released"

    ana.applied(act("claim", tid))
    ana.applied(act("claim", tid))  # claiming your own task again is fine
    for a in (act("claim", tid), act("pick", tid, line_id="1", barcode=BARCODE_1),
              act("reject", tid, line_id="1", reason="damaged")):
        ben.refused(a, "claimed_by_other")
    mia.refused(act("assign", tid, assignee="s2-cai"), "unknown_user")
    mia.refused(act("assign", tid, assignee="nobody"), "unknown_user")
    mia.applied(act("assign", tid, assignee="s1-ben"))
    ana.refused(act("pick", tid, line_id="1"), "claimed_by_other")
    ben.applied(act("pick", tid, line_id="1", barcode=BARCODE_1))
    mia.applied(act("claim", tid))  # a manager may take over a claimed task
    ben.refused(act("pick", tid, line_id="1"), "claimed_by_other")
    mia.pull()
    assert mia.tasks[tid]["assignee"] == "s1-mia" and mia.line(tid)["picked"] == 1


def test_hq_and_integrations_may_not_act_on_tablets(client, hq, integration):
    setup(client, hq, integration)
    _, tid = released(client, integration, "R-2", "same_day")
    body = {"device_id": "x", "actions": [act("claim", tid)]}
    assert client.post("/api/v1/sync/push", json=body, headers=hq).status_code == 403
    assert client.post("/api/v1/sync/push", json=body, headers=integration).status_code == 403
    assert client.get("/api/v1/sync/pull", headers=hq).status_code == 403
    assert client.post("/api/v1/sync/push", json=body).status_code == 401
    assert client.get("/api/v1/sync/pull").status_code == 401
    bad = client.post("/api/v1/sync/push", json={"device_id": "x", "actions": [{"id": "short", "type": "claim"}]},
                      headers=Tablet(client, "s1-ana").headers)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"


def test_manager_reassigns_and_prioritises_over_rest(client, hq, integration):
    setup(client, hq, integration)
    oid, tid = released(client, integration, "R-3", "same_day")
    mia, ana, dan = Tablet(client, "s1-mia"), Tablet(client, "s1-ana"), Tablet(client, "s2-dan")
    ana.applied(act("claim", tid))
    r = client.post(f"/api/v1/stores/S1/tasks/{tid}/assign", json={"assignee": "s1-ben"}, headers=mia.headers)
    assert r.status_code == 200 and r.json()["assignee"] == "s1-ben"
    assert client.post(f"/api/v1/stores/S1/tasks/{tid}/assign", json={"assignee": "s1-ben"},
                       headers=ana.headers).status_code == 403
    assert client.post(f"/api/v1/stores/S1/tasks/{tid}/assign", json={"assignee": "s1-ben"},
                       headers=dan.headers).status_code == 403
    assert client.post(f"/api/v1/stores/S1/tasks/{tid}/assign", json={"assignee": "s1-ben"},
                       headers=hq).status_code == 403
    r = client.post(f"/api/v1/stores/S1/tasks/{tid}/assign", json={"assignee": "ghost"}, headers=mia.headers)
    assert r.status_code == 409 and r.json()["code"] == "unknown_user"
    r = client.post("/api/v1/stores/S1/tasks/tsk_nope/assign", json={"assignee": None}, headers=mia.headers)
    assert r.status_code == 404
    r = client.post(f"/api/v1/stores/S1/tasks/{tid}/priority", json={"priority": 5}, headers=mia.headers)
    assert r.status_code == 200 and r.json()["priority"] == 5
    assert client.post(f"/api/v1/stores/S1/tasks/{tid}/priority", json={"priority": 7},
                       headers=hq).status_code == 200
    assert client.post(f"/api/v1/stores/S1/tasks/{tid}/priority", json={"priority": 1},
                       headers=ana.headers).status_code == 403
    ana.pull()
    assert ana.tasks[tid]["assignee"] == "s1-ben" and ana.tasks[tid]["priority"] == 7
    ana.refused(act("pick", tid, line_id="1"), "claimed_by_other")
