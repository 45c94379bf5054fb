"""`storeline bench load`: the production path under a peak mix, end to end over HTTP on PostgreSQL.

1. creates a fresh PostgreSQL database, migrates it and loads the demo retailer (`storeline seed demo`; a small
   generated retailer through the API when the demo seed is missing);
2. starts `storeline serve --workers N` on it (the real server: uvicorn workers, scheduler on);
3. drives a peak mix with asyncio + httpx for a bounded time, closed loop with C concurrent clients:
   orders created (and routed) by the integration key, availability queries near a customer, tablet pulls
   (incremental, per store) and pushes (claim + pick on tasks the pulls returned);
4. prints throughput and p50/p95/p99 per kind, checks a sample of the orders was routed, and drops the database.

Target (MISSION.md): >= 300 orders/s created and routed with p99 < 250 ms, 2 backend processes on PostgreSQL,
on a 2-core machine (which here also runs PostgreSQL and this driver).

Measured (README, "speed"): 40-51 orders/s, p99 2.5-2.6 s in this mix at load average 3-4.5 (33-39 orders/s before
the order path was trimmed); per order 9 ms of backend CPU, 2.4 ms of PostgreSQL CPU and 12 SQL statements in
process. The driver itself costs about 6 ms of CPU per request (httpx), so on 2 shared cores it is one of the
limits: read the "CPU seconds during the run" line next to the rate; `--url` lets it drive a server elsewhere.

Usage: storeline bench load [--workers 2] [--seconds 20] [--concurrency 48] [--mix orders=60,availability=25,
       pull=10,push=5] [--stores 50] [--skus 2000] [--pg URL] [--url URL (an already running server)]
       [--profile FILE (py-spy flame graph of the workers)] [--keep] [--cache-seed]
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ADMIN_URL = os.environ.get("STORELINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
HQ_USER, HQ_PASSWORD = "hq", "hq-demo"
INTEGRATION_KEY = "demo-integration-key"
METHODS = (("same_day", 15), ("next_day", 25), ("standard", 50), ("pickup", 10))
TARGET_RATE, TARGET_P99_MS = 300.0, 250.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]


def _cpu_s(pid: int) -> float:
    """CPU seconds used by a process and its children so far (Linux /proc)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


# ------------------------------------------------------------------------------------------------ database
def create_database(admin_url: str, template: str | None = None) -> str:
    import psycopg

    name = f"storeline_load_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def template_name(stores: int, skus: int) -> str:
    """A seeded database kept between runs (--cache-seed), named for the schema and the retailer's size."""
    import hashlib

    versions = Path(__file__).resolve().parent.parent / "migrations" / "versions"
    digest = hashlib.sha1(b"".join(p.read_bytes() for p in sorted(versions.glob("*.py")))).hexdigest()[:8]
    return f"storeline_load_tpl_{stores}_{skus}_{digest}"


def database_exists(admin_url: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def seeded_database(admin_url: str, env: dict[str, str], stores: int, skus: int, cache: bool) -> tuple[str, bool]:
    """A fresh database holding the retailer: (url, seeded by the demo seed)."""
    tpl = template_name(stores, skus)
    if cache and database_exists(admin_url, tpl):
        return create_database(admin_url, template=tpl), True
    db = create_database(admin_url)
    seeded = prepare({**env, "DATABASE_URL": db}, stores, skus)
    if not seeded:
        bootstrap_access({**env, "DATABASE_URL": db})
    elif cache:
        tpl_url = create_database(admin_url, template=db.rsplit("/", 1)[1])
        import psycopg

        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'ALTER DATABASE "{tpl_url.rsplit("/", 1)[1]}" RENAME TO "{tpl}"')
    return db, seeded


