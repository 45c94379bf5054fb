"""`storeline bench hq` at toy size: the generator still fits the tables and every timed call answers 200."""
from __future__ import annotations

import pytest

from tests.conftest import IN_CI, PG_ADMIN_URL


def test_bench_hq_runs_at_toy_size(capsys):
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except Exception as e:  # noqa: BLE001
        if IN_CI:
            raise
        pytest.skip(f"PostgreSQL not reachable: {e}")
    from backend.bench import hq

    assert hq.main(["--stores", "4", "--days", "3", "--per-store-day", "3", "--runs", "1", "--pg", PG_ADMIN_URL]) == 0
    out = capsys.readouterr().out
    assert "orders 36" in out and "performance, last 7 days" in out and "4 stores" in out
    assert "exceptions scan (steady)" in out
