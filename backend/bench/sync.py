"""`storeline bench sync`: the tablet protocol over HTTP against a real uvicorn process.

Builds a store with a queue of N open tasks (1-3 lines each, released the way routing releases them), starts
`uvicorn backend.app:create_app` in a subprocess, logs in as an associate and measures:

* a first pull of the whole queue from scratch (following `has_more`; page size 200), per request and in total;
* an incremental pull after one change;
* a push of 200 actions (100 claims + 100 picks on distinct tasks), and the same batch replayed.

Targets (MISSION.md): pull of a 500-task queue from scratch p95 <= 200 ms; push of 200 actions <= 500 ms.

Usage: storeline bench sync [--tasks 500] [--runs 20] [--db sqlite,postgresql] [--pg URL]
"""
from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ADMIN_URL = os.environ.get("STORELINE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PIN = "2468"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_ms(pid: int) -> float:
    """CPU time (user + system) a process has used so far, in ms (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _calibrate() -> float:
    """ms for a fixed pure-Python loop: ~60-90 ms on an idle modern core; more means a busy or slow machine."""
    t = time.perf_counter()
    x = 0
    for i in range(1_000_000):
        x += i
    return (time.perf_counter() - t) * 1000


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]


def build(url: str, tasks: int, seed: int = 11) -> None:
    """A store S1 with `tasks` open tasks, products with barcodes, staff; written straight to the database."""
    import random

    from backend.config import get_settings
    from backend.db import make_engine, session_scope
    from backend.ids import new_id
    from backend.migrate import upgrade
    from backend.models import (
        Allocation,
        Barcode,
        InventoryPosition,
        Location,
        Order,
        OrderLine,
        Product,
        StoreVersion,
        User,
    )
    from backend.security import hash_secret
    from backend.services import fulfilment

    engine = make_engine(url)
    upgrade(engine)
    rnd = random.Random(seed)
    get_settings.cache_clear()
    with session_scope(engine) as s:
        for code in ("S1", "S2"):
            s.add(Location(code=code, name=f"Bench {code}", type="store", lat=42.65, lon=-73.75, pickup=True))
            s.add(StoreVersion(location=code, version=0))
        skus = [f"B-{i:04d}" for i in range(300)]
        for i, sku in enumerate(skus):
            s.add(Product(sku=sku, name=f"Bench item {i}", weight_kg=0.5))
        s.flush()
        for i, sku in enumerate(skus):
            s.add(Barcode(barcode=f"20{i:011d}", sku=sku))
            s.add(InventoryPosition(location="S1", sku=sku, on_hand=10_000, reserved=0))
        pin = hash_secret(PIN)
        for name, role in (("b-ana", "associate"), ("b-ben", "associate"), ("b-mia", "manager")):
            s.add(User(username=name, role=role, store="S1", secret_hash=pin, name=name))
        s.commit()
        allocs: list[Allocation] = []
        for n in range(tasks):
            method = "pickup" if n % 5 == 0 else "same_day"
            o = Order(id=new_id("ord"), channel="web", external_id=f"BENCH-{n}", status="released",
                      delivery_method=method, pickup_location="S1" if method == "pickup" else None,
                      ship_lat=42.65, ship_lon=-73.75)
            s.add(o)
            s.flush()
            for k, sku in enumerate(rnd.sample(skus, rnd.randint(1, 3))):
                q = rnd.randint(1, 3)
                ln = OrderLine(id=new_id("lin"), order_id=o.id, line_id=str(k + 1), sku=sku, quantity=q,
                               status="released")
                s.add(ln)
                s.flush()
                a = Allocation(id=new_id("alc"), order_id=o.id, line_pk=ln.id, location="S1", sku=sku, quantity=q,
                               state="released", decided_by="bench")
                s.add(a)
                allocs.append(a)
            if len(allocs) >= 300:
                s.flush()
                fulfilment.on_released(s, allocs)
                s.commit()
                allocs = []
        if allocs:
            s.flush()
            fulfilment.on_released(s, allocs)
            s.commit()
    engine.dispose()


def run_one(label: str, url: str, tasks: int, runs: int) -> list[tuple[str, str, str]]:
    import httpx

    tmp = Path(tempfile.mkdtemp(prefix="storeline-bench-sync-"))
    env = {**os.environ, "DATABASE_URL": url, "STORELINE_DATA_DIR": str(tmp), "STORELINE_SCHEDULER": "false",
           "STORELINE_LOG_JSON": "false", "STORELINE_SECRET_KEY": os.environ.get("STORELINE_SECRET_KEY")
           or "bench-" + secrets.token_hex(24)}
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "STORELINE_DATA_DIR", "STORELINE_SECRET_KEY")})
    t0 = time.perf_counter()
    build(url, tasks)
    print(f"[{label}] built a {tasks}-task queue in {time.perf_counter() - t0:.1f} s", flush=True)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "backend.app:create_app", "--factory", "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    rows: list[tuple[str, str, str]] = []
    try:
        c = httpx.Client(base_url=base, timeout=60)
        for _ in range(300):
            try:
                if c.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError((proc.stderr.read() if proc.stderr else b"").decode()[-2000:])
            time.sleep(0.1)
        tok = c.post("/api/v1/auth/token", data={"username": "b-ana", "password": PIN}).json()["access_token"]
        c.headers["Authorization"] = f"Bearer {tok}"

        def full_pull() -> tuple[list[float], float, str, dict[str, dict]]:
            pages: list[float] = []
            cursor = None
            tasks_seen: dict[str, dict] = {}
            start = time.perf_counter()
            while True:
                t = time.perf_counter()
                r = c.get("/api/v1/sync/pull", params={"cursor": cursor} if cursor else None)
                pages.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
                body = r.json()
                for ch in body["changes"]:
                    if ch["entity"] == "task":
                        tasks_seen[ch["id"]] = ch["data"]
                cursor = body["cursor"]
                if not body["has_more"]:
                    return pages, (time.perf_counter() - start) * 1000, cursor, tasks_seen

        full_pull()  # warm up (imports, connection pool)
        page_ms: list[float] = []
        total_ms: list[float] = []
        cpu0 = _cpu_ms(proc.pid)
        for _ in range(runs):
            pages, total, cursor, seen = full_pull()
            page_ms += pages
            total_ms.append(total)
        pull_cpu = (_cpu_ms(proc.pid) - cpu0) / runs
        assert len(seen) == tasks, f"snapshot carried {len(seen)} tasks, expected {tasks}"
        rows.append(("pull from scratch, per request (page 200)",
                     f"p50 {statistics.median(page_ms):.0f} ms, p95 {_pct(page_ms, 95):.0f} ms",
                     f"{len(page_ms)} requests"))
        rows.append((f"pull from scratch, whole {tasks}-task queue",
                     f"p50 {statistics.median(total_ms):.0f} ms, p95 {_pct(total_ms, 95):.0f} ms",
                     f"{runs} runs, {len(pages)} pages each; server CPU {pull_cpu:.0f} ms per run"))

        ids = sorted(seen)
        inc_ms: list[float] = []
        for i in range(runs):
            act = {"id": str(uuid.uuid4()), "type": "claim", "task_id": ids[(i * 7) % len(ids)]}
            c.post("/api/v1/sync/push", json={"device_id": "bench", "actions": [act]}).raise_for_status()
            t = time.perf_counter()
            r = c.get("/api/v1/sync/pull", params={"cursor": cursor})
            inc_ms.append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
            cursor = r.json()["cursor"]
        rows.append(("incremental pull after one change",
                     f"p50 {statistics.median(inc_ms):.0f} ms, p95 {_pct(inc_ms, 95):.0f} ms", f"{runs} runs"))

        free = [t for t in ids if seen[t]["assignee"] is None]
        push_ms: list[float] = []
        push_cpu: list[float] = []
        replay_ms: list[float] = []
        applied = 0
        for k in range(min(3, len(free) // 100)):
            batch = []
            for tid in free[k * 100:(k + 1) * 100]:
                line = seen[tid]["lines"][0]
                batch.append({"id": str(uuid.uuid4()), "type": "claim", "task_id": tid})
                batch.append({"id": str(uuid.uuid4()), "type": "pick", "task_id": tid, "line_id": line["line_id"],
                              "quantity": 1, "barcode": line["barcodes"][0]})
            t, cpu0 = time.perf_counter(), _cpu_ms(proc.pid)
            r = c.post("/api/v1/sync/push", json={"device_id": "bench", "actions": batch})
            push_ms.append((time.perf_counter() - t) * 1000)
            push_cpu.append(_cpu_ms(proc.pid) - cpu0)
            r.raise_for_status()
            applied += sum(x["status"] == "applied" for x in r.json()["results"])
            t = time.perf_counter()
            c.post("/api/v1/sync/push", json={"device_id": "bench-2", "actions": batch}).raise_for_status()
            replay_ms.append((time.perf_counter() - t) * 1000)
        rows.append(("push of 200 actions (100 claims + 100 picks)",
                     " / ".join(f"{x:.0f} ms" for x in push_ms),
                     f"{applied} of {200 * len(push_ms)} applied; server CPU "
                     + " / ".join(f"{x:.0f}" for x in push_cpu) + " ms"))
        rows.append(("the same 200 replayed (stored results)", " / ".join(f"{x:.0f} ms" for x in replay_ms), ""))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="storeline bench sync", description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=500)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    ap.add_argument("--pg", default=ADMIN_URL, help="PostgreSQL admin URL (a scratch database is made and dropped)")
    args = ap.parse_args(argv)
    results: list[tuple[str, list[tuple[str, str, str]]]] = []
    for db in [d.strip() for d in args.db.split(",") if d.strip()]:
        if db == "sqlite":
            tmp = Path(tempfile.mkdtemp(prefix="storeline-bench-sync-db-"))
            results.append(("SQLite", run_one("sqlite", f"sqlite:///{tmp}/bench.db", args.tasks, args.runs)))
        elif db == "postgresql":
            import psycopg

            name = f"storeline_bench_sync_{secrets.token_hex(3)}"
            try:
                admin = psycopg.connect(args.pg, autocommit=True, connect_timeout=3)
            except Exception as e:  # noqa: BLE001
                print(f"PostgreSQL skipped: {str(e).splitlines()[0]}")
                continue
            with admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            try:
                from backend.config import normalise_db_url

                url = normalise_db_url(f"{args.pg.rsplit('/', 1)[0]}/{name}")
                results.append(("PostgreSQL", run_one("postgresql", url, args.tasks, args.runs)))
            finally:
                with psycopg.connect(args.pg, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            print(f"unknown database {db!r}", file=sys.stderr)
            return 2
    width = max(len(r[0]) for _, rows in results for r in rows) if results else 40
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nstoreline bench sync: {args.tasks}-task store queue, {os.cpu_count()} CPUs, load average {load:.1f},"
          f" calibration loop {_calibrate():.0f} ms (idle modern core: ~60-90 ms)")
    for label, rows in results:
        print(f"\n{label}")
        for what, figure, note in rows:
            print(f"  {what:<{width}}  {figure:<28}  {note}")
    print("\ntargets: pull of a 500-task queue from scratch p95 <= 200 ms; push of 200 actions <= 500 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
