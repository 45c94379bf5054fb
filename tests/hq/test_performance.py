"""Store performance and trends against hand-computed values on the fixed dataset of tests/hq/data.py.

Period: the default last 7 days before T0. Step minutes per visit (one order at one store):
  S1 pick  o1 10, o2 max(20,40)-min(0,5)=40, o3 30, o5 5          -> [5,10,30,40]: median 20, p90 37
  S1 pack  o1 20, o2 10, o3 5                                       -> [5,10,20]: median 10, p90 18
  S1 hand  o1 30, o2 100                                            -> median 65, p90 93
  S2 pick  o6 60, o7 20 -> median 40, p90 56; pack 30, 5 -> 17.5, 27.5; handover 10, 20 -> 15, 19
  chain pick [5,10,20,30,40,60] -> 25, 50; pack [5,5,10,20,30] -> 10, 26; handover [10,20,30,100] -> 25, 79
"""
from __future__ import annotations

import csv
import io

import pytest

from backend.db import session_scope
from tests.conftest import login
from tests.hq import data


@pytest.fixture
def loaded(client, hq, integration):
    data.setup(client, hq, integration)
    mia = login(client, "s1-mia", "3333")
    ana = login(client, "s1-ana", "1111")
    data.freeze()
    with session_scope() as s:
        data.performance_dataset(s)
    return {"hq": hq, "mia": mia, "ana": ana}


