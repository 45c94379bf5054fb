"""Browser tests: the built static bundle, served by a backend subprocess at /app/, driven in headless Chromium.

The backend runs as a subprocess on a free port with a fresh SQLite ``DATABASE_URL`` so tests can stop and
restart it (the offline test). Which backend:

* ``STORELINE_BROWSER_BACKEND=real`` (default once ``backend/api/routes/sync.py`` exists): ``storeline serve``
  on a database seeded with ``storeline seed demo`` plus a small test store loaded through the public API;
* ``STORELINE_BROWSER_BACKEND=fake``: ``tests/browser/fake_backend.py``, an in-memory stand-in for the
  tablet contract (for working on the app while the real sync endpoints are missing).
"""

from __future__ import annotations

import copy
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.browser.helpers import ARTIFACTS, EARLY_SEMANTICS
from tests.browser.scenario import FakeScenario, RealScenario, Scenario

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


def backend_mode() -> str:
    mode = os.environ.get("STORELINE_BROWSER_BACKEND")
    if mode:
        return mode
    return "real" if (ROOT / "backend" / "api" / "routes" / "sync.py").exists() else "fake"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A backend subprocess that can be stopped and started again on the same port and database."""

    def __init__(self, mode: str, workdir: Path, bundle: Path) -> None:
        self.mode = mode
        self.workdir = workdir
        self.bundle = bundle
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = open(workdir / "server.log", "ab")  # noqa: SIM115 - closed in close()
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), STORELINE_APP_DIR=str(bundle),
                        STORELINE_DATA_DIR=str(workdir), DATABASE_URL=f"sqlite:///{workdir / 'storeline.db'}",
                        STORELINE_SCHEDULER="false", STORELINE_LOG_JSON="false",
                        STORELINE_SECRET_KEY="browser-tests-secret-0123456789abcdef0123456789",
                        FAKE_STATE_FILE=str(workdir / "fake.pickle"),
                        STORELINE_PUBLIC_URL="http://127.0.0.1")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, port: int) -> list[str]:
        if self.mode == "fake":
            return [sys.executable, str(ROOT / "tests" / "browser" / "fake_backend.py"), str(port), str(self.bundle)]
        return [sys.executable, "-c", "import sys; from backend.cli import main; sys.exit(main())", "serve",
                "--port", str(port)]

    def start(self, port: int | None = None) -> subprocess.Popen:
        port = port or self.port
        proc = subprocess.Popen(self.command(port), cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"backend exited with {proc.returncode}; see {self.workdir / 'server.log'}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            proc.kill()
            raise RuntimeError("backend did not answer /health within 60 s")
        if port == self.port:
            self.proc = proc
        return proc

    def stop(self, proc: subprocess.Popen | None = None) -> None:
        proc = proc or self.proc
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc is self.proc:
            self.proc = None

    def close(self) -> None:
        self.stop()
        self.log.close()


@pytest.fixture(scope="session")
def bundle() -> Path:
    from store_app.build import build

    return build()


@pytest.fixture(scope="session")
def template(bundle: Path, tmp_path_factory):
    """Real backend: one database seeded (demo + the test store and its released orders), copied per test."""
    if backend_mode() != "real":
        yield None
        return
    work = tmp_path_factory.mktemp("template")
    srv = Server("real", work, bundle)
    subprocess.run([sys.executable, "-c", "import sys; from backend.cli import main; sys.exit(main())", "seed",
                    "demo", "--stores", "3", "--skus", "40", "--history-days", "0"], cwd=ROOT, env=srv.env, check=True,
                   stdout=srv.log, stderr=srv.log, timeout=600)
    srv.start()
    try:
        scenario = RealScenario(srv)
    finally:
        srv.close()
    import sqlite3

    con = sqlite3.connect(work / "storeline.db")  # fold the WAL into the file before copying it
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    yield work / "storeline.db", scenario


@pytest.fixture
def server(bundle: Path, tmp_path: Path, template):
    srv = Server(backend_mode(), tmp_path, bundle)
    if template is not None:
        shutil.copyfile(template[0], tmp_path / "storeline.db")
    srv.start()
    yield srv
    srv.close()


@pytest.fixture
def scenario(server: Server, template) -> Scenario:
    if server.mode == "fake":
        return FakeScenario(server)
    scenario = copy.copy(template[1])  # same data, this test's copy of the database
    scenario.server = server
    return scenario


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": ["--no-sandbox", "--disable-dev-shm-usage"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1024, "height": 768}, "device_scale_factor": 1}


@pytest.fixture
def app(page, server: Server, request):
    """A page on the store app with semantics on, CDN requests refused and console errors collected."""
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.text.startswith("[stderr]") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.context.route("https://**", lambda r: r.abort())  # offline means offline: no CDN, nothing external
    page.add_init_script(EARLY_SEMANTICS)
    page.url_base = f"{server.url}/app/"  # type: ignore[attr-defined]
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        page.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"))
    if any("Traceback" in e for e in errors):
        pytest.fail("Python errors in the app:\n" + "\n".join(errors))


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
