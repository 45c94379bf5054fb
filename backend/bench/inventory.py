"""`storeline bench inventory`: stock feeds and availability against a real uvicorn process.

For each database (PostgreSQL and SQLite) it builds a chain of 1,000 locations and a 20,000-SKU catalogue,
starts `uvicorn backend.app:create_app` in a subprocess, and measures over HTTP:

* PUT /inventory/levels with 100,000 rows: a snapshot creating positions, the same snapshot with every value
  changed, a delta feed, and a CSV snapshot (wall time of the whole request, JSON encoding included), plus the
  in-process service time of a changed snapshot (no HTTP, no JSON);
* GET /health as a baseline (the cost of any request on this machine at this moment);
* GET /inventory/availability for one SKU stocked at every location, nearest first from a ZIP (all 1,000
  locations returned), with and without channel exposure rules: p50 / p95 / p99 over sequential requests.

Targets (MISSION.md): a 100,000-row feed <= 5 s on PostgreSQL; availability p95 <= 10 ms over HTTP.

Usage: storeline bench inventory [--rows 100000] [--locations 1000] [--skus 20000] [--requests 1000]
                                 [--db postgresql,sqlite] [--pg URL]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ADMIN_URL = os.environ.get("STORELINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
API_KEY = "bench-inventory-" + secrets.token_hex(8)
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]


def build(url: str, locations: int, skus: int, seed: int = 5) -> tuple[list[str], list[str]]:
    """Locations spread over the continental US, a catalogue, an API key; written straight to the database."""
    from sqlalchemy import insert

    from backend.db import make_engine, session_scope
    from backend.migrate import upgrade
    from backend.models import Location, Product, StoreVersion
    from backend.seed.bootstrap import ensure_api_key

    engine = make_engine(url)
    upgrade(engine)
    rnd = random.Random(seed)
    codes = [f"L{i:04d}" for i in range(locations)]
    catalogue = [f"B-{i:05d}" for i in range(skus)]
    with session_scope(engine) as s:
        kinds = ["store"] * 85 + ["warehouse"] * 10 + ["3pl"] * 5
        s.execute(insert(Location), [dict(code=c, name=f"Bench {c}", type=rnd.choice(kinds), lat=rnd.uniform(26, 48),
                                          lon=rnd.uniform(-123, -69), pickup=True, ships=True) for c in codes])
        s.execute(insert(StoreVersion), [dict(location=c, version=0) for c in codes])
        s.execute(insert(Product), [dict(sku=k, name=f"Bench item {k}", weight_kg=0.5) for k in catalogue])
        ensure_api_key(s, API_KEY, "bench")
        s.commit()
    engine.dispose()
    return codes, catalogue


def _serve(url: str, data_dir: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url, "STORELINE_SCHEDULER": "false", "STORELINE_DATA_DIR": data_dir,
           "STORELINE_LOG_JSON": "false", "STORELINE_SECRET_KEY": secrets.token_hex(32)}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "backend.app:create_app", "--factory", "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(600):
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the backend did not start")


def run_one(db: str, url: str, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    import httpx

    from backend.config import normalise_db_url

    url = normalise_db_url(url)
    rows_out: list[tuple[str, str, str]] = []
    codes, catalogue = build(url, args.locations, args.skus)
    per_loc = max(1, args.rows // len(codes))
    groups = [catalogue[g * per_loc:(g + 1) * per_loc] for g in range(3)]

    def snapshot(group: list[str], bump: int) -> list[dict]:
        return [{"location": c, "sku": k, "on_hand": (i + j + bump) % 40 + 1}
                for i, c in enumerate(codes) for j, k in enumerate(group)]

    with tempfile.TemporaryDirectory() as data_dir:
        proc, base = _serve(url, data_dir)
        try:
            client = httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}, timeout=600)

            def timed_feed(label: str, body: bytes, ctype: str = "application/json") -> None:
                t = time.perf_counter()
                r = client.put("/api/v1/inventory/levels", content=body, headers={"content-type": ctype})
                took = time.perf_counter() - t
                res = r.json()
                assert r.status_code == 200 and not res["rejected"], r.text[:300]
                rows_out.append((db, label, f"{took:.2f} s ({res['applied']:,} rows, {res['changed']:,} changed)"))

            first = snapshot(groups[0], 0)
            timed_feed(f"feed {len(first):,} rows: snapshot, new positions (HTTP, JSON)",
                       json.dumps({"mode": "snapshot", "rows": first}).encode())
            timed_feed(f"feed {len(first):,} rows: snapshot, every value changed (HTTP, JSON)",
                       json.dumps({"mode": "snapshot", "rows": snapshot(groups[0], 7)}).encode())
            delta = [{"location": r["location"], "sku": r["sku"], "delta": 1 + (n % 3)} for n, r in enumerate(first)]
            timed_feed(f"feed {len(first):,} rows: delta (HTTP, JSON)",
                       json.dumps({"mode": "delta", "rows": delta}).encode())
            csv = "location,sku,on_hand\n" + "".join(f"{r['location']},{r['sku']},{r['on_hand']}\n"
                                                     for r in snapshot(groups[1], 0))
            timed_feed(f"feed {len(first):,} rows: snapshot, new positions (HTTP, CSV)", csv.encode(), "text/csv")
            in_process = _in_process_feed(url, snapshot(groups[1], 3))
            rows_out.append((db, f"feed {len(first):,} rows: snapshot, every value changed (in process)",
                             f"{in_process:.2f} s"))
            client.put("/api/v1/inventory/levels", json={"mode": "snapshot", "rows": snapshot(groups[2], 0)})
            total = client.get("/api/v1/inventory/positions", params={"limit": 1}).json()["total"]
            hot = groups[0][0]
            base = []
            for _ in range(args.requests):  # the floor of any request on this machine right now
                t = time.perf_counter()
                client.get("/health")
                base.append((time.perf_counter() - t) * 1000)
            rows_out.append((db, "baseline: GET /health over HTTP (no database)",
                             f"p50 {_pct(base, 50):.1f} ms, p95 {_pct(base, 95):.1f} ms, p99 {_pct(base, 99):.1f} ms"))
            for label, channel in (("availability, 1 SKU x every location, near a ZIP", "web"),
                                   ("availability, same with channel exposure rules", "market")):
                if channel == "market":  # stores expose half their stock, one location none
                    _channel_rules(url, codes[0])
                params = {"sku": hot, "channel": channel, "near": "12207"}
                for _ in range(50):
                    client.get("/api/v1/inventory/availability", params=params)
                lat = []
                n_loc = 0
                for _ in range(args.requests):
                    t = time.perf_counter()
                    r = client.get("/api/v1/inventory/availability", params=params)
                    lat.append((time.perf_counter() - t) * 1000)
                    n_loc = len(r.json()["locations"])
                rows_out.append((db, f"{label} ({n_loc} locations, {total:,} positions)",
                                 f"p50 {_pct(lat, 50):.1f} ms, p95 {_pct(lat, 95):.1f} ms, p99 {_pct(lat, 99):.1f} ms"))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return rows_out


def _in_process_feed(url: str, rows: list[dict]) -> float:
    from backend.db import make_engine, session_scope
    from backend.services import feeds

    engine = make_engine(url)
    with session_scope(engine) as s:
        t = time.perf_counter()
        feeds.apply_levels(s, "snapshot", rows, "bench")
        took = time.perf_counter() - t
    engine.dispose()
    return took


def _channel_rules(url: str, first: str) -> None:
    from backend.db import make_engine, session_scope
    from backend.models import Channel, ChannelRule

    engine = make_engine(url)
    with session_scope(engine) as s:
        s.add(Channel(code="market", name="market"))
        s.flush()
        s.add_all([ChannelRule(channel="market", location_type="store", exposure_pct=50),
                   ChannelRule(channel="market", location=first, exposure_pct=0)])
        s.commit()
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="storeline bench inventory")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--locations", type=int, default=1000)
    ap.add_argument("--skus", type=int, default=20_000)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--db", default="postgresql,sqlite")
    ap.add_argument("--pg", default=ADMIN_URL, help="admin URL of a PostgreSQL server (a scratch database is made)")
    args = ap.parse_args(argv)
    results: list[tuple[str, str, str]] = []
    for db in args.db.split(","):
        if db == "sqlite":
            with tempfile.TemporaryDirectory() as d:
                results += run_one("sqlite", f"sqlite:///{d}/bench.db", args)
        elif db == "postgresql":
            import psycopg

            name = f"storeline_bench_inv_{secrets.token_hex(3)}"
            with psycopg.connect(args.pg, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            try:
                results += run_one("postgresql", f"{args.pg.rsplit('/', 1)[0]}/{name}", args)
            finally:
                with psycopg.connect(args.pg, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            print(f"unknown database {db!r}", file=sys.stderr)
            return 2
    w1 = max(len(r[1]) for r in results)
    print(f"{'db':<11} {'what':<{w1}}  result")
    print(f"{'-' * 11} {'-' * w1}  {'-' * 40}")
    for db, what, res in results:
        print(f"{db:<11} {what:<{w1}}  {res}")
    print(f"(cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
