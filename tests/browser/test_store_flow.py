"""An associate's day online: sign in, pick and pack with scans, reject a line, hand over a pickup."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.helpers import (
    button,
    expect_text,
    field,
    hook,
    login,
    open_app,
    open_order,
    scan,
    shot,
    tap,
)


def test_pick_pack_and_hand_to_carrier(app, scenario):
    order = scenario.orders["ship"]
    open_app(app, app.url_base)
    shot(app, "01-login")
    login(app, scenario.user, scenario.pin)
    expect_text(app, "sync-banner", r"Online · all work sent")
    expect(hook(app, f"task-{order.number}")).to_be_visible()
    shot(app, "02-queue")

    open_order(app, order.number)
    # a barcode that is not on the order: a warning, nothing picked, the field keeps the focus
    scan(app, "scan", scenario.wrong_barcode)
    expect_text(app, "scan-result", r"Wrong item")
    expect(field(app, "scan")).to_be_focused()
    shot(app, "03-wrong-barcode")
    scans = [ln.barcode for ln in order.lines for _ in range(ln.quantity)]
    for i, code in enumerate(scans):
        scan(app, "scan", code)
        if i < len(scans) - 1:
            expect_text(app, "pick-progress", rf"Picked {i + 1} of {len(scans)}")
    # the last scan turns the screen into the pack step without a tap
    expect(button(app, "pack-confirm")).to_be_visible()
    shot(app, "04-pack")
    tap(app, "packages-plus")
    expect_text(app, "packages", r"^\s*2\b|\b2\s*$")
    tap(app, "box-M")
    scan(app, "pack-weight", "1.4")  # the box button hands the focus to the weight field
    expect(button(app, "carrier-UPS")).to_be_visible()
    tap(app, "carrier-UPS")
    scan(app, "tracking-scan", "1Z999AA10123456784")
    scan(app, "tracking-scan", "1Z999AA10123456785")
    expect_text(app, "tracking-list", r"1Z999AA10123456785")
    shot(app, "05-handover-carrier")
    tap(app, "handover-confirm")
    expect(button(app, "tab-pick")).to_be_visible()
    expect(hook(app, f"task-{order.number}")).to_have_count(0)
    expect_text(app, "sync-banner", r"Online · all work sent", timeout=30_000)
    task = scenario.outcome(order.number)
    assert task["step"] == "done"
    assert [ln["picked"] for ln in task["lines"]] == [ln.quantity for ln in order.lines]
    counts = scenario.applied_counts()
    if counts is not None:
        assert set(counts.values()) == {1}, counts


def test_reject_line_leaves_queue(app, scenario):
    order = scenario.orders["reject"]
    open_app(app, app.url_base)
    login(app, scenario.user, scenario.pin)
    open_order(app, order.number)
    tap(app, f"reject-{order.lines[0].line_id}")
    dialog = app.get_by_role("alertdialog")
    expect(dialog).to_be_visible()
    tap(app, "reason-damaged")
    shot(app, "06-reject-dialog")
    tap(app, "reject-confirm")
    expect(dialog).to_have_count(0)
    # the only line is given back: the order leaves this store's queue
    expect(button(app, "to-queue")).to_be_visible()
    tap(app, "back")
    expect(button(app, "tab-pick")).to_be_visible()
    expect(hook(app, f"task-{order.number}")).to_have_count(0)
    expect_text(app, "sync-banner", r"all work sent", timeout=30_000)
    task = scenario.outcome(order.number)
    assert task["lines"][0]["rejected"] == order.lines[0].quantity


def test_pickup_handover_checks_the_code(app, scenario):
    order = scenario.orders["pickup"]
    open_app(app, app.url_base)
    login(app, scenario.user, scenario.pin)
    open_order(app, order.number)
    for line in order.lines:
        for _ in range(line.quantity):
            scan(app, "scan", line.barcode)
    # pickup orders skip packing: straight to the customer handover
    scan(app, "pickup-code", "0000")
    expect_text(app, "pickup-result", r"does not match")
    expect(button(app, "handover-confirm")).to_be_disabled()
    expect_text(app, "sync-banner", r"all work sent", timeout=30_000)  # the server has made the code by now
    scan(app, "pickup-code", scenario.code_for_pickup())
    expect_text(app, "pickup-result", r"Code matches")
    shot(app, "07-pickup-code")
    tap(app, "handover-confirm")
    expect(button(app, "tab-pickup")).to_be_visible()
    expect(button(app, "tab-pickup")).to_have_text(re.compile(r"Pickups waiting \(0\)"))
    expect_text(app, "sync-banner", r"all work sent", timeout=30_000)
    assert scenario.outcome(order.number)["step"] == "done"
