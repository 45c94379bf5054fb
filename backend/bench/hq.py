"""`storeline bench hq`: a year of orders for 500 stores on PostgreSQL, then the HQ endpoints' response times.

The rows are generated inside PostgreSQL (INSERT ... SELECT over generate_series, seeded), not through the API:
orders, lines, allocations with released/picked/packed/fulfilled times that differ by store, rejections, counts,
reliability, and the open work of the last hours. Then, over HTTP (in process, with an HQ token):

* GET /api/v1/hq/stores/performance for the default 7 days, 30 days and the whole year, first all live (the daily
  rollup empty), then after the `hq_rollup` job has built the rollup (its time is printed), and as CSV;
* GET /api/v1/hq/stores/trends for 28 days;
* the exceptions scan (the scheduled job) over the same data.

Usage: storeline bench hq [--stores 500] [--days 365] [--per-store-day 10] [--runs 15] [--pg URL] [--keep]
       storeline bench hq --db URL [--runs 15]   (measure again on a database kept with --keep)
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, text
from sqlmodel import SQLModel

ADMIN_URL = os.environ.get("STORELINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _defaults(table: str, given: set[str]) -> dict[str, str]:
    """SQL literals for the NOT NULL columns this generator does not fill (from the models' defaults), so the
    benchmark keeps working when a column is added to a table."""
    import json

    import backend.models  # noqa: F401

    model = next(m for m in SQLModel.__subclasses__() if getattr(m, "__tablename__", None) == table)
    out = {}
    for c in SQLModel.metadata.tables[table].columns:
        if c.nullable or c.name in given:
            continue
        f = model.model_fields[c.name]
        v = f.default_factory() if f.default_factory is not None else f.default
        if isinstance(v, dict | list):
            out[c.name] = "'" + json.dumps(v) + "'"
        elif isinstance(v, bool):
            out[c.name] = "true" if v else "false"
        elif isinstance(v, int | float):
            out[c.name] = str(v)
        elif isinstance(v, str):
            out[c.name] = "'" + v.replace("'", "''") + "'"
        else:
            out[c.name] = "now()"
    return out


def _insert(conn: Connection, table: str, cols: dict[str, str], source: str, params: dict[str, Any]) -> int:
    cols = cols | _defaults(table, set(cols))
    sql = f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols.values())} FROM {source}"
    return conn.execute(text(sql), params).rowcount


STORE = "'S' || lpad((1 + (g * 7919) % :stores)::text, 4, '0')"


def generate(conn: Connection, stores: int, days: int, per_store_day: int, skus: int = 2000) -> dict[str, int]:
    n = stores * days * per_store_day
    span = days * 86400
    # (psycopg sends small Python ints as smallint: every product of parameters is made in Python or cast)
    p = {"stores": stores, "skus": skus, "n": n, "step": span / n, "span": span, "days": days}
    superuser = conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar()
    if superuser:
        conn.execute(text("SET session_replication_role = replica"))  # skip FK triggers while bulk loading
    conn.execute(text("SELECT setseed(0.42)"))
    zones = "(ARRAY['America/New_York','America/Chicago','America/Denver','America/Los_Angeles'])"
    counts = {}
    counts["location"] = _insert(conn, "location", {
        "code": STORE.replace("(g * 7919) % :stores", "g - 1"), "name": "'Store ' || g", "type": "'store'",
        "lat": "30 + random() * 15", "lon": "-120 + random() * 45", "timezone": f"{zones}[1 + g % 4]",
        "ships": "true", "pickup": "true", "same_day_radius_km": "25", "same_day_cutoff": "'16:00'",
        "daily_capacity": "150", "active": "true", "updated_at": "now()"}, "generate_series(1, :stores) g", p)
    counts["location"] += _insert(conn, "location", {
        "code": "'W' || g", "name": "'DC ' || g", "type": "'warehouse'", "lat": "30 + random() * 15",
        "lon": "-120 + random() * 45", "timezone": "'America/Chicago'", "ships": "true", "pickup": "false",
        "same_day_radius_km": "0", "same_day_cutoff": "'16:00'", "daily_capacity": "20000", "active": "true",
        "updated_at": "now()"}, "generate_series(1, 10) g", p)
    counts["product"] = _insert(conn, "product", {
        "sku": "'SKU-' || lpad(g::text, 5, '0')", "name": "'Product ' || g", "weight_kg": "0.5",
        "sku_class": "'general'", "active": "true", "updated_at": "now()"}, "generate_series(1, :skus) g", p)
    conn.execute(text(f"""
        CREATE TEMP TABLE bench_order AS
        SELECT g, now() - make_interval(secs => :span) + make_interval(secs => ((g - 1) + random()) * :step) AS t,
               (ARRAY['same_day','next_day','standard','standard','standard','standard','next_day','pickup',
                      'standard','same_day'])[1 + g % 10] AS m,
               {STORE} AS store, 1 + (g * 7919) % :stores AS si
        FROM generate_series(1::bigint, :n) g"""), p)
    counts["orders"] = _insert(conn, "orders", {
        "id": "'o' || g", "channel": "'web'", "external_id": "'B-' || g",
        "status": "CASE WHEN t > now() - interval '3 hours' THEN 'released' ELSE 'shipped' END",
        "delivery_method": "m", "pickup_location": "CASE WHEN m = 'pickup' THEN store END", "priority": "0",
        "promise_by": "t + CASE m WHEN 'same_day' THEN interval '8 hours' WHEN 'next_day' THEN interval '30 hours'"
                      " WHEN 'pickup' THEN interval '4 hours' ELSE interval '5 days' END",
        "ship_lat": "40", "ship_lon": "-90", "override": "false", "created_at": "t", "updated_at": "t"},
        "bench_order", p)
    # lines: every other order has two; store quality (q, reject share) varies by store
    conn.execute(text("""
        CREATE TEMP TABLE bench_line AS
        SELECT o.g, k, 'l' || o.g || '-' || k AS pk, 'o' || o.g AS oid, o.store, o.t,
               'SKU-' || lpad((1 + (o.g * 31 + k * 17) % :skus)::text, 5, '0') AS sku, 1 + (o.g + k) % 3 AS qty,
               o.t > now() - interval '3 hours' AS open,
               random() < 0.005 + 0.03 * (o.si % 7) / 6.0 AS rej,
               o.t + make_interval(secs => 120 + random() * 600) AS rel,
               0.5 + (o.si % 10) / 10.0 AS q, random() AS r2, random() AS r3, random() AS r4
        FROM bench_order o CROSS JOIN LATERAL generate_series(1, 1 + (o.g % 2)::int) k"""), p)
    conn.execute(text("ALTER TABLE bench_line ADD COLUMN pick timestamptz, ADD COLUMN pack timestamptz,"
                      " ADD COLUMN ful timestamptz"))
    conn.execute(text("""
        UPDATE bench_line SET pick = rel + make_interval(secs => 60 * (3 + r2 * 40 * q)),
                              pack = rel + make_interval(secs => 60 * (3 + r2 * 40 * q + 2 + r3 * 15 * q)),
                              ful = rel + make_interval(secs => 60 * (3 + r2 * 40 * q + 2 + r3 * 15 * q + 20
                                                                      + r4 * 240))
        WHERE NOT open AND NOT rej"""))
    counts["orderline"] = _insert(conn, "orderline", {
        "id": "pk", "order_id": "oid", "line_id": "k::text", "sku": "sku", "quantity": "qty",
        "status": "CASE WHEN rej THEN 'rejected' WHEN open THEN 'released' ELSE 'shipped' END",
        "excluded_locations": "'[]'"}, "bench_line", p)
    counts["allocation"] = _insert(conn, "allocation", {
        "id": "'a' || pk", "order_id": "oid", "line_pk": "pk", "location": "store", "sku": "sku", "quantity": "qty",
        "state": "CASE WHEN rej THEN 'rejected' WHEN open THEN 'released' ELSE 'fulfilled' END",
        "picked": "CASE WHEN pick IS NULL THEN 0 ELSE qty END", "rejected": "CASE WHEN rej THEN qty ELSE 0 END",
        "created_at": "t", "released_at": "rel", "picked_at": "pick", "packed_at": "pack", "fulfilled_at": "ful",
        "ended_at": "CASE WHEN rej THEN rel + interval '10 minutes' END"}, "bench_line", p)
    counts["rejection"] = _insert(conn, "rejection", {
        "id": "'r' || pk", "allocation_id": "'a' || pk", "order_id": "oid", "line_id": "k::text", "location": "store",
        "sku": "sku", "quantity": "qty",
        "reason": "(ARRAY['not_found','not_found','damaged','wrong_item','customer_hold','other'])[1 + floor(r2 * 6)]",
        "at": "rel + interval '10 minutes'"}, "bench_line WHERE rej", p)
    counts["task"] = _insert(conn, "task", {
        "id": "'t' || g", "order_id": "'o' || g", "location": "store", "step": "'pick'", "created_at": "t",
        "updated_at": "t"}, "bench_order WHERE t > now() - interval '3 hours'", p)
    counts["stockcount"] = _insert(conn, "stockcount", {
        "id": "'c' || g", "location": STORE, "sku": "'SKU-' || lpad((1 + g % :skus)::text, 5, '0')",
        "expected": "10", "counted": "10 + v", "variance": "v", "status": "'applied'",
        "at": "now() - make_interval(secs => :span) + make_interval(secs => g * :span / :ncounts)"},
        "(SELECT g, CASE WHEN random() < 0.7 THEN 0 ELSE floor(random() * 7)::int - 3 END AS v"
        " FROM generate_series(1::bigint, :ncounts) g) c", p | {"ncounts": stores * days * 2})
    counts["storereliability"] = _insert(conn, "storereliability", {
        "location": STORE.replace("(g * 7919) % :stores", "g - 1"), "sku_class": "'general'",
        "good": "100 + random() * 100", "bad": "random() * 20", "updated_at": "now()"},
        "generate_series(1, :stores) g", p)
    if superuser:
        conn.execute(text("SET session_replication_role = DEFAULT"))
    return counts


def _timed(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    fn()  # warm up (plans, caches)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return {"p50": statistics.median(times), "p95": p95, "max": times[-1]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="storeline bench hq", description=__doc__.splitlines()[0])
    ap.add_argument("--stores", type=int, default=500)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--per-store-day", type=int, default=10, help="orders per store per day")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--pg", default=ADMIN_URL, help="PostgreSQL admin URL; a scratch database is made beside it")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    ap.add_argument("--db", help="measure on this database (made earlier with --keep) instead of generating one")
    args = ap.parse_args(argv)
    if args.db:
        return _measure_only(args.db, args.runs)

    import psycopg

    from backend.config import normalise_db_url
    from backend.db import _engine_for, make_engine
    from backend.migrate import upgrade

    name = f"storeline_bench_hq_{secrets.token_hex(3)}"
    with psycopg.connect(args.pg, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{args.pg.rsplit('/', 1)[0]}/{name}"
    print(f"scratch database {name}: {args.stores} stores, {args.days} days, {args.per_store_day} orders per store "
          "and day")
    try:
        engine = make_engine(normalise_db_url(url))
        upgrade(engine)
        t0 = time.perf_counter()
        with engine.begin() as conn:
            counts = generate(conn, args.stores, args.days, args.per_store_day)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        with engine.connect() as conn:
            t1 = time.perf_counter()
            conn.execute(text("SELECT count(*) FROM generate_series(1, 1000000)")).scalar()
            calib = (time.perf_counter() - t1) * 1000
        engine.dispose()
        print(f"machine load: SELECT count(*) FROM generate_series(1, 1000000) took {calib:.0f} ms "
              "(about 70 ms on an idle core)")
        print(f"generated in {time.perf_counter() - t0:.1f} s: "
              + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        for what, t, note in _measure(url, args.runs):
            print(f"{what:34} {t['p50']:9.1f} {t['p95']:9.1f} {t['max']:9.1f}  {note}")
    finally:
        _engine_for.cache_clear()
        if not args.keep:
            with psycopg.connect(args.pg, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


def _measure_only(url: str, runs: int) -> int:
    from backend.config import normalise_db_url
    from backend.db import _engine_for, make_engine

    url = normalise_db_url(url)
    engine = make_engine(url)
    import backend.models  # noqa: F401

    SQLModel.metadata.create_all(engine)  # tables added since the database was made (checkfirst)
    engine.dispose()
    try:
        for what, t, note in _measure(url, runs):
            print(f"{what:34} {t['p50']:9.1f} {t['p95']:9.1f} {t['max']:9.1f}  {note}")
    finally:
        _engine_for.cache_clear()
    return 0


def _measure(url: str, runs: int) -> list[tuple[str, dict[str, float], str]]:
    """Time the HQ endpoints over HTTP (in process) and the exceptions scan; the rows of the printed table."""
    from fastapi.testclient import TestClient

    from backend import clock
    from backend.app import create_app
    from backend.config import get_settings
    from backend.db import _engine_for, session_scope
    from backend.seed.bootstrap import ensure_hq_user
    from backend.services import exceptions, hq_rollup

    old_url = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    os.environ["STORELINE_SCHEDULER"] = "false"
    os.environ.setdefault("STORELINE_SECRET_KEY", secrets.token_urlsafe(32))
    get_settings.cache_clear()
    with session_scope() as s:
        ensure_hq_user(s, "hq", "bench-hq")
        s.commit()
    rows: list[tuple[str, dict[str, float], str]] = []
    with TestClient(create_app()) as client:
        r = client.post("/api/v1/auth/token", data={"username": "hq", "password": "bench-hq"})
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        today = clock.now()

        def get(path: str) -> Callable[[], None]:
            def call() -> None:
                resp = client.get(path, headers=h)
                assert resp.status_code == 200, resp.text[:300]
            return call

        def since(days: int) -> str:
            return (today - timedelta(days=days)).date().isoformat()

        with session_scope() as s:
            s.execute(text("DELETE FROM hqrollup"))
            s.execute(text("DELETE FROM hqrollupblock"))
            s.commit()
        perf = client.get("/api/v1/hq/stores/performance", headers=h).json()
        rows.append(("performance, last 7 days", _timed(get("/api/v1/hq/stores/performance"), runs),
                     f"{len(perf['stores'])} stores, chain {perf['chain']['orders_fulfilled']:,} orders"))
        rows.append(("performance, 7 days, CSV", _timed(get("/api/v1/hq/stores/performance?format=csv"), runs), ""))
        rows.append(("performance, 30 days, live", _timed(get(f"/api/v1/hq/stores/performance?from={since(30)}"),
                                                          max(3, runs // 3)), "no rollup"))
        rows.append(("performance, 365 days, live",
                     _timed(get(f"/api/v1/hq/stores/performance?from={since(365)}"), 3), "no rollup"))
        with session_scope() as s:
            t0 = time.perf_counter()
            built = hq_rollup.refresh(s, max_days=10_000)
            took = (time.perf_counter() - t0) * 1000
            while hq_rollup.refresh(s, max_days=10_000) != {"days": 0, "months": 0}:
                pass
        rows.append(("hq_rollup job, from empty", {"p50": took, "p95": took, "max": took},
                     f"{built['days']} days, {built['months']} months"))
        with session_scope() as s:
            steady = _timed(lambda: hq_rollup.refresh(s), 3)
        rows.append(("hq_rollup job, steady", steady, "nothing to do"))
        rows.append(("performance, last 7 days, rollup", _timed(get("/api/v1/hq/stores/performance"), runs), ""))
        rows.append(("performance, 30 days, rollup",
                     _timed(get(f"/api/v1/hq/stores/performance?from={since(30)}"), runs), ""))
        year = client.get(f"/api/v1/hq/stores/performance?from={since(365)}", headers=h).json()
        rows.append(("performance, 365 days, rollup",
                     _timed(get(f"/api/v1/hq/stores/performance?from={since(365)}"), runs),
                     f"chain {year['chain']['orders_fulfilled']:,} orders"))
        rows.append(("trends reject_rate, 28 days", _timed(get("/api/v1/hq/stores/trends?metric=reject_rate"), runs),
                     ""))
        rows.append(("trends promises_kept, 28 days",
                     _timed(get("/api/v1/hq/stores/trends?metric=promises_kept"), runs), ""))
        with session_scope() as s:
            t0 = time.perf_counter()
            raised = exceptions.scan(s)
            first = (time.perf_counter() - t0) * 1000
        with session_scope() as s:
            steady = _timed(lambda: exceptions.scan(s), max(3, runs // 3))
        rows.append(("exceptions scan (first run)", {"p50": first, "p95": first, "max": first},
                     f"{raised:,} raised"))
        rows.append(("exceptions scan (steady)", steady, ""))
    _engine_for(get_settings().db_url()).dispose()
    _engine_for.cache_clear()
    if old_url is None:
        os.environ.pop("DATABASE_URL", None)
    else:
        os.environ["DATABASE_URL"] = old_url
    get_settings.cache_clear()
    print(f"\n{'what':34} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}  notes")
    return rows
