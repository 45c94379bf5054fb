"""`storeline bench promise`: how fast POST /promise answers for a 3-line cart.

Two networks: the demo retailer (`storeline seed demo`: ~50 stores, 3 warehouses, 2,000 SKUs) and a chain of
1,000 stores (placed around US cities) plus 3 warehouses. For each, delivery options for random 3-line carts
shipped near a random store (so pickup stores are in reach):

* in process: the service function (`backend.services.promise.quote`) with a session per call, as a request has;
* over HTTP: a real server (`storeline serve`, one process) on localhost, one request at a time.

Targets: p95 <= 20 ms in process, <= 50 ms over HTTP. A quote is stored each time (one row); `--hold` also holds
the units (more writes). SQLite in a temporary directory by default; `--pg URL` for a fresh PostgreSQL database.

Usage: storeline bench promise [--runs 300] [--hold] [--only demo|1000] [--pg postgresql://postgres@127.0.0.1/postgres]
"""
from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEY = "bench-promise-key-" + secrets.token_hex(8)
TARGETS_MS = {"in process": 20.0, "HTTP": 50.0}


def _point_near(rng: random.Random, lat: float, lon: float, km: float) -> tuple[float, float]:
    return lat + rng.uniform(-km, km) / 111.0, lon + rng.uniform(-km, km) / 85.0


def _chain_1000(rng: random.Random) -> tuple[list[dict], list[dict], list[dict]]:
    """1,000 stores around US cities, 3 warehouses, 300 SKUs; thin store stock, deep warehouse stock."""
    from backend.seed.demo import WAREHOUSES, demo_products, us_cities

    cities = us_cities()
    weights = [c.population for c in cities]
    locs = []
    for i in range(1000):
        c = rng.choices(cities, weights=weights)[0]
        lat, lon = _point_near(rng, c.lat, c.lon, 15)
        locs.append(dict(code=f"B{i + 1:04d}", name=f"{c.name} {c.state} #{i + 1}", type="store", lat=round(lat, 5),
                         lon=round(lon, 5), timezone=c.timezone, ships=True, pickup=True, same_day_radius_km=25,
                         same_day_cutoff="16:00", daily_capacity=rng.choice([40, 60, 80, 120]), holdback=1,
                         address=f"{i + 1} Main St, {c.name}, {c.state}", hours="Mon-Sat 9:00-21:00, Sun 10:00-18:00"))
    by_name = {(c.name, c.state): c for c in cities}
    for code, name, city, state in WAREHOUSES:
        c = by_name.get((city, state)) or cities[0]
        locs.append(dict(code=code, name=name, type="warehouse", lat=c.lat, lon=c.lon, timezone=c.timezone,
                         ships=True, pickup=False, same_day_radius_km=0, same_day_cutoff="14:00",
                         daily_capacity=20_000, safety_stock=2))
    products = demo_products(300, rng)
    stock = []
    for loc in locs:
        for i, p in enumerate(products):
            if loc["type"] == "warehouse":
                stock.append(dict(location=loc["code"], sku=p["sku"], on_hand=200 + rng.randint(0, 100)))
            elif rng.random() < 0.10 + 0.5 / (1 + i / 10):
                stock.append(dict(location=loc["code"], sku=p["sku"], on_hand=rng.randint(1, 4)))
    return locs, products, stock


def _load(name: str, rng: random.Random) -> tuple[list[dict], list[str]]:
    """Load a network into the current database; returns (stores, SKUs carts draw from)."""
    from backend.db import get_engine, session_scope
    from backend.migrate import upgrade
    from backend.principal import Principal
    from backend.seed.bootstrap import ensure_api_key
    from backend.services import feeds, masterdata
    from shared.enums import Role

    upgrade(get_engine())
    if name == "demo":
        from backend.seed.demo import seed_demo

        seed_demo(stores=50, skus=2000, seed=42)
        from backend.models import Location

        with session_scope() as s:
            from sqlmodel import select

            stores = [dict(lat=x.lat, lon=x.lon) for x in s.exec(select(Location).where(Location.type == "store"))]
        skus = [f"SKU-{n:05d}" for n in range(1, 201)]
    else:
        locs, products, stock = _chain_1000(rng)
        actor = Principal(username="bench", role=Role.hq)
        with session_scope() as s:
            for what, r in (("locations", masterdata.upsert_locations(s, locs, actor)),
                            ("products", masterdata.upsert_products(s, products, actor))):
                if r.rejected:
                    raise SystemExit(f"bench promise: {len(r.rejected)} {what} rejected, first: {r.rejected[0]}")
            s.commit()
            r = feeds.apply_levels(s, "snapshot", stock, "bench")
            if r.rejected:
                raise SystemExit(f"bench promise: {len(r.rejected)} stock rows rejected, first: {r.rejected[0]}")
            s.commit()
        stores = [x for x in locs if x["type"] == "store"]
        skus = [p["sku"] for p in products[:150]]
    with session_scope() as s:
        ensure_api_key(s, KEY, "bench promise")
        s.commit()
    return stores, skus


