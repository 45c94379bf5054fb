"""Settings, from the environment only (never from the repository)."""
from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STORELINE_", extra="ignore")

    data_dir: Path = Field(default=REPO_ROOT / "data")
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    secret_key: str | None = Field(default=None, description="JWT signing key; generated into data_dir when unset")
    token_minutes: int = 12 * 60
    app_dir: Path = Field(default=REPO_ROOT / "store_app" / "dist")
    public_url: str = "http://127.0.0.1:8000"
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = 40 * 1024 * 1024
    max_json_body_bytes: int = 2 * 1024 * 1024
    batch_interval_s: float = 60.0
    scheduler: bool = True
    login_attempts_per_minute: int = 10
    count_auto_apply_units: int = 2
    count_auto_apply_ratio: float = 0.2
    stock_low_units: int = Field(default=2, ge=0, description="chain-wide ATP of a SKU at or under this raises "
                                 "`stock.low` (a webhook kind) once, until it recovers")
    log_json: bool = True
    allow_generated_secret: bool = Field(default=False, description="let PostgreSQL deployments use a key "
                                         "generated into data_dir (each replica would make its own)")

    def db_url(self) -> str:
        return normalise_db_url(self.database_url or f"sqlite:///{self.data_dir / 'storeline.db'}")

    def secret_problem(self) -> str | None:
        """Why the server must refuse to start (None: it may). With PostgreSQL there are usually several
        replicas, and a key generated into each one's data dir would make tokens valid on one replica only."""
        if self.db_url().startswith("postgresql") and not self.secret_key and not self.allow_generated_secret:
            return ("STORELINE_SECRET_KEY is not set: with PostgreSQL every backend process must share one signing "
                    "key. Set it (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`), or set "
                    "STORELINE_ALLOW_GENERATED_SECRET=1 for a single-process trial.")
        return None

    def jwt_secret(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            tmp.replace(path)
        return path.read_text().strip()


def normalise_db_url(url: str) -> str:
    """`postgresql://user@host/db` (the usual plain form) picks the psycopg 3 driver."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
