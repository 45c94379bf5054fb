"""Test fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is found at STORELINE_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres). Without it the
PostgreSQL half is skipped and the run says so plainly; in CI (CI=true) it is an error instead.
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("STORELINE_SECRET_KEY", "test-secret-" + secrets.token_hex(24))
os.environ["STORELINE_SCHEDULER"] = "false"
os.environ["STORELINE_LOG_JSON"] = "false"

PG_ADMIN_URL = os.environ.get("STORELINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
HQ_PASSWORD = "hq-demo"
INTEGRATION_KEY = "demo-integration-key"

_pg_skip_reason: str | None = None


def _pg_admin():
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    global _pg_skip_reason
    try:
        admin = _pg_admin()
    except Exception as e:  # noqa: BLE001
        _pg_skip_reason = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(e).splitlines()[0]}"
        if IN_CI:
            pytest.fail(f"CI must run the PostgreSQL tests, but {_pg_skip_reason}")
        pytest.skip(_pg_skip_reason)
    name = f"storeline_test_{os.getpid()}_{secrets.token_hex(3)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    from backend.db import _engine_for

    _engine_for.cache_clear()
    with _pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file; each test gets a copy (faster than migrating per test)."""
    from backend.db import make_engine
    from backend.migrate import upgrade

    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def pg_migrated(pg_database_url) -> str:
    from backend.config import normalise_db_url
    from backend.db import make_engine
    from backend.migrate import upgrade

    engine = make_engine(normalise_db_url(pg_database_url))
    upgrade(engine)
    engine.dispose()
    return pg_database_url


def _truncate_pg(url: str) -> None:
    from sqlalchemy import text
    from sqlmodel import SQLModel

    import backend.models  # noqa: F401
    from backend.config import normalise_db_url
    from backend.db import _engine_for

    engine = _engine_for(normalise_db_url(url))
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


def _forget_process_caches() -> None:
    """PostgreSQL tests share one database URL: the per-process copies (network, weights, API keys, webhooks) of
    one test's data must not serve the next test."""
    from backend import process_cache
    from backend.services import routing

    process_cache.forget_all()
    routing.forget_caches()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> Iterator[str]:
    """The database URL of this test, on each backend in turn; the process settings point at it."""
    from backend import clock
    from backend.config import get_settings

    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "storeline.db"
        shutil.copy(template, path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_migrated")
        _truncate_pg(url)
    old = {k: os.environ.get(k) for k in ("DATABASE_URL", "STORELINE_DATA_DIR")}
    os.environ["DATABASE_URL"] = url
    os.environ["STORELINE_DATA_DIR"] = str(tmp_path)
    get_settings.cache_clear()
    clock.reset()
    _forget_process_caches()
    yield url
    clock.reset()
    if request.param == "sqlite":
        from backend.config import normalise_db_url
        from backend.db import _engine_for

        _engine_for(normalise_db_url(url)).dispose()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    get_settings.cache_clear()


@pytest.fixture
def engine(db_url):
    from backend.db import get_engine

    return get_engine()


@pytest.fixture
def session(engine):
    from backend.db import session_scope

    with session_scope(engine) as s:
        yield s


@pytest.fixture
def app(db_url):
    from backend.app import create_app
    from backend.db import session_scope
    from backend.seed.bootstrap import ensure_api_key, ensure_hq_user

    with session_scope() as s:
        ensure_hq_user(s, "hq", HQ_PASSWORD)
        ensure_api_key(s, INTEGRATION_KEY, "demo integration")
        s.commit()
    return create_app()


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def integration() -> dict[str, str]:
    return {"X-API-Key": INTEGRATION_KEY}


def login(client, username: str, password: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def hq(client) -> dict[str, str]:
    return login(client, "hq", HQ_PASSWORD)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    if _pg_skip_reason:
        terminalreporter.write_line(f"NOTE: PostgreSQL tests were SKIPPED: {_pg_skip_reason}", yellow=True, bold=True)


@pytest.fixture
def tmpdir_path() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp())
    yield d
    shutil.rmtree(d, ignore_errors=True)
