from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fresh_promise_caches():
    """PostgreSQL tests share one database URL: per-process caches must not carry one test's data to the next."""
    from backend.services import routing
    from backend.services.promise import reset_caches

    reset_caches()
    routing._cache.clear()  # routing's network copy (5 s) too
    yield
    reset_caches()
