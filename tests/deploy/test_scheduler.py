"""Scheduled jobs run once across processes, skip targets not written yet, and survive a failing job."""
from __future__ import annotations

import sys
import threading
import types
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlmodel import Session, func, select

from backend import clock, events, scheduler
from backend.config import Settings
from backend.models import Event, JobLock

CALLS: list[str] = []
GATE = threading.Event()
ENTERED = threading.Event()


def _record(session: Session) -> None:
    events.record(session, "job.test", "job", "record")
    session.commit()
    CALLS.append("record")


def _blocking(session: Session) -> None:
    ENTERED.set()
    assert GATE.wait(30), "the test never opened the gate"
    CALLS.append("blocking")


def _failing(session: Session) -> None:
    CALLS.append("failing")
    raise RuntimeError("boom")


@pytest.fixture
def fake_jobs(monkeypatch):
    module = types.ModuleType("tests_fake_jobs")
    module.record, module.blocking, module.failing = _record, _blocking, _failing
    monkeypatch.setitem(sys.modules, "tests_fake_jobs", module)
    table = [scheduler.Job("record", 30, "tests_fake_jobs:record"),
             scheduler.Job("blocking", 30, "tests_fake_jobs:blocking"),
             scheduler.Job("failing", 30, "tests_fake_jobs:failing"),
             scheduler.Job("unwritten", 30, "backend.services.not_written_yet:run"),
             scheduler.Job("no_function", 30, "backend.clock:no_such_function")]
    monkeypatch.setattr(scheduler, "job_table", lambda settings: table)
    CALLS.clear()
    GATE.clear()
    ENTERED.clear()
    yield table
    GATE.set()


def test_the_table_lists_the_seven_jobs_with_the_batch_interval_from_settings():
    table = scheduler.job_table(Settings(batch_interval_s=123))
    assert [(j.name, j.interval_s) for j in table] == [
        ("exceptions", 30), ("batch", 123), ("backorders", 60), ("webhooks", 2), ("holds", 30),
        ("stock_alerts", 60), ("hq_rollup", 300)]
    assert all(":" in j.target and j.target.startswith("backend.") for j in table)


def test_targets_not_written_yet_are_skipped(db_url, fake_jobs):
    assert scheduler.run_job("unwritten") == "missing"
    assert scheduler.run_job("no_function") == "missing"
    with pytest.raises(KeyError):
        scheduler.run_job("nope")


def test_a_job_runs_when_due_and_records_its_start(db_url, session, fake_jobs):
    assert scheduler.run_job("record", force=False) == "ran"
    assert scheduler.run_job("record", force=False) == "not_due", "30 s have not passed"
    clock.shift(31)
    assert scheduler.run_job("record", force=False) == "ran"
    assert scheduler.run_job("record") == "ran", "tests and manual runs may force it"
    assert CALLS == ["record"] * 3
    n = session.exec(select(func.count()).select_from(Event).where(Event.kind == "job.test")).one()
    assert n == 3
    lock = session.get(JobLock, "record")
    assert lock.last_run is not None and lock.holder == scheduler.HOLDER


def test_a_job_runs_once_at_a_time_across_callers(db_url, fake_jobs):
    """Two callers at once (threads here; processes hold the same database lock): one runs, one is refused."""
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(scheduler.run_job, "blocking")
        assert ENTERED.wait(20)
        assert scheduler.run_job("blocking") == "busy"
        GATE.set()
        assert first.result(timeout=30) == "ran"
    assert CALLS == ["blocking"]
    assert scheduler.run_job("blocking") == "ran", "the lock is released after the run"


def test_a_failing_job_raises_to_a_direct_caller_and_releases_its_lock(db_url, fake_jobs):
    with pytest.raises(RuntimeError, match="boom"):
        scheduler.run_job("failing")
    with pytest.raises(RuntimeError):
        scheduler.run_job("failing")
    assert CALLS == ["failing", "failing"]


def test_a_crashed_holders_lease_expires(db_url, session, fake_jobs):
    """SQLite: a lease left by a dead process blocks until it expires. PostgreSQL: the dead process's
    connection took its advisory lock with it, so the job runs at once."""
    from backend.db import is_sqlite

    session.add(JobLock(name="record", holder="dead-host:1", until=clock.now() + timedelta(minutes=2)))
    session.commit()
    if is_sqlite(session.get_bind()):
        assert scheduler.run_job("record") == "busy"
        clock.shift(121)
    assert scheduler.run_job("record") == "ran"


def test_the_app_runs_the_scheduler_and_a_failing_job_does_not_stop_the_others(db_url, fake_jobs, monkeypatch):
    from fastapi.testclient import TestClient

    from backend.app import create_app

    ran = {"record": threading.Event(), "failing": threading.Event()}
    counts = {"record": 0, "failing": 0}
    original = scheduler.run_job

    def spy(name, **kw):
        try:
            return original(name, **kw)
        finally:
            if name in counts:
                counts[name] += 1
                if counts[name] >= 2:
                    ran[name].set()

    monkeypatch.setattr(scheduler, "run_job", spy)
    monkeypatch.setattr(scheduler.Scheduler, "poll_s", lambda self, job: 0.05)
    table = [j for j in fake_jobs if j.name in ("record", "failing")]
    monkeypatch.setattr(scheduler, "job_table", lambda settings: [scheduler.Job(j.name, 0, j.target) for j in table])
    app = create_app(Settings(scheduler=True, log_json=False))
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        assert isinstance(app.state.scheduler, scheduler.Scheduler)
        assert ran["failing"].wait(20) and ran["record"].wait(20), counts
    assert CALLS.count("failing") >= 2 and CALLS.count("record") >= 2
    assert app.state.scheduler is None or not app.state.scheduler._tasks


def test_tests_run_without_the_scheduler(db_url):
    from fastapi.testclient import TestClient

    from backend.app import create_app

    app = create_app()
    with TestClient(app):
        assert app.state.scheduler is None