def drop_database(admin_url: str, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _storeline(*args: str) -> list[str]:
    return [sys.executable, "-m", "backend.cli", *args]


def prepare(env: dict[str, str], stores: int, skus: int) -> bool:
    """Migrate, then seed the demo retailer. False when the demo seed does not exist (the caller loads one)."""
    subprocess.run(_storeline("migrate"), env=env, check=True, capture_output=True)
    try:
        import backend.seed.demo  # noqa: F401
    except ModuleNotFoundError:
        return False
    subprocess.run(_storeline("seed", "demo", "--stores", str(stores), "--skus", str(skus)), env=env, check=True,
                   capture_output=True)
    return True


def bootstrap_access(env: dict[str, str]) -> None:
    """The HQ user and integration key a generated retailer is loaded with (the demo seed makes its own)."""
    code = ("from backend.db import session_scope\n"
            "from backend.seed.bootstrap import ensure_api_key, ensure_hq_user\n"
            "with session_scope() as s:\n"
            f"    ensure_hq_user(s, {HQ_USER!r}, {HQ_PASSWORD!r}); ensure_api_key(s, {INTEGRATION_KEY!r}, 'bench')\n"
            "    s.commit()\n")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)


async def load_generated_retailer(client: httpx.AsyncClient, stores: int, skus: int) -> None:
    rng = random.Random(7)
    key = {"X-API-Key": INTEGRATION_KEY}
    locs = [dict(code=f"S{101 + i}", name=f"Store {i}", type="store", lat=40 + rng.uniform(-2, 2),
                 lon=-75 + rng.uniform(-3, 3), timezone="America/New_York", ships=True, pickup=True,
                 same_day_radius_km=25, same_day_cutoff="23:59", daily_capacity=100_000) for i in range(stores)]
    locs.append(dict(code="W1", name="DC", type="warehouse", lat=40.3, lon=-76.9, timezone="America/New_York",
                     ships=True, pickup=False, daily_capacity=1_000_000))
    prods = [dict(sku=f"SKU-{n:05d}", name=f"Item {n}", barcodes=[f"{2000000000000 + n}"], weight_kg=0.5)
             for n in range(1, skus + 1)]
    hq = await _login(client, HQ_USER, HQ_PASSWORD)
    users = [dict(username=f"{loc['code'].lower()}-ana", role="associate", store=loc["code"], pin="1111")
             for loc in locs[:-1]]
    for path, body, h in (("/api/v1/locations", {"locations": locs}, key),
                          ("/api/v1/products", {"products": prods}, key), ("/api/v1/users", {"users": users}, hq)):
        r = await client.put(path, json=body, headers=h, timeout=120)
        r.raise_for_status()
    rows = [dict(location="W1", sku=p["sku"], on_hand=100_000) for p in prods]
    rows += [dict(location=loc["code"], sku=p["sku"], on_hand=rng.randint(1, 4)) for loc in locs[:-1]
             for p in prods if rng.random() < 0.2]
    r = await client.put("/api/v1/inventory/levels", json={"mode": "snapshot", "rows": rows}, headers=key,
                         timeout=300)
    r.raise_for_status()


async def _login(client: httpx.AsyncClient, user: str, pin: str) -> dict[str, str]:
    r = await client.post("/api/v1/auth/token", data={"username": user, "password": pin}, timeout=30)
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


# ------------------------------------------------------------------------------------------------ the mix
@dataclass
class Store:
    code: str
    lat: float
    lon: float
    headers: dict[str, str] | None = None
    cursor: str | None = None
    tasks: dict[str, dict] = field(default_factory=dict)
    busy: bool = False


@dataclass
class World:
    skus: list[str]
    stores: list[Store]
    key: dict[str, str]
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    counter: itertools.count = field(default_factory=itertools.count)
    lat: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    order_ids: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    recording: bool = False


