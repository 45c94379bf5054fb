"""The tablet keeps working with every server down, survives a reload, and syncs each action exactly once."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import free_port
from tests.browser.helpers import (
    button,
    expect_text,
    hook,
    login,
    open_app,
    open_order,
    scan,
    shot,
    tap,
    text_of,
    wait_ready,
)


def test_offline_work_survives_reload_and_syncs_exactly_once(app, scenario, server):
    packed = scenario.orders["offline_pack"]
    mixed = scenario.orders["offline_reject"]
    cancelled = scenario.orders["offline_cancel"]
    open_app(app, app.url_base)
    login(app, scenario.user, scenario.pin)
    expect_text(app, "sync-banner", r"Online · all work sent")
    # the service worker has precached the bundle once it controls the page (install → activate → claim)
    app.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller !== null",
                          timeout=120_000)

    server.stop()
    waiting = 0

    # 1. pick everything and pack, offline
    open_order(app, packed.number)
    for line in packed.lines:
        for _ in range(line.quantity):
            scan(app, "scan", line.barcode)
            waiting += 1
    expect_text(app, "sync-banner", rf"Offline · {waiting} actions? waiting")
    tap(app, "box-S")
    scan(app, "pack-weight", "0.8")
    waiting += 1
    expect(button(app, "carrier-UPS")).to_be_visible()
    expect_text(app, "sync-banner", rf"Offline · {waiting} actions waiting")
    shot(app, "10-offline-packed")
    tap(app, "back")

    # 2. pick one line, reject the other (not found), offline
    open_order(app, mixed.number)
    scan(app, "scan", mixed.lines[0].barcode)
    waiting += 1
    tap(app, f"reject-{mixed.lines[1].line_id}")
    tap(app, "reason-not_found")
    tap(app, "reject-confirm")
    expect(app.get_by_role("alertdialog")).to_have_count(0)
    waiting += 1
    expect(button(app, "pack-confirm")).to_be_visible()
    tap(app, "back")

    # 3. start picking an order the server will cancel meanwhile
    open_order(app, cancelled.number)
    scan(app, "scan", cancelled.lines[0].barcode)
    waiting += 1
    expect_text(app, "pick-progress", r"Picked 1 of")
    tap(app, "back")
    expect_text(app, "sync-banner", rf"Offline · {waiting} actions waiting")
    shot(app, "11-offline-queue")

    # 4. reload with the server down: the service worker serves the app, IndexedDB still has the work
    app.reload()
    wait_ready(app)
    login(app, scenario.user, scenario.pin)  # offline sign-in against the PIN hash kept on the tablet
    expect_text(app, "sync-banner", rf"Offline · {waiting} actions waiting")
    expect(button(app, "tab-pack")).to_have_text(re.compile(r"To pack \(1\)"))
    expect(button(app, "tab-handover")).to_have_text(re.compile(r"Ready for handover \(1\)"))
    expect_text(app, f"task-{cancelled.number}", r"not sent yet")
    shot(app, "12-offline-after-reload")

    # 5. meanwhile the order is cancelled on the server (through a second process on the same database,
    #    which the tablet cannot see), then the server comes back
    port = free_port()
    other = server.start(port=port)
    try:
        scenario.cancel(cancelled.number, url=f"http://127.0.0.1:{port}")
    finally:
        server.stop(other)
    server.start()
    tap(app, "sync-now")
    expect_text(app, "sync-banner", r"Online · all work sent", timeout=60_000)

    # 6. the conflict is shown on the cancelled order, in plain words; the associate's work is listed
    card = hook(app, f"attention-{cancelled.number}").first
    expect(card).to_be_visible(timeout=30_000)
    words = text_of(card)
    assert "cancelled" in words and "picked 1" in words, words
    shot(app, "13-conflict")

    # 7. the server applied each action exactly once
    task = scenario.task(packed.number)
    assert task["step"] == "handover"
    assert [ln["picked"] for ln in task["lines"]] == [ln.quantity for ln in packed.lines]
    task = scenario.task(mixed.number)
    assert task["step"] == "pack"
    assert (task["lines"][0]["picked"], task["lines"][1]["rejected"]) == (1, 1)
    counts = scenario.applied_counts()
    if counts is not None:
        assert set(counts.values()) == {1}, counts
        assert len(counts) == waiting - 1  # the pick on the cancelled order was refused
    tap(app, f"dismiss-{cancelled.number}")
    expect(hook(app, f"attention-{cancelled.number}")).to_have_count(0)