def _carts(rng: random.Random, stores: list[dict], skus: list[str], n: int, hold: bool) -> list[dict]:
    out = []
    for _ in range(n):
        st = rng.choice(stores)
        lat, lon = _point_near(rng, st["lat"], st["lon"], 8)
        out.append({"channel": "web", "ship_to": {"lat": round(lat, 5), "lon": round(lon, 5)}, "hold": hold,
                    "lines": [{"sku": s, "quantity": 1} for s in rng.sample(skus, 3)]})
    return out


def _in_process(carts: list[dict], warm: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds per quote (CPU time shows the cost when other processes share the cores)."""
    from backend.db import session_scope
    from backend.principal import Principal
    from backend.services import promise
    from shared.enums import Role
    from shared.promise import PromiseRequest

    actor = Principal(username="bench", role=Role.integration)
    times, cpu = [], []
    for i, body in enumerate(carts):
        t0, c0 = time.perf_counter(), time.process_time()
        with session_scope() as s:
            promise.quote(s, PromiseRequest.model_validate(body), actor)
        if i >= warm:
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
    return times, cpu


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _over_http(carts: list[dict], warm: int, env: dict[str, str]) -> list[float]:
    import httpx

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as http:
            for _ in range(300):
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    raise SystemExit(f"bench promise: the server stopped: {proc.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
            times = []
            for i, body in enumerate(carts):
                t0 = time.perf_counter()
                r = http.post("/api/v1/promise", json=body)
                dt = (time.perf_counter() - t0) * 1000
                if r.status_code != 200:
                    raise SystemExit(f"bench promise: HTTP {r.status_code}: {r.text[:300]}")
                if i >= warm:
                    times.append(dt)
            return times
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs))) - 1))]


def _pg_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"storeline_bench_promise_{secrets.token_hex(3)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, admin_url.rsplit("/", 1)[0] + "/" + name


def _drop_pg(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="storeline bench promise", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=300, help="carts per network and mode (after 20 warm-up ones)")
    ap.add_argument("--hold", action="store_true", help="ask for a soft hold with every quote")
    ap.add_argument("--only", choices=["demo", "1000"], help="one network only")
    ap.add_argument("--pg", metavar="URL", help="PostgreSQL admin URL: run on a fresh database there")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    warm = 20
    rows = []
    for name in (["demo", "1000"] if not args.only else [args.only]):
        rng = random.Random(args.seed)
        tmp = Path(tempfile.mkdtemp(prefix="storeline-bench-promise-"))
        pg_name = None
        if args.pg:
            pg_name, url = _pg_database(args.pg)
        else:
            url = f"sqlite:///{tmp / 'bench.db'}"
        env = {**os.environ, "DATABASE_URL": url, "STORELINE_DATA_DIR": str(tmp), "STORELINE_SCHEDULER": "false",
               "STORELINE_SECRET_KEY": secrets.token_urlsafe(32), "STORELINE_LOG_JSON": "true"}
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "STORELINE_DATA_DIR", "STORELINE_SCHEDULER",
                                               "STORELINE_SECRET_KEY")})
        from backend.config import get_settings
        from backend.db import _engine_for, get_engine

        get_settings.cache_clear()
        try:
            t0 = time.perf_counter()
            stores, skus = _load(name, rng)
            n_locations = len(stores) + 3
            print(f"loaded {name}: {n_locations} locations in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            label = "demo retailer" if name == "demo" else "1,000 stores"
            times, cpu = _in_process(_carts(rng, stores, skus, args.runs + warm, args.hold), warm)
            rows.append((label, n_locations, "in process", times, cpu))
            get_engine().dispose()
            times = _over_http(_carts(rng, stores, skus, args.runs + warm, args.hold), warm, env)
            rows.append((label, n_locations, "HTTP", times, None))
        finally:
            get_engine().dispose()
            _engine_for.cache_clear()
            if pg_name:
                _drop_pg(args.pg, pg_name)
            shutil.rmtree(tmp, ignore_errors=True)
    db = "PostgreSQL" if args.pg else "SQLite"
    print(f"\nPOST /promise, 3-line carts, {db}{', with hold' if args.hold else ''}, {args.runs} runs each "
          f"(after {warm} warm-up)\n")
    head = (f"{'network':<15}{'locations':>10}  {'mode':<11}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}"
            f"{'cpu p50':>9}{'target p95':>12}  met")
    print(head)
    print("-" * len(head))
    for label, n, mode, times, cpu in rows:
        p95 = _pct(times, 95)
        cpu_p50 = f"{statistics.median(cpu):>9.1f}" if cpu else f"{'-':>9}"
        print(f"{label:<15}{n:>10}  {mode:<11}{statistics.median(times):>8.1f}{p95:>8.1f}{_pct(times, 99):>8.1f}"
              f"{max(times):>8.1f}{cpu_p50}{TARGETS_MS[mode]:>9.0f} ms  {'yes' if p95 <= TARGETS_MS[mode] else 'NO'}")
    print(f"\nload average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0
