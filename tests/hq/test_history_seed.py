"""The demo's past weeks of activity: written once, consistent with itself, and visible in the HQ figures."""
from __future__ import annotations

from sqlmodel import func, select

from backend.db import session_scope
from backend.models import Allocation, Order, Rejection
from backend.seed.history import seed_history
from tests import retailer


def test_history_fills_every_store_and_the_figures_add_up(client, hq, integration):
    retailer.load(client, hq, integration)
    with session_scope() as s:
        made = seed_history(s, days=7, seed=3)
    assert made["orders"] > 0 and made["rejections"] > 0
    with session_scope() as s:
        assert seed_history(s, days=7, seed=3) == {"orders": 0}, "written once"
        statuses = dict(s.exec(select(Order.status, func.count()).group_by(Order.status)).all())
        assert set(statuses) <= {"shipped", "collected"} and sum(statuses.values()) == made["orders"]
        at_stores = s.exec(select(func.count()).select_from(Rejection)).one()
        # every rejected line was shipped from elsewhere: one fulfilled allocation per line
        fulfilled = s.exec(select(func.count()).select_from(Allocation).where(Allocation.state == "fulfilled")).one()
        assert fulfilled == made["lines"] and made["allocations"] == made["lines"] + at_stores

    r = client.get("/api/v1/hq/stores/performance", headers=hq)  # the last 7 days
    assert r.status_code == 200, r.text
    perf = r.json()
    stores = {x["store"]: x for x in perf["stores"]}
    assert all(stores[c]["orders_fulfilled"] > 0 for c in ("S1", "S2", "S3")), "every store has history"
    assert perf["chain"]["lines_rejected"] <= at_stores
    assert 0 < perf["chain"]["promises_kept_overall"] <= 1
