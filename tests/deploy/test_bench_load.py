"""`storeline bench load` runs end to end on a tiny retailer (figures are for the benchmark, not asserted)."""
from __future__ import annotations

import pytest

from tests.conftest import PG_ADMIN_URL


@pytest.mark.slow
def test_the_load_benchmark_runs_and_reports_each_kind(capsys, pg_database_url):
    from backend.bench import load

    code = load.main(["--seconds", "2", "--warmup", "0.5", "--concurrency", "4", "--stores", "3", "--skus", "30",
                      "--pg", PG_ADMIN_URL])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "order " in out and "availability" in out and "target:" in out, out
    assert "routed 0/" not in out, "orders must be routed end to end"
