"""Start the backend: check the settings, migrate once, then uvicorn with N worker processes."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import uvicorn

from backend.config import get_settings
from backend.db import get_engine
from backend.logging import configure_logging, get_logger
from backend.metrics import MULTIPROC_ENV
from backend.migrate import upgrade


def prepare_multiprocess_metrics(workers: int, data_dir: Path) -> None:
    """Workers write their samples under PROMETHEUS_MULTIPROC_DIR so /metrics adds them up; files left by an
    earlier run would count twice, so the directory starts empty."""
    if workers <= 1:
        return
    path = Path(os.environ.get(MULTIPROC_ENV) or data_dir / "prometheus")
    try:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
    except OSError:  # read-only data dir (containers): a private temporary one
        path = Path(tempfile.mkdtemp(prefix="storeline-prometheus-"))
    os.environ[MULTIPROC_ENV] = str(path)


def serve(host: str, port: int, workers: int) -> int:
    settings = get_settings()
    configure_logging(settings.log_json)
    log = get_logger("storeline.server")
    problem = settings.secret_problem()
    if problem:
        log.error("refusing to start", reason=problem)
        print(f"storeline: {problem}", file=sys.stderr)
        return 2
    upgrade(get_engine())
    get_engine().dispose()
    prepare_multiprocess_metrics(workers, settings.data_dir)
    log.info("starting", host=host, port=port, workers=workers)
    # Info level so worker restarts are logged; a worker busy at full CPU may answer the supervisor's ping late,
    # so it gets 20 s (not uvicorn's 5) before it is taken for hung and killed with its open connections.
    uvicorn.run("backend.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="info", log_config=None, access_log=False, proxy_headers=True,
                timeout_worker_healthcheck=20)
    return 0
