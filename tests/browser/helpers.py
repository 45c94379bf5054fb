"""Playwright helpers for the Flet (Flutter web) store app: semantics on, hooks, typing, scanning, waits."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"

# Flutter builds its ARIA tree only after the hidden placeholder is clicked; do it the moment it appears so
# an autofocused field is never taken over by the hidden editing host (see shared/research/flet-testing.md).
EARLY_SEMANTICS = """new MutationObserver((ms, o) => {
  const ph = document.querySelector('flt-semantics-placeholder');
  if (ph) { ph.click(); o.disconnect(); } }).observe(document, {childList: true, subtree: true});"""

_ARM = """el => { el.__fltActive = document.activeElement === el;
  if (!el.__fltActive) new MutationObserver((m, o) => { el.__fltActive = true; o.disconnect(); })
      .observe(el, {attributes: true}); }"""

LOAD_TIMEOUT = 120_000  # first load compiles Pyodide and CanvasKit; generous for 2 loaded cores


def hook(page: Page | Locator, identifier: str) -> Locator:
    return page.locator(f'[flt-semantics-identifier="{identifier}"]')


def field(page: Page, identifier: str) -> Locator:
    """The <input> of a TextField wrapped in ft.Semantics(identifier=...)."""
    node = hook(page, identifier)
    return node.locator("input, textarea").or_(page.locator(
        f'input[flt-semantics-identifier="{identifier}"], textarea[flt-semantics-identifier="{identifier}"]')).first


def button(page: Page, identifier: str) -> Locator:
    node = hook(page, identifier)
    return node.get_by_role("button").or_(page.locator(f'[flt-semantics-identifier="{identifier}"][role="button"]')
                                          ).first


def text_of(loc: Locator) -> str:
    return loc.evaluate("el => (el.getAttribute('aria-label') || '') + ' ' + (el.textContent || '')")


def expect_text(page: Page, identifier: str, pattern: str | re.Pattern, timeout: float = 15_000) -> None:
    """Wait until the hooked node's text (aria-label or content) matches."""
    rx = re.compile(pattern) if isinstance(pattern, str) else pattern
    loc = hook(page, identifier).first
    deadline = time.monotonic() + timeout / 1000
    last = ""
    while time.monotonic() < deadline:
        try:
            last = text_of(loc) if loc.count() else ""
        except Exception:  # noqa: BLE001 - node re-created between count and read
            last = ""
        if rx.search(last):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"{identifier!r}: {last!r} does not match {rx.pattern!r}")


def open_app(page: Page, url: str) -> None:
    page.add_init_script(EARLY_SEMANTICS)
    page.goto(url)
    wait_ready(page)


def wait_ready(page: Page) -> None:
    page.locator("flt-semantics-host flt-semantics").first.wait_for(state="attached", timeout=LOAD_TIMEOUT)
    expect(field(page, "login-user")).to_be_visible(timeout=LOAD_TIMEOUT)


def type_into(page: Page, loc: Locator, value: str) -> None:
    for i in range(3):  # a click can land while Flutter rebuilds the node
        loc.evaluate(_ARM)
        loc.click()
        try:
            page.wait_for_function("el => el.__fltActive && document.activeElement === el",
                                   arg=loc.element_handle(), timeout=3000)
            break
        except Exception:
            if i == 2:
                raise
    page.keyboard.press("Control+A")
    page.keyboard.press("Backspace")
    page.keyboard.type(value)
    expect(loc).to_have_value(value)


def login(page: Page, user: str, pin: str) -> None:
    u = field(page, "login-user")
    type_into(page, u, user)
    type_into(page, field(page, "login-pin"), pin)
    page.keyboard.press("Enter")
    expect(button(page, "tab-pick")).to_be_visible(timeout=30_000)


def scan(page: Page, identifier: str, code: str) -> None:
    """A keyboard-wedge scanner: the app must already have focused the field; keys, then Enter.

    The typed value is checked before Enter, and retyped if a re-render on a loaded machine swallowed keys
    (a real scanner's next scan would do the same)."""
    loc = field(page, identifier)
    for attempt in range(3):
        expect(loc).to_be_focused(timeout=15_000)
        try:
            page.wait_for_function("el => document.activeElement === el", arg=loc.element_handle(), timeout=5000)
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise
            continue  # the field was rendered anew (a sync brought news of this order): find it again
        page.keyboard.type(code)
        try:
            expect(loc).to_have_value(code, timeout=3000)
            break
        except AssertionError:
            if attempt == 2:
                raise
            page.keyboard.press("Control+A")
            page.keyboard.press("Backspace")
    page.keyboard.press("Enter")


def tap(page: Page, identifier: str) -> None:
    b = button(page, identifier)
    expect(b).to_be_enabled(timeout=10_000)
    b.click()


def open_order(page: Page, number: str) -> None:
    """Scan the order number into the queue's search field (focused by the app)."""
    scan(page, "queue-search", number)
    expect(page.get_by_role("heading", name=f"Order {number}")).to_be_visible(timeout=10_000)


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(400)  # let Flutter's ~200 ms animations settle (screenshots only)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def banner(page: Page) -> str:
    return text_of(hook(page, "sync-banner").first)
