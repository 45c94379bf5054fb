"""Run Alembic migrations from code (the CLI, the server at start-up and the tests use this)."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from backend.db import is_sqlite

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema. Safe to run from several processes at once on PostgreSQL."""
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        if not is_sqlite(engine):
            conn.execute(text("SELECT pg_advisory_xact_lock(727001)"))
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def regenerate_initial() -> None:
    """Development helper while nothing is released: rewrite the single initial migration from the models."""
    from backend.db import make_engine

    versions = MIGRATIONS / "versions"
    for f in versions.glob("*.py"):
        f.unlink()
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{d}/empty.db"
        engine = make_engine(url)
        cfg = alembic_config(url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
        engine.dispose()
    print("rewrote", *versions.glob("*.py"), file=sys.stderr)


if __name__ == "__main__":
    regenerate_initial()
