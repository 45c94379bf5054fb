"""HQ and manager insight in the store app: league table (sort, filter, CSV), exceptions, what-if, trends; the
manager's store against the chain. Real backend only (the fake backend has no HQ endpoints)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.helpers import button, expect_text, field, hook, login, open_app, shot, tap, type_into


@pytest.fixture
def activity(server, scenario):
    """Some work at the test store T1: one order picked, packed and shipped, one line rejected (its order then
    has nowhere to go), and an order nobody can fill; then the exception scan the scheduler would run."""
    if server.mode != "real":
        pytest.skip("HQ screens need the real backend")
    base = server.url + "/api/v1"
    tok = httpx.post(f"{base}/auth/token", data={"username": scenario.user, "password": scenario.pin}, timeout=30)
    headers = {"Authorization": f"Bearer {tok.json()['access_token']}"}
    ship, reject = scenario.orders["ship"], scenario.orders["reject"]
    t_ship, t_reject = scenario.task(ship.number), scenario.task(reject.number)
    now = datetime.now(UTC).isoformat()

    def act(type_: str, task: dict, **kw) -> dict:
        return {"id": str(uuid.uuid4()), "type": type_, "task_id": task["id"], "at": now, **kw}

    actions = [act("pick", t_ship, line_id=ln.line_id, quantity=ln.quantity, barcode=ln.barcode) for ln in ship.lines]
    actions += [act("pack", t_ship, packages=1), act("handover_carrier", t_ship, carrier="UPS", tracking=["1ZHQ1"]),
                act("reject", t_reject, line_id="1", quantity=1, reason="damaged")]
    r = httpx.post(f"{base}/sync/push", json={"device_id": "hq-test", "actions": actions}, headers=headers, timeout=60)
    assert r.status_code == 200, r.text[:300]
    assert [x["status"] for x in r.json()["results"]] == ["applied"] * len(actions), r.text[:800]
    r = httpx.post(f"{base}/orders", headers=scenario.KEY, timeout=60, json={
        "channel": "web", "external_id": "HQ-NOSTOCK", "delivery_method": "standard",
        "ship_to": {"lat": 42.66, "lon": -73.77},
        "lines": [{"line_id": "1", "sku": scenario.skus["cap"][0], "quantity": 1}]})
    assert r.status_code in (200, 201), r.text[:300]
    script = ("from backend.db import session_scope\nfrom backend.services.exceptions import scan\n"
              "with session_scope() as s:\n    print(scan(s))\n    s.commit()\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=server.workdir, capture_output=True, text=True,
                         env={**server.env, "PYTHONPATH": str(server.bundle.parents[1])}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return scenario


_DEEP = """el => [el, ...el.querySelectorAll('*')].map(e => (e.getAttribute('aria-label') || '') + ' '
    + (e.childElementCount ? '' : (e.textContent || ''))).join(' ')"""


def expect_deep(page, identifier: str, pattern: str, timeout: float = 15_000) -> None:
    """Wait until the text of a hooked node and everything inside it (labels of nested groups too) matches."""
    rx = re.compile(pattern)
    loc = hook(page, identifier).first
    deadline = time.monotonic() + timeout / 1000
    last = ""
    while time.monotonic() < deadline:
        try:
            last = loc.evaluate(_DEEP) if loc.count() else ""
        except Exception:  # noqa: BLE001 - node re-created meanwhile
            last = ""
        if rx.search(last):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"{identifier!r}: {last[:400]!r} does not match {pattern!r}")


def row_order(page) -> list[str]:
    """The league table's rows from top to bottom (by their place on the screen)."""
    rows = page.locator('[flt-semantics-identifier^="hq-row-"]').evaluate_all(
        "els => els.map(e => [e.getAttribute('flt-semantics-identifier'), e.getBoundingClientRect().top])")
    return [name.removeprefix("hq-row-") for name, _ in sorted(rows, key=lambda r: r[1])]


