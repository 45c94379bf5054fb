"""The manager's workload and reassigning, and counting stock with a scanner."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.helpers import button, expect_text, hook, login, open_app, scan, shot, tap


def test_manager_sees_workload_and_reassigns(app, scenario):
    order = scenario.orders["ship"]
    open_app(app, app.url_base)
    login(app, scenario.manager, scenario.manager_pin)
    expect_text(app, "sync-banner", r"Online · all work sent")
    tap(app, "nav-manager")
    expect_text(app, "workload-pick", r"To pick: [1-9]")
    expect_text(app, "workload-server", r"Server: .*To pick \d+", timeout=30_000)
    shot(app, "20-manager")
    other = scenario.user.replace("ana", "ben")
    tap(app, f"reassign-{order.number}")
    tap(app, f"assign-{other}")
    expect(app.get_by_role("alertdialog")).to_have_count(0)
    expect_text(app, f"manage-{order.number}", re.escape(other))
    expect_text(app, "sync-banner", r"all work sent", timeout=30_000)
    assert scenario.task(order.number)["assignee"] == other


def test_count_with_a_scanner(app, scenario):
    line = scenario.orders["ship"].lines[0]
    open_app(app, app.url_base)
    login(app, scenario.user, scenario.pin)
    tap(app, "nav-count")
    scan(app, "count-scan", line.barcode)
    expect_text(app, "count-product", r"Trail runner")
    scan(app, "count-qty", "57")  # the scan hands the focus to the quantity; Enter saves
    expect_text(app, "count-message", r"Saved: 57")
    expect_text(app, "count-history", r"57 counted · (waiting to send|applied)")
    expect_text(app, "count-history", r"57 counted · applied", timeout=30_000)
    shot(app, "21-count")
    expect(button(app, "count-save")).to_be_visible()
    expect(hook(app, "count-scan")).to_be_visible()
