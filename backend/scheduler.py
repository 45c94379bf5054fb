"""Periodic jobs, each run once across all backend processes.

The table below is the whole list. A target is imported when first due, so a job whose module is not written yet
is skipped (and said so once in the log). Each target takes a Session and commits its own work.

Once across processes: on PostgreSQL a session-level `pg_try_advisory_lock` on a dedicated connection is held for
the whole run (a process that dies drops its connection and so its lock); on SQLite a lease row in the JobLock table
(`UPDATE ... WHERE until < now`). On both, `JobLock.last_run` says when the job last started anywhere, so
three replicas do not run a 30 s job three times every 30 s.

Jobs run in worker threads (never on the event loop); an exception is logged and the loop goes on.
Tests set `STORELINE_SCHEDULER=false` and call `run_job(name)`.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import anyio
from sqlalchemy import Engine, and_, or_, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from backend import clock
from backend.config import Settings, get_settings
from backend.db import get_engine, is_sqlite, session_scope
from backend.logging import get_logger
from backend.metrics import JOB_RUNS, JOB_SECONDS
from backend.models import JobLock

log = get_logger("storeline.scheduler")
Outcome = Literal["ran", "busy", "not_due", "missing"]
HOLDER = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Job:
    name: str
    interval_s: float
    target: str  # "module:function"


def job_table(settings: Settings) -> list[Job]:
    return [
        Job("exceptions", 30, "backend.services.exceptions:scan"),
        Job("batch", settings.batch_interval_s, "backend.services.routing:run_scheduled_batch"),
        Job("backorders", 60, "backend.services.routing:retry_all_backorders"),
        Job("webhooks", 2, "backend.services.webhooks:deliver_due"),
        Job("holds", 30, "backend.services.promise:expire_holds"),
        Job("stock_alerts", 60, "backend.services.stock_alerts:scan"),
        Job("hq_rollup", 300, "backend.services.hq_rollup:refresh"),
    ]


_missing_logged: set[str] = set()


def resolve(target: str) -> Callable[[Session], object] | None:
    """The job's function, or None while its module or function does not exist yet."""
    module_name, _, func_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is None or not (module_name == e.name or module_name.startswith(e.name + ".")):
            raise  # the module exists but something it imports is missing: a real error
        module = None
    fn = getattr(module, func_name, None) if module is not None else None
    if fn is None and target not in _missing_logged:
        _missing_logged.add(target)
        log.info("job target not available yet; skipped", target=target)
    return fn


def _find(name: str, settings: Settings) -> Job:
    for job in job_table(settings):
        if job.name == name:
            return job
    raise KeyError(f"no scheduled job named {name!r}")


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key per job name."""
    return int.from_bytes(hashlib.blake2b(f"storeline:job:{name}".encode(), digest_size=8).digest(), "big",
                          signed=True)


def _claim(engine: Engine, job: Job, force: bool, lease_s: float | None) -> bool:
    """Mark the job started now if it is due (and, with a lease, not held by a live holder). One statement:
    an upsert whose update only happens under those conditions, so two processes cannot both claim it."""
    now = clock.now()
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    values: dict = {"holder": HOLDER, "last_run": now}
    conditions = []
    if not force:
        conditions.append(or_(JobLock.last_run.is_(None), JobLock.last_run <= now - timedelta(seconds=job.interval_s)))
    if lease_s is not None:
        conditions.append(or_(JobLock.until.is_(None), JobLock.until < now))
        values["until"] = now + timedelta(seconds=lease_s)
    stmt = insert(JobLock).values(name=job.name, **values).on_conflict_do_update(
        index_elements=[JobLock.name], set_=values, where=and_(*conditions) if conditions else None,
    ).returning(JobLock.name)
    with engine.begin() as conn:
        return conn.execute(stmt).first() is not None


def _release_lease(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(JobLock).where(JobLock.name == name, JobLock.holder == HOLDER).values(until=None))


@contextlib.contextmanager
def _pg_lock(engine: Engine, name: str):  # noqa: ANN202
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(name)}).scalar())
        try:
            yield got
        finally:
            if got:
                try:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(name)})
                except Exception:  # noqa: BLE001 - a lost connection has dropped the lock already
                    conn.invalidate()
    finally:
        conn.close()


def run_job(name: str, *, force: bool = True, engine: Engine | None = None,
            settings: Settings | None = None) -> Outcome:
    """Run one job now in this thread, under its cross-process lock. Raises what the job raises.

    `force` ignores the interval (tests and manual runs); the loop passes force=False.
    """
    settings = settings or get_settings()
    job = _find(name, settings)
    fn = resolve(job.target)
    if fn is None:
        return "missing"
    engine = engine or get_engine()
    if is_sqlite(engine):
        # The lease outlives any sane run; a crashed holder's lease expires and the next process takes over.
        if not _claim(engine, job, force, lease_s=max(120.0, 4 * job.interval_s)):
            return "busy" if force else "not_due"
        try:
            _call(job, fn, engine)
        finally:
            _release_lease(engine, job.name)
        return "ran"
    with _pg_lock(engine, job.name) as got:
        if not got:
            return "busy"
        if not _claim(engine, job, force, lease_s=None):
            return "not_due"
        _call(job, fn, engine)
    return "ran"


def _call(job: Job, fn: Callable[[Session], object], engine: Engine) -> None:
    start = time.perf_counter()
    result = "ok"
    try:
        with session_scope(engine) as session:
            fn(session)
    except Exception:
        result = "error"
        raise
    finally:
        JOB_SECONDS.labels(job.name).observe(time.perf_counter() - start)
        JOB_RUNS.labels(job.name, result).inc()


class Scheduler:
    """One asyncio task per job; each wakes at its interval and runs the job in a worker thread."""

    def __init__(self, settings: Settings, tick_s: float | None = None) -> None:
        self.settings = settings
        self.jobs = job_table(settings)
        self.tick_s = tick_s
        self._tasks: list[asyncio.Task] = []
        self._limiter = anyio.CapacityLimiter(len(self.jobs))  # jobs never take the request handlers' threads

    def start(self) -> None:
        for job in self.jobs:
            self._tasks.append(asyncio.create_task(self._loop(job), name=f"job:{job.name}"))
        log.info("scheduler started", jobs=[j.name for j in self.jobs])

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()

    def poll_s(self, job: Job) -> float:
        """How often this process asks whether the job is due: a few times per interval, so that with several
        replicas the job still starts close to its interval (the `last_run` check keeps it to once)."""
        if self.tick_s is not None:
            return self.tick_s
        return min(15.0, max(1.0, job.interval_s / 4))

    async def _loop(self, job: Job) -> None:
        interval = self.poll_s(job)
        await asyncio.sleep(random.uniform(0, min(interval, 5.0)))  # replicas do not all knock at once
        while True:
            started = time.monotonic()
            try:
                await anyio.to_thread.run_sync(lambda: run_job(job.name, force=False, settings=self.settings),
                                               limiter=self._limiter, abandon_on_cancel=True)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one failing job must not stop the others or the server
                log.exception("scheduled job failed", job=job.name)
            await asyncio.sleep(max(0.5, interval - (time.monotonic() - started)))


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Scheduler | None]:
    """For the app's lifespan: run the scheduler while the app runs, when `settings.scheduler` is on."""
    if not settings.scheduler:
        yield None
        return
    scheduler = Scheduler(settings)
    scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.stop()
