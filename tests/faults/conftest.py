"""Fault tests: real `storeline serve` processes on a throwaway PostgreSQL cluster of their own.

The cluster is private (initdb into a temporary directory, its own port) so that stopping and restarting it
disturbs nobody else's database; the backend runs as real processes so they can be SIGKILLed. Everything is
bounded in time and cleaned up. These tests are PostgreSQL only and marked slow.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.config import REPO_ROOT
from tests.conftest import HQ_PASSWORD, IN_CI, INTEGRATION_KEY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Cluster:
    """A PostgreSQL cluster in a temporary directory, run as the `postgres` user when we are root."""

    def __init__(self, bindir: Path) -> None:
        self.bin = bindir
        self.root = Path(tempfile.mkdtemp(prefix="storeline-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            self.root.chmod(0o700)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)

    def init(self) -> None:
        (self.root / "owner.pid").write_text(str(os.getpid()))
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.start()

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=120 "
                "-c shared_buffers=64MB")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        import psycopg

        name = f"faults_{secrets.token_hex(4)}"
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


def _remove_stale_clusters(bindir: Path) -> None:
    """Clusters left by a test run that was killed before its teardown (its owner process is gone)."""
    for root in Path(tempfile.gettempdir()).glob("storeline-faults-pg-*"):
        try:
            owner = int((root / "owner.pid").read_text())
            os.kill(owner, 0)
            continue  # its run is still going
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue
        cmd = [str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "-w", "stop"]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    bindir = _pg_bin()
    if bindir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        msg = "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        if IN_CI:
            pytest.fail(f"CI must run the fault tests, but {msg}")
        pytest.skip(msg)
    _remove_stale_clusters(bindir)
    cluster = Cluster(bindir)
    try:
        cluster.init()
    except subprocess.CalledProcessError as e:
        cluster.destroy()
        pytest.skip(f"could not start a private PostgreSQL cluster: {e.stderr[-500:]}")
    yield cluster
    cluster.destroy()


class Backend:
    """`storeline serve` as a process group of its own, so it can be killed like a crashed container."""

    def __init__(self, db_url: str, workers: int, tmp: Path) -> None:
        self.db_url, self.workers, self.tmp = db_url, workers, tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.env = {**os.environ, "DATABASE_URL": db_url, "STORELINE_SECRET_KEY": "faults-" + "k" * 40,
                    "STORELINE_DATA_DIR": str(tmp), "STORELINE_SCHEDULER": "false", "STORELINE_LOG_JSON": "true",
                    "PYTHONUNBUFFERED": "1"}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.tmp / f"server-{self.starts}.log"

    def start(self, timeout: float = 120) -> None:
        self.starts += 1
        with self.log.open("w") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "backend.cli", "serve", "--port", str(self.port), "--workers",
                 str(self.workers)], cwd=REPO_ROOT, env=self.env, stdout=fh, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/ready", timeout=2).status_code == 200:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError("the backend exited:\n" + self.log.read_text()[-3000:])
            time.sleep(0.2)
        raise RuntimeError("the backend did not become ready:\n" + self.log.read_text()[-3000:])

    def kill(self) -> None:
        """SIGKILL every process of the server at once: no shutdown hooks, no rollback from our side."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=timeout)


def bootstrap(db_url: str) -> None:
    """Schema, the HQ user and the integration key (what the tests' `app` fixture makes)."""
    from backend.config import normalise_db_url
    from backend.db import make_engine, session_scope
    from backend.migrate import upgrade
    from backend.seed.bootstrap import ensure_api_key, ensure_hq_user

    engine = make_engine(normalise_db_url(db_url))
    try:
        upgrade(engine)
        with session_scope(engine) as s:
            ensure_hq_user(s, "hq", HQ_PASSWORD)
            ensure_api_key(s, INTEGRATION_KEY, "faults integration")
            s.commit()
    finally:
        engine.dispose()


@pytest.fixture
def backend_factory(pg_cluster, tmp_path) -> Iterator:
    made: list[Backend] = []

    def make(workers: int = 1) -> Backend:
        url = pg_cluster.new_database()
        bootstrap(url)
        b = Backend(url, workers, tmp_path)
        made.append(b)
        b.start()
        return b

    yield make
    for b in made:
        b.stop()


def sql(db_url: str, query: str, *params) -> list[tuple]:
    import psycopg

    with psycopg.connect(db_url, autocommit=True, connect_timeout=10) as conn:
        return conn.execute(query, params).fetchall()


def reservation_mismatches(db_url: str) -> list[tuple]:
    """Stock positions whose `reserved` differs from what their live allocations hold (none may)."""
    return sql(db_url, """
        SELECT i.location, i.sku, i.reserved, COALESCE(a.held, 0)
        FROM inventory i
        LEFT JOIN (SELECT location, sku, SUM(quantity - rejected) AS held FROM allocation
                   WHERE state IN ('reserved', 'released', 'picked', 'packed') GROUP BY location, sku) a
          ON a.location = i.location AND a.sku = i.sku
        WHERE i.reserved <> COALESCE(a.held, 0)""")


def overallocated_lines(db_url: str) -> list[tuple]:
    """Order lines whose live allocations add up to more than the line's quantity (none may)."""
    return sql(db_url, """
        SELECT l.order_id, l.line_id, l.quantity, SUM(a.quantity) FROM orderline l
        JOIN allocation a ON a.line_pk = l.id AND a.state IN ('reserved', 'released', 'picked', 'packed')
        GROUP BY l.order_id, l.line_id, l.quantity HAVING SUM(a.quantity) > l.quantity""")
