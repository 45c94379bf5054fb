"""The cost of exceptions: a handling cost per kind (defaults, HQ can change them), the weekly cost next to the
orders the week's exceptions touched; a manager sees their store's."""
from __future__ import annotations

from datetime import timedelta

from backend.db import session_scope
from backend.models import ExceptionItem
from tests.conftest import login
from tests.hq import data
from tests.hq.data import T0  # Tue 10 Nov 2026: its ISO week starts Mon 9 Nov


def _exc(s, n: int, kind: str, loc: str, order_id: str | None, raised) -> None:
    s.add(ExceptionItem(id=f"exc_{n}", dedupe_key=f"{kind}:{n}", kind=kind, order_id=order_id, location=loc,
                        message="m", action="a", raised_at=raised, updated_at=raised))


def test_weekly_exception_cost_by_kind_with_the_orders_touched(client, hq, integration):
    data.setup(client, hq, integration)
    mia = login(client, "s1-mia", "3333")
    data.freeze()
    with session_scope() as s:
        _exc(s, 1, "unfillable", "S1", "o1", T0 - timedelta(hours=30))  # Mon 9 Nov
        _exc(s, 2, "unfillable", "S1", "o2", T0 - timedelta(hours=1))
        _exc(s, 3, "task_idle", "S2", "o1", T0 - timedelta(hours=2))  # the same order again
        _exc(s, 4, "promise_at_risk", "S1", "o3", T0 - timedelta(days=7))  # week of 2 Nov
        _exc(s, 5, "stock_mismatch", "S2", None, T0 - timedelta(days=15))  # week of 26 Oct: outside 2 weeks
        s.commit()

    costs = {c["kind"]: c for c in client.get("/api/v1/exceptions/costs", headers=hq).json()["costs"]}
    assert costs["unfillable"]["cost"] == 75 and costs["task_idle"]["cost"] == 45 and costs["unfillable"]["default"]

    r = client.get("/api/v1/exceptions/cost-report", headers=hq, params={"weeks": 2}).json()
    assert [w["week_start"] for w in r["weeks"]] == ["2026-11-02", "2026-11-09"]
    last, this = r["weeks"]
    assert (last["exceptions"], last["orders"], last["cost"]) == (1, 1, 55)
    assert (this["exceptions"], this["orders"], this["cost"], this["cost_per_order"]) == (3, 2, 195, 97.5)
    assert {k["kind"]: (k["exceptions"], k["orders"], k["cost"]) for k in this["by_kind"]} == {
        "unfillable": (2, 2, 150), "task_idle": (1, 1, 45)}
    assert r["total_cost"] == 250

    # HQ prices an unfillable line at $70; a manager may not.
    assert client.put("/api/v1/exceptions/costs", headers=mia,
                      json={"costs": [{"kind": "unfillable", "cost": 1}]}).status_code == 403
    bad = client.put("/api/v1/exceptions/costs", headers=hq, json={"costs": [{"kind": "nope", "cost": 1}]})
    assert bad.status_code == 422
    r = client.put("/api/v1/exceptions/costs", headers=hq, json={"costs": [{"kind": "unfillable", "cost": 70}]})
    assert r.status_code == 200
    changed = {c["kind"]: c for c in r.json()["costs"]}["unfillable"]
    assert changed["cost"] == 70 and not changed["default"] and changed["updated_by"] == "hq"
    this = client.get("/api/v1/exceptions/cost-report", headers=hq, params={"weeks": 2}).json()["weeks"][1]
    assert this["cost"] == 185

    # S1's manager: S1's exceptions only, whatever location they ask for.
    mine = client.get("/api/v1/exceptions/cost-report", headers=mia, params={"weeks": 2}).json()
    assert mine["location"] == "S1" and [w["cost"] for w in mine["weeks"]] == [55, 140]
    assert client.get("/api/v1/exceptions/cost-report", headers=mia, params={"location": "S2"}).status_code == 403
    csv = client.get("/api/v1/exceptions/cost-report", headers=hq, params={"weeks": 2, "format": "csv"}).text
    assert csv.splitlines()[0].startswith("week_start,exceptions,orders,cost,cost_per_order")
    assert "unfillable_cost" in csv.splitlines()[0] and csv.splitlines()[2].startswith("2026-11-09,3,2,185")