def _order_body(w: World, rng: random.Random) -> dict:
    store = rng.choice(w.stores)
    method = rng.choices([m for m, _ in METHODS], weights=[x for _, x in METHODS])[0]
    lines = [dict(line_id=str(i + 1), sku=sku, quantity=rng.choice((1, 1, 1, 2)))
             for i, sku in enumerate(rng.sample(w.skus, rng.choice((1, 1, 2, 3))))]
    body = dict(channel="web", external_id=f"LOAD-{w.run_id}-{next(w.counter)}", delivery_method=method,
                lines=lines, priority=rng.choice((0, 0, 0, 1)))
    if method == "pickup":
        body["pickup_location"] = store.code
    else:
        body["ship_to"] = {"lat": round(store.lat + rng.uniform(-0.15, 0.15), 5),
                           "lon": round(store.lon + rng.uniform(-0.15, 0.15), 5)}
    return body


async def _timed(w: World, kind: str, coro) -> httpx.Response | None:  # noqa: ANN001
    t = time.perf_counter()
    try:
        r = await coro
    except httpx.HTTPError as e:
        if w.recording:
            w.errors[kind][type(e).__name__] += 1
        return None
    if w.recording:
        w.lat[kind].append((time.perf_counter() - t) * 1000)
        if r.status_code >= 400:
            w.errors[kind][str(r.status_code)] += 1
    return r


async def do_order(client: httpx.AsyncClient, w: World, rng: random.Random) -> None:
    r = await _timed(w, "order", client.post("/api/v1/orders", json=_order_body(w, rng), headers=w.key))
    if r is not None and r.status_code in (200, 201) and w.recording:
        o = r.json()
        w.outcomes[o["status"]] += 1
        if len(w.order_ids) < 2000:
            w.order_ids.append(o["id"])


async def do_availability(client: httpx.AsyncClient, w: World, rng: random.Random) -> None:
    store = rng.choice(w.stores)
    params = {"sku": rng.choice(w.skus), "channel": "web", "near": f"{store.lat:.4f},{store.lon:.4f}",
              "radius_km": 80}
    await _timed(w, "availability", client.get("/api/v1/inventory/availability", params=params, headers=w.key))


async def do_pull(client: httpx.AsyncClient, w: World, rng: random.Random) -> None:
    store = rng.choice([s for s in w.stores if s.headers and not s.busy] or [None])
    if store is None:
        return
    store.busy = True
    try:
        params = {"cursor": store.cursor} if store.cursor else {}
        r = await _timed(w, "pull", client.get("/api/v1/sync/pull", params=params, headers=store.headers))
        if r is None or r.status_code != 200:
            return
        body = r.json()
        store.cursor = body["cursor"]
        for ch in body["changes"]:
            if ch["entity"] == "task":
                if ch["op"] == "delete" or ch["data"].get("step") == "done":
                    store.tasks.pop(ch["id"], None)
                else:
                    store.tasks[ch["id"]] = ch["data"]
    finally:
        store.busy = False


async def do_push(client: httpx.AsyncClient, w: World, rng: random.Random) -> None:
    candidates = [s for s in w.stores if s.headers and s.tasks]
    if not candidates:
        await do_pull(client, w, rng)
        return
    store = rng.choice(candidates)
    task_id, task = store.tasks.popitem()
    actions = [{"id": str(uuid.uuid4()), "type": "claim", "task_id": task_id}]
    line = next((ln for ln in task.get("lines", []) if ln["picked"] + ln["rejected"] < ln["quantity"]), None)
    if line is not None:
        actions.append({"id": str(uuid.uuid4()), "type": "pick", "task_id": task_id, "line_id": line["line_id"],
                        "quantity": 1, "barcode": (line.get("barcodes") or [None])[0]})
    body = {"device_id": f"bench-{store.code}", "actions": actions}
    await _timed(w, "push", client.post("/api/v1/sync/push", json=body, headers=store.headers))


KINDS = {"orders": do_order, "availability": do_availability, "pull": do_pull, "push": do_push}


async def client_loop(client: httpx.AsyncClient, w: World, mix: dict[str, float], stop_at: float, seed: int) -> None:
    rng = random.Random(seed)
    kinds, weights = list(mix), list(mix.values())
    while time.monotonic() < stop_at:
        await KINDS[rng.choices(kinds, weights=weights)[0]](client, w, rng)


