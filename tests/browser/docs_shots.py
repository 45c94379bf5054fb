"""The README's HQ screenshot, taken on the demo retailer (with its seeded weeks of history) in headless Chromium.

Usage: python -m tests.browser.docs_shots http://127.0.0.1:8000   (a running `storeline demo` or `serve` with the
demo seed and the app bundle built). Writes docs/hq-league.png.
"""
from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser.conftest import CHROMIUM
from tests.browser.helpers import field, hook, open_app, tap, type_into

DOCS = Path(__file__).resolve().parents[2] / "docs"


def main(url: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        open_app(page, url.rstrip("/") + "/app/")
        type_into(page, field(page, "login-user"), "hq")
        type_into(page, field(page, "login-pin"), "hq-demo")
        page.keyboard.press("Enter")
        expect(hook(page, "hq-row-S101")).to_be_visible(timeout=60_000)
        tap(page, "hq-sort-reject_rate")  # the stores that need attention first
        page.wait_for_timeout(800)
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "hq-league.png"))
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")