def test_hq_league_exceptions_whatif_and_trends(app, activity):
    open_app(app, app.url_base)
    type_into(app, field(app, "login-user"), "hq")
    type_into(app, field(app, "login-pin"), "hq-demo")
    app.keyboard.press("Enter")
    expect(hook(app, "hq-league")).to_be_visible(timeout=30_000)
    expect_deep(app, "hq-status", r"4 stores · last 30 days", timeout=30_000)
    expect_text(app, "hq-row-chain", r"Chain")
    expect_text(app, "hq-row-T1", r"T1 · Test Albany")
    expect(hook(app, "hq-row-S101")).to_be_visible()
    assert row_order(app) == ["chain", "S101", "S102", "S103", "T1"]  # by store code at first
    expect(hook(app, "sync-banner")).to_have_count(0)  # HQ has no store queue to sync

    tap(app, "hq-sort-orders_fulfilled")  # most orders first: only T1 shipped one
    expect_text(app, "hq-sort-orders_fulfilled", r"sorted high to low")
    assert row_order(app)[:2] == ["chain", "T1"]
    expect_text(app, "hq-row-T1", r"needs attention|watch")  # a line rejected out of the few released
    expect_text(app, "hq-row-S101", r"no activity")
    tap(app, "hq-sort-orders_fulfilled")  # again: reversed, T1 last
    expect_text(app, "hq-sort-orders_fulfilled", r"sorted low to high")
    assert row_order(app)[-1] == "T1"
    tap(app, "hq-sort-orders_fulfilled")
    shot(app, "29-hq-league")  # docs/hq-league.png is taken on the demo retailer: python -m tests.browser.docs_shots

    type_into(app, field(app, "hq-filter"), "albany")  # filter on the name
    expect(hook(app, "hq-row-S101")).to_have_count(0)
    expect(hook(app, "hq-row-T1")).to_be_visible()
    tap(app, "hq-period-7")
    expect_deep(app, "hq-status", r"last 7 days")
    tap(app, "hq-csv")
    expect_text(app, "hq-csv-url", r"http://127\.0\.0\.1:\d+/api/v1/hq/stores/performance\?from=\d{4}-\d\d-\d\d"
                                   r"&format=csv")
    tap(app, "hq-csv-close")
    expect(app.get_by_role("alertdialog")).to_have_count(0)

    tap(app, "hq-nav-exceptions")
    expect_deep(app, "hq-exceptions", r"Unfillable", timeout=30_000)
    expect_deep(app, "hq-exc-cost", r"Cost of exceptions this week: \$\d+ for \d+ exceptions")
    ack = app.locator('[flt-semantics-identifier^="hq-ack-"]').first
    exc_id = ack.get_attribute("flt-semantics-identifier").removeprefix("hq-ack-")
    tap(app, f"hq-ack-{exc_id}")
    expect_deep(app, "hq-status", r"Acknowledged")
    expect_deep(app, f"hq-exc-{exc_id}", r"Acknowledged")
    tap(app, f"hq-resolve-{exc_id}")
    expect_deep(app, "hq-status", r"Resolved")
    expect(hook(app, f"hq-exc-{exc_id}")).to_have_count(0)
    shot(app, "30-hq-exceptions")

    tap(app, "hq-nav-whatif")
    expect_deep(app, "hq-whatif-version", r"In force: version 0", timeout=30_000)  # from /routing/settings
    type_into(app, field(app, "hq-whatif-package_base"), "20")
    tap(app, "hq-whatif-run")
    expect_deep(app, "hq-whatif-result", r"Actual vs what-if: [1-9]\d* orders", timeout=60_000)
    expect_deep(app, "hq-whatif-fig-total_cost", r"Total cost")
    expect_deep(app, "hq-whatif-fig-promises_kept", r"Promises kept")
    shot(app, "31-hq-whatif")
    tap(app, "hq-whatif-apply")
    expect_deep(app, "hq-whatif-applied", r"Saved as version 1")
    r = httpx.get(f"{activity.server.url}/api/v1/routing/settings", headers=activity.hq, timeout=30).json()
    assert r["version"] == 1 and r["weights"]["package_base"] == 20

    tap(app, "hq-nav-trends")
    expect_deep(app, "hq-trend-chart", r"Orders fulfilled · the chain", timeout=30_000)
    expect_deep(app, "hq-trend-chart", r"28 days · total 1\b")
    tap(app, "hq-trend-store-T1")
    expect_deep(app, "hq-trend-chart", r"Orders fulfilled · T1")
    tap(app, "hq-trend-metric-reject_rate")
    expect_deep(app, "hq-trend-chart", r"Reject rate · T1")
    shot(app, "32-hq-trends")
    activity.server.stop()  # online-only screens: without the server they say so and keep working
    tap(app, "hq-refresh")
    expect_deep(app, "hq-status", r"needs the network")
    tap(app, "hq-nav-league")
    expect_deep(app, "hq-status", r"needs the network")
    expect(button(app, "logout")).to_be_visible()


def test_manager_sees_their_store_against_the_chain(app, activity):
    open_app(app, app.url_base)
    login(app, "s101-mgr", "9999")
    tap(app, "nav-manager")
    expect_deep(app, "manager-vs-chain-status", r"S101 · ", timeout=30_000)
    expect_deep(app, "vs-orders_fulfilled", r"Orders\s*0\s*1")  # S101 shipped nothing; the chain (T1) one
    expect_deep(app, "vs-reject_rate", r"Reject %")
    shot(app, "33-manager-vs-chain")
    r = httpx.get(f"{activity.server.url}/api/v1/hq/stores/performance", timeout=30, headers={
        "Authorization": "Bearer " + httpx.post(f"{activity.server.url}/api/v1/auth/token", timeout=30, data={
            "username": "s101-mgr", "password": "9999"}).json()["access_token"]})
    assert r.status_code == 200 and [s["store"] for s in r.json()["stores"]] == ["S101"], json.dumps(r.json())[:300]
