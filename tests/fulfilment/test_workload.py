"""The manager's view of a store: open tasks by step, their age against the promise, who does what."""
from __future__ import annotations

from backend import clock
from tests.fulfilment.helpers import Tablet, act, released, setup


def test_workload_for_the_manager_and_hq(client, hq, integration):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if not 1 <= datetime.now(ZoneInfo("America/New_York")).hour < 22:
        clock.shift(-3 * 3600)  # the store day must not end during the test (tokens issued before a shift stay valid)
    setup(client, hq, integration)
    o1, t1 = released(client, integration, "W-1", "same_day", lines=[("1", "SKU-2", 1)])
    o2, t2 = released(client, integration, "W-2", "same_day", lines=[("1", "SKU-2", 1)])
    o3, t3 = released(client, integration, "W-3", "same_day", lines=[("1", "SKU-2", 1)])
    ana, mia, dan = Tablet(client, "s1-ana"), Tablet(client, "s1-mia"), Tablet(client, "s2-dan")
    ana.applied(act("pick", t1, line_id="1"))
    ana.applied(act("pack", t1))
    ana.applied(act("handover_carrier", t1, carrier="UPS"))
    ana.applied(act("pick", t2, line_id="1"))
    r = client.post(f"/api/v1/stores/S1/tasks/{t3}/priority", json={"priority": 3}, headers=mia.headers)
    assert r.status_code == 200
    clock.shift(10 * 60)
    w = client.get("/api/v1/stores/S1/workload", headers=mia.headers)
    assert w.status_code == 200, w.text
    w = w.json()
    assert w["store"] == "S1" and w["open_by_step"] == {"pick": 1, "pack": 1, "handover": 0}
    assert [t["id"] for t in w["tasks"]] == [t3, t2], "prioritised first; the shipped one is not open"
    first = w["tasks"][0]
    assert {"id", "order_id", "step", "assignee", "promise_by", "age_minutes", "minutes_to_promise",
            "late"} <= set(first)
    assert first["order_id"] == o3 and first["step"] == "pick" and first["assignee"] is None
    assert first["age_minutes"] >= 10 and first["late"] is (first["minutes_to_promise"] < 0)
    assert w["oldest_minutes"] >= 10
    people = {p["username"]: p for p in w["by_associate"]}
    assert people["s1-ana"]["open"] == 1 and people["s1-ana"]["done_today"] == 1
    assert people["s1-ben"]["open"] == 0 and people["s1-mia"]["done_today"] == 0
    assert "s2-cai" not in people
    assert client.get("/api/v1/stores/S1/workload", headers=hq).json()["open_by_step"] == w["open_by_step"]
    assert client.get("/api/v1/stores/S1/workload", headers=ana.headers).status_code == 403
    assert client.get("/api/v1/stores/S1/workload", headers=dan.headers).status_code == 403
    assert client.get("/api/v1/stores/NOPE/workload", headers=hq).status_code == 404
    assert client.get("/api/v1/stores/W1/workload", headers=hq).status_code == 404
    clock.shift(30 * 3600)  # past every same-day promise (tokens are checked against the real time)
    late = client.get("/api/v1/stores/S1/workload", headers=mia.headers).json()
    assert late["tasks"] and all(t["late"] and t["minutes_to_promise"] < 0 for t in late["tasks"])