async def drive(base: str, seconds: float, warmup: float, concurrency: int, mix: dict[str, float],
                seeded: bool, stores: int, skus: int) -> tuple[World, float]:
    limits = httpx.Limits(max_connections=concurrency + 8, max_keepalive_connections=concurrency + 8)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        if not seeded:
            await load_generated_retailer(client, stores, skus)
        key = {"X-API-Key": INTEGRATION_KEY}
        r = await client.get("/api/v1/locations", params={"type": "store", "limit": 5000}, headers=key)
        r.raise_for_status()
        st = [Store(x["code"], x["lat"], x["lon"]) for x in r.json()["items"]]
        r = await client.get("/api/v1/products", params={"limit": 5000}, headers=key)
        r.raise_for_status()
        w = World(skus=[p["sku"] for p in r.json()["items"]], stores=st, key=key)
        paths = set((await client.get("/openapi.json")).json()["paths"])
        if "/api/v1/sync/pull" not in paths:
            mix = {k: v for k, v in mix.items() if k not in ("pull", "push")}
        if "pull" in mix or "push" in mix:  # tablets: one associate per store (the demo's "ana", PIN 1111)
            for s in st:
                try:
                    s.headers = await _login(client, f"{s.code.lower()}-ana", "1111")
                except httpx.HTTPError:
                    s.headers = None
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(client_loop(client, w, mix, loop.time() + warmup, i) for i in range(concurrency)))
        w.lat.clear()
        w.recording = True
        start = time.monotonic()
        await asyncio.gather(*(client_loop(client, w, mix, start + seconds, 1000 + i) for i in range(concurrency)))
        elapsed = time.monotonic() - start
        w.recording = False
        sample = random.Random(1).sample(w.order_ids, min(100, len(w.order_ids)))
        for oid in sample:
            r = await client.get(f"/api/v1/orders/{oid}", headers=key)
            if r.status_code == 200:
                w.outcomes["read:" + r.json()["status"]] += 1
    return w, elapsed


