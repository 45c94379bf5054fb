"""The HQ screens' pure parts (colouring, sorting, filtering, store vs chain, request bodies) and HQ sign-in: an HQ
user has no store, so the store sync loop never asks the server for a queue."""

from __future__ import annotations

from datetime import UTC, datetime

from store_app.state import AppState
from store_app.sync_loop import SyncLoop
from store_app.transport import Response
from store_app.views.hq_common import (
    BAD,
    GREY,
    OK,
    WARN,
    compare_rows,
    filter_stores,
    fmt,
    period_params,
    rating,
    sort_stores,
    value_of,
)
from store_app.views.hq_whatif import whatif_body
from tests.unit.store_app.test_store_app_local import FakeServer, db, run  # noqa: F401 - db is a fixture


def fig(store, orders=0, released=0, reject=0.0, kept=0.0, **kw):
    return {"store": store, "name": f"Store {store}", "orders_fulfilled": orders, "lines_released": released,
            "reject_rate": reject, "promises_kept_overall": kept, **kw}


def test_rows_are_coloured_by_promises_kept_and_reject_rate():
    assert rating(fig("A", orders=10, released=20, reject=0.0, kept=1.0)) == ("good", OK)
    assert rating(fig("A", orders=10, released=20, reject=0.07, kept=1.0)) == ("watch", WARN)
    assert rating(fig("A", orders=10, released=20, reject=0.0, kept=0.9)) == ("watch", WARN)
    assert rating(fig("A", orders=10, released=20, reject=0.2, kept=1.0)) == ("poor", BAD)
    assert rating(fig("A", orders=10, released=20, reject=0.0, kept=0.5)) == ("poor", BAD)
    assert rating(fig("A")) == ("idle", GREY)  # nothing happened: not red for "0% kept"
    assert rating(fig("A", released=5))[0] == "good"  # released, nothing handed over yet: no promise missed


def test_sorting_filtering_and_figures_without_events():
    stores = [fig("S102", orders=3, released=4, reject=0.25), fig("S101", orders=3, released=8, reject=0.0),
              fig("T1", orders=9, released=9, reject=0.1), fig("S103")]
    assert [s["store"] for s in sort_stores(stores, "store", False)] == ["S101", "S102", "S103", "T1"]
    assert [s["store"] for s in sort_stores(stores, "orders_fulfilled", True)] == ["T1", "S101", "S102", "S103"]
    assert [s["store"] for s in sort_stores(stores, "orders_fulfilled", False)] == ["S103", "S101", "S102", "T1"]
    # S103 released nothing: its reject rate is unknown and goes last whichever way
    assert [s["store"] for s in sort_stores(stores, "reject_rate", True)] == ["S102", "T1", "S101", "S103"]
    assert [s["store"] for s in sort_stores(stores, "reject_rate", False)] == ["S101", "T1", "S102", "S103"]
    assert [s["store"] for s in filter_stores(stores, " s10")] == ["S102", "S101", "S103"]
    assert [s["store"] for s in filter_stores(stores, "store t1")] == ["T1"]
    assert filter_stores(stores, "") == stores
    assert value_of(fig("S103"), "reject_rate") is None and fmt(None, "pct") == "—"
    assert fmt(0.1234, "pct") == "12.3%" and fmt(1234, "int") == "1,234" and fmt(2.345, "min") == "2.3"


def test_store_against_chain():
    mine = fig("S101", orders=2, released=10, reject=0.2, kept=1.0, pick_minutes_median=5.0, reliability=0.9)
    chain = fig("Chain", orders=9, released=50, reject=0.1, kept=0.8, pick_minutes_median=8.0, reliability=0.95)
    rows = {k: (a, b, colour) for k, _, a, b, colour in compare_rows(mine, chain)}
    assert rows["reject_rate"] == ("20.0%", "10.0%", BAD)  # more rejects than the chain: worse
    assert rows["pick_minutes_median"][2] == OK  # quicker picks: better
    assert rows["promises_kept_overall"][2] == OK and rows["reliability"][2] == BAD
    assert rows["orders_fulfilled"][:2] == ("2", "9")
    idle = {k: (a, b, colour) for k, _, a, b, colour in compare_rows(fig("S102"), chain)}
    assert idle["promises_kept_overall"][0] == "—" and idle["reject_rate"][0] == "—"


def test_request_bodies():
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    assert period_params(30, now) == {"from": "2026-11-02"}
    body = whatif_body(7, False, {"package_base": 20.0}, now)
    assert body == {"from": "2026-11-25T10:00:00+00:00", "to": "2026-12-02T10:00:00+00:00", "batch": False,
                    "weights": {"package_base": 20.0}}


class HQServer(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.pins["hq"] = "hq-demo"
        self.paths: list[str] = []

    async def request(self, method, path, **kw):
        self.paths.append(path)
        if path.endswith("/me"):
            return Response(200, {"username": "hq", "role": "hq", "store": None, "name": "HQ operations"})
        return await super().request(method, path, **kw)


def test_hq_sign_in_runs_no_store_sync(db):  # noqa: F811 - the fixture
    server = HQServer()
    state = AppState(db, server)
    loop = SyncLoop(state)
    session = run(state.login("hq", "hq-demo"))
    assert session.role == "hq" and session.store is None
    assert not run(loop.sync_once())
    assert not any(p.endswith(("/sync/pull", "/sync/push")) for p in server.paths)
    assert loop.failures == 0 and state.sync.error is None


def test_exception_cost_words():
    from store_app.views.hq_exceptions import cost_words

    report = {"weeks": [{"cost": 55, "exceptions": 1, "orders": 1, "cost_per_order": 55.0},
                        {"cost": 195, "exceptions": 3, "orders": 2, "cost_per_order": 97.5}], "total_cost": 250}
    assert cost_words(report) == ("Cost of exceptions this week: $195 for 3 exceptions touching 2 orders, $98 an "
                                  "order · last 2 weeks: $250")
    assert cost_words({"weeks": []}) == ""
