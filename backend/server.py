"""Start the backend: migrate once, then uvicorn with N worker processes."""
from __future__ import annotations

import uvicorn

from backend.db import get_engine
from backend.migrate import upgrade


def serve(host: str, port: int, workers: int) -> int:
    upgrade(get_engine())
    get_engine().dispose()
    uvicorn.run("backend.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", access_log=False, proxy_headers=True)
    return 0
