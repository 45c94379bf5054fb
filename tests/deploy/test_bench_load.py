"""`storeline bench load` runs end to end on a tiny retailer (figures are for the benchmark, not asserted)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_load_benchmark_runs_and_reports_each_kind(pg_database_url):
    # Its own process, as a user runs it (the benchmark drives asyncio; pytest-playwright keeps a loop running here).
    proc = subprocess.run([sys.executable, "-c", "import sys; from backend.cli import main; sys.exit(main())",
                           "bench", "load", "--seconds", "2", "--warmup", "0.5", "--concurrency", "4", "--stores", "3",
                           "--skus", "30", "--pg", PG_ADMIN_URL], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "order " in out and "availability" in out and "target:" in out, out
    assert "routed 0/" not in out, "orders must be routed end to end"
