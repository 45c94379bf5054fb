"""The daily rollup gives the same store performance as the live path: the same counts and ratios exactly, step
times within the histogram's precision (one bucket: 5 % of 1 + minutes); and the scheduled job keeps it."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from backend import scheduler
from backend.db import session_scope
from backend.models import HqRollupBlock
from backend.services import hq, hq_rollup
from tests.hq import data
from tests.hq.data import T0, alloc, at, count, order, reject

STEP_FIELDS = [f"{s}_minutes_{k}" for s in hq.STEPS for k in ("median", "p90")]
PERIODS = [
    "",  # the default: 7 days up to now, partial first and last day
    "?from=2026-11-04&to=2026-11-09",  # whole days only
    "?from=2026-10-01",  # a whole month (October) and the days after it
    "?from=2026-10-12T07:30:00Z&to=2026-11-10T12:00:00Z",  # partial days at both ends
    "?from=2026-09-20&to=2026-10-31",
]


def _more_days(session) -> None:
    """Three weeks of work at S1 and S2 with varied step times, rejections and counts (October and November)."""
    for i in range(21):
        base = T0 - timedelta(days=30 - i, hours=i % 5)
        store = ("S1", "S2")[i % 2]
        method = ("same_day", "next_day", "standard", "pickup")[i % 4]
        for j in range(1 + i % 3):
            oid = f"x{i}_{j}"
            b = at(base, 37 * j)
            order(session, oid, method, promise=at(b, (60, 300, 90, 2000)[(i + j) % 4]), created=b,
                  pickup=store if method == "pickup" else None)
            alloc(session, oid, store, "SKU-1", 1 + j, "fulfilled", b, at(b, 3 + 7 * i + j), at(b, 20 + 9 * j + i),
                  at(b, 80 + 13 * i))
            a = alloc(session, oid, store, "SKU-2", 1, "rejected" if (i + j) % 3 == 0 else "fulfilled", at(b, 1),
                      None if (i + j) % 3 == 0 else at(b, 5 + i), None if (i + j) % 3 == 0 else at(b, 22 + i),
                      None if (i + j) % 3 == 0 else at(b, 80 + 13 * i), rejected=1 if (i + j) % 3 == 0 else 0)
            if (i + j) % 3 == 0:
                reject(session, a, ("not_found", "damaged", "other")[j % 3], at(b, 9))
        count(session, f"cx{i}", store, "SKU-3", 5, 5 - (i % 3), at(base, 45))
    # a reason and a method outside the contract's lists still add up (the rollup's `extra`)
    b = T0 - timedelta(days=15)  # in October: summed into the month's row too
    order(session, "odd", "courier", promise=at(b, 24 * 60), created=b)
    alloc(session, "odd", "S1", "SKU-1", 2, "fulfilled", b, at(b, 2), at(b, 4), at(b, 8))
    a = alloc(session, "odd", "S1", "SKU-2", 1, "rejected", b, rejected=1)
    reject(session, a, "expired", at(b, 3))
    session.commit()


@pytest.fixture
def loaded(client, hq, integration):
    data.setup(client, hq, integration)
    data.freeze()
    with session_scope() as s:
        data.performance_dataset(s)
        _more_days(s)
    return hq


def _figures(client, h, query):
    r = client.get(f"/api/v1/hq/stores/performance{query}", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    return [("chain", body["chain"])] + [(s["store"], s) for s in body["stores"]]


def _same(live, rolled):
    assert [k for k, _ in live] == [k for k, _ in rolled]
    for (who, a), (_, b) in zip(live, rolled, strict=True):
        for k in a:
            if k in STEP_FIELDS:
                assert abs(a[k] - b[k]) <= 0.05 * (1 + abs(a[k])) + 0.01, (who, k, a[k], b[k])
            else:
                assert a[k] == b[k], (who, k, a[k], b[k])


def _trends(client, h) -> dict:
    out = {}
    for metric in ("reject_rate", "orders_fulfilled", "promises_kept"):
        for store in (None, "S1", "S2"):
            r = client.get("/api/v1/hq/stores/trends", headers=h,
                           params={"metric": metric, "days": 45} | ({"store": store} if store else {}))
            assert r.status_code == 200, r.text
            out[(metric, store)] = [(x["date"], x["value"], x["count"]) for x in r.json()["series"]]
    return out


def test_the_rollup_gives_the_live_figures(client, loaded):
    live = {q: _figures(client, loaded, q) for q in PERIODS}
    live_trends = _trends(client, loaded)
    assert any(c for series in live_trends.values() for _, _, c in series), "the trends have something to show"
    assert scheduler.run_job("hq_rollup") == "ran"
    assert _trends(client, loaded) == live_trends, "trends read closed days from the rollup, the same figures"
    with session_scope() as s:
        blocks = {(b.start, b.days) for b in s.exec(hq_rollup.select(HqRollupBlock)).all()}
        assert (date(2026, 10, 1), 31) in blocks, "October is complete: one row per store"
        assert (date(2026, 11, 9), 1) in blocks and (date(2026, 11, 10), 1) not in blocks, "today stays live"
        used, rest = hq_rollup.plan(s, hq.parse_when("2026-10-01", end=False), T0)
        assert used[0] == (date(2026, 10, 1), 31) and len(used) == 1 + 9 and rest == [
            (hq.parse_when("2026-11-10", end=False), T0)]
    for q in PERIODS:
        rolled = _figures(client, loaded, q)
        _same(live[q], rolled)
    # something really happened in these periods
    year = dict(_figures(client, loaded, "?from=2026-10-01"))
    assert year["chain"]["orders_fulfilled"] > 30 and year["chain"]["lines_rejected"] > 5
    assert year["chain"]["counts"] > 20 and year["S1"]["pick_minutes_p90"] > 0
    assert year["S1"]["reject_reasons"]["expired"] == 1 and year["S1"]["promises_kept"]["courier"] == 1.0


def test_the_job_only_redoes_what_changed(client, loaded):
    with session_scope() as s:
        first = hq_rollup.refresh(s)
        assert first["days"] > 30 and first["months"] == 1
        again = hq_rollup.refresh(s)
        assert again == {"days": 0, "months": 0}, "every closed day is final already"
        # history written into a closed day is seen after invalidate
        before = hq.performance(s, _hq(s), "2026-11-01", "2026-11-08")
        order(s, "late", "standard", promise=at(T0, 0), created=T0 - timedelta(days=5))
        b = T0 - timedelta(days=5)
        alloc(s, "late", "S2", "SKU-1", 4, "fulfilled", b, at(b, 5), at(b, 10), at(b, 15))
        s.commit()
        assert hq.performance(s, _hq(s), "2026-11-01", "2026-11-08").chain.orders_fulfilled == \
            before.chain.orders_fulfilled
        assert hq_rollup.invalidate(s, b.date(), b.date()) == 1  # the day (November is not over)
        assert hq.performance(s, _hq(s), "2026-11-01", "2026-11-08").chain.orders_fulfilled == \
            before.chain.orders_fulfilled + 1
        assert hq_rollup.refresh(s)["days"] == 1
        after = hq.performance(s, _hq(s), "2026-11-01", "2026-11-08")
        assert after.chain.orders_fulfilled == before.chain.orders_fulfilled + 1
        assert after.chain.units_fulfilled == before.chain.units_fulfilled + 4


def test_a_day_closed_less_than_an_hour_ago_is_computed_again(client, loaded):
    data.freeze(T0.replace(hour=0, minute=30))
    with session_scope() as s:
        hq_rollup.refresh(s)
        stamp = s.get(HqRollupBlock, (date(2026, 11, 9), 1)).computed_at
    data.freeze(T0.replace(hour=1, minute=10))
    with session_scope() as s:
        assert hq_rollup.refresh(s)["days"] == 1
        assert s.get(HqRollupBlock, (date(2026, 11, 9), 1)).computed_at > stamp
        assert hq_rollup.refresh(s)["days"] == 0


def test_histogram_percentiles_are_within_a_bucket():
    import numpy as np

    rng = np.random.default_rng(7)
    samples = (rng.lognormal(3, 1, 500), rng.uniform(0, 5, 40), np.array([12.0]), np.array([0.0, -1.0, 3.0]),
               rng.normal(0, 10, 99))
    for values in samples:
        hist: dict[int, int] = {}
        for v in values:
            hist[hq.bucket(v)] = hist.get(hq.bucket(v), 0) + 1
        for q in (50, 90):
            exact = float(np.percentile(values, q))
            assert abs(hq.hist_percentile(hist, q) - exact) <= 0.05 * (1 + abs(exact)) + 1e-9, (q, exact)
    assert hq.hist_percentile({}, 50) == 0.0


def _hq(session):
    from backend.principal import Principal
    from shared.enums import Role

    return Principal(username="hq", role=Role.hq, store=None)