# ------------------------------------------------------------------------------------------------ server
def start_server(env: dict[str, str], port: int, workers: int, log: Path) -> subprocess.Popen:
    with log.open("w") as fh:
        return subprocess.Popen(_storeline("serve", "--port", str(port), "--workers", str(workers)), env=env,
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(base: str, proc: subprocess.Popen | None, log: Path | None, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("the server exited:\n" + (log.read_text()[-3000:] if log else ""))
        time.sleep(0.3)
    raise RuntimeError(f"{base} did not become ready in {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def profile(pid: int, seconds: float, out: str) -> subprocess.Popen | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("note: py-spy is not installed (pip install py-spy); no profile", file=sys.stderr)
        return None
    return subprocess.Popen([spy, "record", "--subprocesses", "--nonblocking", "-d", str(int(seconds)), "-p",
                             str(pid), "-o", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ------------------------------------------------------------------------------------------------ report
def report(w: World, elapsed: float, workers: int, concurrency: int, cpu: dict[str, float]) -> bool:
    print(f"\nload mix over {elapsed:.1f} s, {workers} backend worker(s), {concurrency} concurrent clients")
    print(f"{'kind':<14}{'count':>8}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}  errors")
    for kind in ("order", "availability", "pull", "push"):
        xs = w.lat.get(kind, [])
        if not xs:
            continue
        errs = ", ".join(f"{k}x{v}" for k, v in sorted(w.errors[kind].items())) or "-"
        print(f"{kind:<14}{len(xs):>8}{len(xs) / elapsed:>9.1f}{_pct(xs, 50):>9.1f}{_pct(xs, 95):>9.1f}"
              f"{_pct(xs, 99):>9.1f}{max(xs):>9.1f}  {errs}")
    total = sum(len(x) for x in w.lat.values())
    print(f"{'all':<14}{total:>8}{total / elapsed:>9.1f}")
    created = {k: v for k, v in w.outcomes.items() if not k.startswith("read:")}
    read = {k[5:]: v for k, v in w.outcomes.items() if k.startswith("read:")}
    print(f"order status at creation: {dict(created)}; re-read sample: {dict(read)}")
    print("CPU seconds during the run: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))
    xs = w.lat.get("order", [])
    rate, p99 = len(xs) / elapsed if elapsed else 0.0, _pct(xs, 99) if xs else float("inf")
    routed = sum(v for k, v in created.items() if k != "created")
    ok = rate >= TARGET_RATE and p99 < TARGET_P99_MS and routed > 0
    print(f"target: >= {TARGET_RATE:.0f} orders/s with p99 < {TARGET_P99_MS:.0f} ms -> "
          f"{rate:.0f} orders/s, p99 {p99:.0f} ms, routed {routed}/{sum(created.values())}: "
          f"{'MET' if ok else 'NOT MET'}")
    return ok


def _parse_mix(text: str) -> dict[str, float]:
    mix = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        if k.strip() not in KINDS:
            raise SystemExit(f"unknown kind {k!r}; use {', '.join(KINDS)}")
        mix[k.strip()] = float(v)
    return mix


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="storeline bench load", description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--concurrency", type=int, default=48)
    ap.add_argument("--mix", default="orders=60,availability=25,pull=10,push=5")
    ap.add_argument("--stores", type=int, default=50)
    ap.add_argument("--skus", type=int, default=2000)
    ap.add_argument("--pg", default=ADMIN_URL, help="PostgreSQL admin URL (a database is created and dropped)")
    ap.add_argument("--url", help="drive an already running server instead (it must hold the demo retailer)")
    ap.add_argument("--profile", help="write a py-spy flame graph (SVG) of the backend workers here")
    ap.add_argument("--keep", action="store_true", help="keep the database afterwards")
    ap.add_argument("--cache-seed", action="store_true",
                    help="keep the seeded retailer as a template database and start later runs from it")
    args = ap.parse_args(argv)
    mix = _parse_mix(args.mix)

    if args.url:
        w, elapsed = asyncio.run(drive(args.url, args.seconds, args.warmup, args.concurrency, mix, True,
                                       args.stores, args.skus))
        report(w, elapsed, args.workers, args.concurrency, {})
        return 0

    port = _free_port()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"storeline-load-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "STORELINE_SECRET_KEY": secrets.token_urlsafe(48),
           "STORELINE_DATA_DIR": str(tmp), "STORELINE_LOG_JSON": "true", "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = None
    t = time.perf_counter()
    db, seeded = seeded_database(args.pg, env, args.stores, args.skus, args.cache_seed)
    env["DATABASE_URL"] = db
    try:
        print(f"database {db.rsplit('/', 1)[1]} ready in {time.perf_counter() - t:.1f} s "
              f"({'demo retailer' if seeded else 'generated retailer'})")
        log = tmp / "server.log"
        proc = start_server(env, port, args.workers, log)
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc, log)
        spy = profile(proc.pid, args.warmup + args.seconds, args.profile) if args.profile else None
        pids = {"server": proc.pid}
        before = {k: _cpu_s(v) for k, v in pids.items()}
        workers_before = {c: _cpu_s(c) for c in _children(proc.pid)}
        me_before = time.process_time()
        w, elapsed = asyncio.run(drive(base, args.seconds, args.warmup, args.concurrency, mix, seeded,
                                       args.stores, args.skus))
        cpu = {"backend workers": sum(_cpu_s(c) - workers_before.get(c, 0.0) for c in _children(proc.pid))
               + _cpu_s(proc.pid) - before["server"], "load driver": time.process_time() - me_before}
        ok = report(w, elapsed, args.workers, args.concurrency, cpu)
        if spy is not None:
            spy.wait(60)
            print(f"profile: {args.profile}")
        del ok  # a benchmark reports; it does not fail the command
        return 0
    finally:
        if proc is not None:
            stop_server(proc)
        if not args.keep:
            drop_database(args.pg, db)
        else:
            print(f"kept database {db}")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