def test_every_figure_of_every_store_and_the_chain(client, loaded):
    r = client.get("/api/v1/hq/stores/performance", headers=loaded["hq"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"]["from"].startswith("2026-11-03T15:0") and body["period"]["to"].startswith("2026-11-10T15:0")
    stores = {s["store"]: s for s in body["stores"]}
    assert list(stores) == ["S1", "S2", "S3"]  # every active store, W1 is no store and S9 is closed
    s1, s2, s3, chain = stores["S1"], stores["S2"], stores["S3"], body["chain"]

    assert s1["name"] == "Albany Central"
    assert (s1["orders_fulfilled"], s1["units_fulfilled"]) == (2, 6)
    assert (s1["lines_released"], s1["lines_rejected"], s1["reject_rate"]) == (9, 2, 0.2222)
    assert s1["reject_reasons"] == {"damaged": 1, "not_found": 1}
    assert (s1["pick_minutes_median"], s1["pick_minutes_p90"]) == (20, 37)
    assert (s1["pack_minutes_median"], s1["pack_minutes_p90"]) == (10, 18)
    assert (s1["handover_minutes_median"], s1["handover_minutes_p90"]) == (65, 93)
    assert s1["promises_kept"] == {"same_day": 0.0, "standard": 1.0}
    assert s1["promises_kept_overall"] == 0.5
    assert (s1["counts"], s1["inventory_accuracy"], s1["mean_abs_variance"]) == (0, 0.0, 0.0)
    assert s1["reliability"] == 0.9  # (8 good + 0.95 x 20 prior) / (8 + 2 + 20)
    assert (s1["tasks_today"], s1["daily_capacity"], s1["capacity_use"]) == (1, 100, 0.01)

    assert (s2["orders_fulfilled"], s2["units_fulfilled"]) == (2, 2)
    assert (s2["lines_released"], s2["lines_rejected"], s2["reject_rate"], s2["reject_reasons"]) == (3, 0, 0.0, {})
    assert (s2["pick_minutes_median"], s2["pick_minutes_p90"]) == (40, 56)
    assert (s2["pack_minutes_median"], s2["pack_minutes_p90"]) == (17.5, 27.5)
    assert (s2["handover_minutes_median"], s2["handover_minutes_p90"]) == (15, 19)
    assert s2["promises_kept"] == {"next_day": 1.0, "standard": 0.0}
    assert (s2["counts"], s2["inventory_accuracy"], s2["mean_abs_variance"]) == (3, 0.3333, 1.0)
    assert s2["reliability"] == 0.95  # no history yet: the prior
    assert (s2["tasks_today"], s2["capacity_use"]) == (1, 0.01)

    nothing = {k: v for k, v in s3.items() if k not in ("store", "name", "reliability", "daily_capacity")}
    assert all(v in (0, 0.0, {}) for v in nothing.values()), nothing
    assert (s3["reliability"], s3["daily_capacity"]) == (0.95, 100)

    assert (chain["orders_fulfilled"], chain["units_fulfilled"]) == (4, 8)
    assert (chain["lines_released"], chain["lines_rejected"], chain["reject_rate"]) == (12, 2, 0.1667)
    assert chain["reject_reasons"] == {"damaged": 1, "not_found": 1}
    assert (chain["pick_minutes_median"], chain["pick_minutes_p90"]) == (25, 50)
    assert (chain["pack_minutes_median"], chain["pack_minutes_p90"]) == (10, 26)
    assert (chain["handover_minutes_median"], chain["handover_minutes_p90"]) == (25, 79)
    assert chain["promises_kept"] == {"next_day": 1.0, "same_day": 0.0, "standard": 0.5}
    assert chain["promises_kept_overall"] == 0.5
    assert (chain["counts"], chain["inventory_accuracy"], chain["mean_abs_variance"]) == (3, 0.3333, 1.0)
    assert chain["reliability"] == 0.9333
    assert (chain["tasks_today"], chain["daily_capacity"], chain["capacity_use"]) == (2, 300, 0.0067)


def test_a_period_of_whole_days(client, loaded):
    r = client.get("/api/v1/hq/stores/performance?from=2026-11-09&to=2026-11-09", headers=loaded["hq"])
    body = r.json()
    assert body["period"]["from"].startswith("2026-11-09T00:00") and body["period"]["to"].startswith("2026-11-10T00")
    stores = {s["store"]: s for s in body["stores"]}
    assert stores["S1"]["orders_fulfilled"] == 0 and stores["S1"]["lines_released"] == 0
    assert stores["S2"]["orders_fulfilled"] == 2 and body["chain"]["orders_fulfilled"] == 2


@pytest.mark.parametrize("query, code", [("from=yesterday", "invalid_time"), ("from=2026-11-09&to=2026-11-01",
                                         "invalid_period"), ("from=2024-01-01&to=2026-01-01", "period_too_long")])
def test_bad_periods_are_422(client, loaded, query, code):
    r = client.get(f"/api/v1/hq/stores/performance?{query}", headers=loaded["hq"])
    assert r.status_code == 422 and r.json()["code"] == code


def test_a_manager_sees_their_store_and_the_chain_an_associate_nothing(client, loaded):
    r = client.get("/api/v1/hq/stores/performance", headers=loaded["mia"])
    assert r.status_code == 200
    body = r.json()
    assert [s["store"] for s in body["stores"]] == ["S1"]
    assert body["chain"]["orders_fulfilled"] == 4
    assert client.get("/api/v1/hq/stores/performance", headers=loaded["ana"]).status_code == 403
    assert client.get("/api/v1/hq/stores/performance").status_code == 401


def test_csv_export_of_the_stores_table(client, loaded):
    r = client.get("/api/v1/hq/stores/performance?format=csv", headers=loaded["hq"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["store"] for row in rows] == ["S1", "S2", "S3"]
    assert rows[0]["reject_reasons.not_found"] == "1" and rows[0]["promises_kept.standard"] == "1.0"
    assert rows[1]["reject_reasons.not_found"] == "" and rows[1]["pick_minutes_p90"] == "56.0"


def test_daily_trends(client, loaded):
    h = loaded["hq"]
    r = client.get("/api/v1/hq/stores/trends?metric=orders_fulfilled&days=7", headers=h)
    assert r.status_code == 200, r.text
    series = r.json()["series"]
    assert [p["date"] for p in series][-3:] == ["2026-11-08", "2026-11-09", "2026-11-10"] and len(series) == 7
    assert [p["value"] for p in series] == [0, 0, 0, 0, 2, 2, 0]

    series = client.get("/api/v1/hq/stores/trends?metric=reject_rate&days=3", headers=h).json()["series"]
    assert [(p["value"], p["count"]) for p in series] == [(0.25, 8), (0.0, 2), (0.0, 2)]

    series = client.get("/api/v1/hq/stores/trends?metric=promises_kept&days=3&store=S2", headers=h).json()["series"]
    assert [(p["value"], p["count"]) for p in series] == [(0.0, 0), (0.5, 2), (0.0, 0)]

    csv_text = client.get("/api/v1/hq/stores/trends?metric=orders_fulfilled&days=2&format=csv", headers=h).text
    assert csv_text.splitlines() == ["date,value,count", "2026-11-09,2.0,2", "2026-11-10,0.0,0"]

    assert client.get("/api/v1/hq/stores/trends?store=S2", headers=loaded["mia"]).status_code == 403
    assert client.get("/api/v1/hq/stores/trends?store=S1", headers=loaded["mia"]).status_code == 200
    assert client.get("/api/v1/hq/stores/trends?metric=nonsense", headers=h).status_code == 422
