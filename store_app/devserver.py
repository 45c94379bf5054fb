"""Development: run the same app in Flet's server web mode (Python on this machine, httpx to the backend).

``storeline store-app --port P`` calls :func:`run`. The browser is only a renderer here, so this mode is
online-only by nature; the tablets use the static bundle from ``storeline build-app`` (see README.md).
"""

from __future__ import annotations

import os
from pathlib import Path


def run(port: int, api_url: str, host: str = "127.0.0.1", data_dir: str | Path | None = None,
        open_browser: bool = False) -> None:
    import flet as ft

    from store_app.main import main

    data = str(data_dir or Path(__file__).resolve().parent.parent / ".build" / "store-app-data")
    os.makedirs(data, exist_ok=True)

    async def session(page: ft.Page) -> None:
        await main(page, api_url=api_url, data_dir=data)

    if not open_browser:
        os.environ["FLET_FORCE_WEB_SERVER"] = "true"  # serve only; do not try to open a browser
    print(f"store app (development, server web mode): http://{host}:{port}/  API: {api_url}", flush=True)
    ft.run(session, host=host, port=port, view=ft.AppView.WEB_BROWSER, no_cdn=True,
           route_url_strategy=ft.RouteUrlStrategy.HASH, web_renderer=ft.WebRenderer.CANVAS_KIT)


if __name__ == "__main__":  # python -m store_app.devserver [PORT] [API_URL]
    import sys

    run(int(sys.argv[1]) if len(sys.argv) > 1 else 8550,
        sys.argv[2] if len(sys.argv) > 2 else os.environ.get("STORELINE_API_URL", "http://127.0.0.1:8000"))
