"""Reservations are atomic across threads and processes: never negative, never sold twice.

The PostgreSQL-only tests start real processes: worker processes calling `reserve()` directly, and three
uvicorn backends taking orders over HTTP for the last units of a SKU.
"""
from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from backend.models import StockMovement
from backend.services import reservations
from tests import retailer
from tests.conftest import INTEGRATION_KEY
from tests.inventory.util import feed, position

REPO = Path(__file__).resolve().parents[2]
PG_ONLY = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def _grab(engine, barrier, attempts: int) -> int:  # noqa: ANN001
    wins = 0
    barrier.wait()
    for _ in range(attempts):
        with Session(engine) as s:
            if reservations.reserve(s, "S1", "SKU-2", 1, ref="race"):
                wins += 1
            s.commit()
    return wins


def _grab_in_process(url: str, barrier, threads: int, attempts: int) -> int:  # noqa: ANN001
    """One worker process: several threads, each its own connection, all racing for the same units."""
    from backend.config import normalise_db_url
    from backend.db import make_engine

    engine = make_engine(normalise_db_url(url))
    local = threading.Barrier(threads)
    barrier.wait()  # every process is up
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(lambda _: _grab(engine, local, attempts), range(threads)))
    engine.dispose()
    return total


def _check_reserved(client, hq, session, units: int) -> None:
    p = position(client, hq, "S1", "SKU-2")
    assert (p["on_hand"], p["reserved"], p["atp"]) == (5, units, 0)
    moves = session.exec(select(StockMovement).where(StockMovement.cause == "reserve")).all()
    assert sum(m.reserved_delta for m in moves) == units


def test_reserve_race_across_threads(client, hq, integration, engine, session):
    retailer.load(client, hq, integration)  # S1 SKU-2: 5 units
    threads, attempts = 12, 3
    barrier = threading.Barrier(threads)
    with ThreadPoolExecutor(threads) as pool:
        wins = sum(pool.map(lambda _: _grab(engine, barrier, attempts), range(threads)))
    assert wins == 5
    _check_reserved(client, hq, session, 5)


@PG_ONLY
def test_reserve_race_across_processes(client, hq, integration, db_url, session):
    retailer.load(client, hq, integration)
    ctx = multiprocessing.get_context("spawn")
    procs = 3
    with ctx.Manager() as manager:
        barrier = manager.Barrier(procs)
        with ProcessPoolExecutor(procs, mp_context=ctx) as pool:
            futures = [pool.submit(_grab_in_process, db_url, barrier, 4, 5) for _ in range(procs)]
            wins = sum(f.result(timeout=120) for f in futures)
    assert wins == 5
    _check_reserved(client, hq, session, 5)


# ---------------------------------------------------------------------------------------------------------------
# Three backend processes, many concurrent orders for the last units
# ---------------------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def backends(db_url, tmp_path):
    """Three uvicorn processes on the test database; yields their base URLs."""
    env = {**os.environ, "DATABASE_URL": db_url, "STORELINE_SCHEDULER": "false", "STORELINE_LOG_JSON": "false"}
    ports = [_free_port() for _ in range(3)]
    logs = [tmp_path / f"backend-{p}.log" for p in ports]
    procs = [subprocess.Popen([sys.executable, "-m", "uvicorn", "backend.app:create_app", "--factory",
                               "--host", "127.0.0.1", "--port", str(p), "--log-level", "warning"],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
             for p, log in zip(ports, logs, strict=True)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for url, proc, log in zip(urls, procs, logs, strict=True):
            _wait_ready(url, proc, log)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    last = "no answer"
    with httpx.Client(timeout=5) as c:
        for _ in range(600):
            if proc.poll() is not None:
                break
            try:
                r = c.get(f"{url}/ready")
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:300]}"
            except httpx.TransportError as e:
                last = repr(e)
            threading.Event().wait(0.1)  # polling for start-up, not timing anything
    raise RuntimeError(f"backend at {url} did not start ({last}): {log.read_text()[-3000:]}")


@PG_ONLY
def test_concurrent_orders_over_three_backends_take_exactly_the_last_units(client, hq, integration, backends):
    retailer.load(client, hq, integration)
    # SKU-1: 3 at S1 and 2 at S2, none elsewhere. SKU-3: 4 at S3 and plenty at W1.
    feed(client, integration, [dict(location="S1", sku="SKU-1", on_hand=3), dict(location="S2", sku="SKU-1", on_hand=2),
                               dict(location="W1", sku="SKU-1", on_hand=0)])
    bodies = [retailer.order(f"RACE-1-{i}", lines=[("1", "SKU-1", 1)]) for i in range(30)]
    bodies += [retailer.order(f"RACE-3-{i}", lines=[("1", "SKU-3", 1)]) for i in range(20)]
    headers = {"X-API-Key": INTEGRATION_KEY}

    for url in backends:  # warm each process (ZIP table, routing network) so the burst is about the race
        assert httpx.get(f"{url}/api/v1/inventory/availability", params={"sku": "SKU-2", "near": "12207"},
                         headers=headers, timeout=120).status_code == 200

    def place(i: int) -> httpx.Response:
        with httpx.Client(base_url=backends[i % 3], timeout=300) as c:
            return c.post("/api/v1/orders", json=bodies[i], headers=headers)

    with ThreadPoolExecutor(24) as pool:
        responses = list(pool.map(place, range(len(bodies))))
    assert [r.status_code for r in responses] == [201] * len(bodies), [r.text for r in responses if r.status_code
                                                                      != 201][:3]
    orders = [client.get(f"/api/v1/orders/{r.json()['id']}", headers=integration).json() for r in responses]
    live = ("reserved", "released", "picked", "packed", "fulfilled")

    def allocated(o: dict) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in o["lines"][0]["allocations"]:
            if a["state"] in live:
                out[a["location"]] = out.get(a["location"], 0) + a["quantity"]
        return out

    sku1 = orders[:30]
    filled = [o for o in sku1 if allocated(o)]
    assert len(filled) == 5
    assert all(sum(allocated(o).values()) == 1 for o in filled)
    by_loc: dict[str, int] = {}
    for o in filled:
        for loc, q in allocated(o).items():
            by_loc[loc] = by_loc.get(loc, 0) + q
    assert by_loc == {"S1": 3, "S2": 2}
    assert all(o["lines"][0]["status"] == "backordered" for o in sku1 if not allocated(o))
    for loc, units in (("S1", 3), ("S2", 2)):
        p = position(client, hq, loc, "SKU-1")
        assert (p["on_hand"], p["reserved"], p["atp"]) == (units, units, 0)
    # SKU-3: every order is placed; S3 never promises more than its 4 units, the warehouse takes the rest.
    sku3 = [allocated(o) for o in orders[30:]]
    assert all(sum(a.values()) == 1 for a in sku3)
    s3 = sum(a.get("S3", 0) for a in sku3)
    assert s3 <= 4 and s3 + sum(a.get("W1", 0) for a in sku3) == 20
    assert position(client, hq, "S3", "SKU-3")["reserved"] == s3
