"""`storeline demo`: seed the demo retailer on SQLite, start the backend, the simulator and the store app."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from backend.config import get_settings


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the backend exited early with status {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("the backend did not answer /health within a minute")


def _is_seeded() -> bool:
    from sqlalchemy import inspect, text

    from backend.db import get_engine

    engine = get_engine()
    if "location" not in inspect(engine).get_table_names():
        return False
    with engine.connect() as c:
        return bool(c.execute(text("SELECT COUNT(*) FROM location")).scalar())


def run_demo(port: int, rate: float, build_app: bool = True) -> int:
    settings = get_settings()
    url = f"http://127.0.0.1:{port}"
    os.environ.setdefault("STORELINE_PUBLIC_URL", url)
    print(f"Storeline demo. Database: {settings.db_url()}", flush=True)
    from backend.seed.demo import print_logins, seed_demo

    if not _is_seeded():
        print("Seeding the demo retailer (about a minute the first time)...", flush=True)
        seed_demo(verbose=True, history_days=28)
    else:
        import random

        from backend.seed.demo import demo_locations

        print_logins(demo_locations(50, random.Random(42)), {"stores": 50, "warehouses": 3, "skus": 2000,
                                                             "stock_rows": "(kept)"})
    app_ready = settings.app_dir.joinpath("index.html").exists()
    if build_app and not app_ready:
        print("Building the offline store app bundle (once)...", flush=True)
        try:
            from store_app.build import build

            build()
            app_ready = True
        except Exception as e:  # noqa: BLE001 - the demo goes on without the bundle and says so
            print(f"  could not build the store app bundle: {e}", file=sys.stderr)
    procs: list[subprocess.Popen] = []
    exe = [sys.executable, "-m", "backend.cli"]
    try:
        backend = subprocess.Popen([*exe, "serve", "--port", str(port)])
        procs.append(backend)
        _wait_healthy(url, backend)
        procs.append(subprocess.Popen([*exe, "simulate", "--url", url, "--rate", str(rate)]))
        print("\nStoreline is running:", flush=True)
        print(f"  Store app (tablets, offline-capable)  {url}/app/" if app_ready else
              "  Store app bundle missing: run `storeline build-app`")
        print(f"  API and its OpenAPI page              {url}/docs")
        print(f"  Health / metrics                      {url}/health  {url}/metrics")
        print(f"  Orders are being simulated at {rate}/s. Ctrl-C stops everything.\n", flush=True)
        while all(p.poll() is None for p in procs[:1]):
            time.sleep(0.5)
        return backend.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
