"""HQ what-if: replay the last N days of orders under changed routing weights (``POST /hq/whatif``) and compare with
what really happened: cost, splits, promises kept, each location's load. "Apply setting" saves the tried weights as
the routing setting in force (``PUT /routing/settings``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import flet as ft

from store_app.components.ui import BAD, FONT, MUTED, OK, big_button, field, hook, panel, text
from store_app.views.hq_common import HQScreen, call, cell, fmt, problem

# The weights offered on the form: (name, label, hint)
KNOBS = [("package_base", "Cost of a package", "higher: fewer split orders"),
         ("opportunity_per_unit", "Cost of taking scarce units", "higher: keeps the last units for same-day")]
FIGURES = {"total_cost": ("Total cost", "num", True), "shipping_cost": ("Shipping cost", "num", True),
           "packages": ("Packages", "int", True), "split_rate": ("Split rate", "pct", True),
           "promises_kept": ("Promises kept", "pct", False), "unfilled_lines": ("Unfilled lines", "int", True)}
MAX_DAYS = 92  # the backend replays at most 92 days


def whatif_body(days: int, batch: bool, weights: dict[str, Any], now: datetime | None = None) -> dict:
    t = now or datetime.now(UTC)
    return {"from": (t - timedelta(days=days)).isoformat(), "to": t.isoformat(), "batch": batch, "weights": weights}


class WhatIfScreen(HQScreen):
    title = "HQ · what-if"
    key = "whatif"

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.settings: dict | None = None
        self.tried: dict[str, Any] | None = None

    def build(self) -> ft.Control:
        self.batch = ft.Switch(label="Batch optimisation", value=True, label_text_style=ft.TextStyle(size=FONT))
        self.knobs: dict[str, ft.TextField] = {}
        rows: list[ft.Control] = [hook("hq-whatif-batch", self.batch)]
        for name, label, hint in KNOBS:
            box, tf = field(label, f"hq-whatif-{name}", hint=hint, keyboard=ft.KeyboardType.NUMBER, width=230)
            self.knobs[name] = tf
            rows.append(box)
        self.days_box, self.days = field("Days of past orders", "hq-whatif-days", value="7",
                                         keyboard=ft.KeyboardType.NUMBER, width=180)
        rows.append(self.days_box)
        self.version = text("", FONT - 2, color=MUTED)
        self.run_btn = big_button("Run what-if", self._run, "hq-whatif-run", icon=ft.Icons.PLAY_ARROW)
        self.busy = ft.ProgressRing(visible=False, width=28, height=28)
        self.result = ft.Column(spacing=10)
        form = panel([text("Try a routing setting on past orders", 20, weight=ft.FontWeight.BOLD),
                      hook("hq-whatif-version", self.version),
                      ft.Row(rows, spacing=16, wrap=True, vertical_alignment=ft.CrossAxisAlignment.CENTER),
                      ft.Row([self.run_btn, self.busy], spacing=12)])
        return self.frame(form, hook("hq-whatif-result", self.result))

    async def load(self) -> None:
        resp = await call(self, "GET", "/routing/settings")
        if resp is None:
            self.offline()
        elif not resp.ok or not isinstance(resp.body, dict):
            self.say(f"The server did not give the routing settings: {problem(resp)}", BAD)
        else:
            self.settings = resp.body
            weights = resp.body.get("weights") or {}
            for name, tf in self.knobs.items():
                if not tf.value:
                    tf.value = f"{weights.get(name, '')}"
            v = resp.body.get("version") or 0
            self.version.value = f"In force: version {v}" + (
                f" by {resp.body.get('created_by')}" if resp.body.get("created_by") else " (published defaults)")
            self.say("")
        self.page.update()

    def _changes(self) -> dict[str, Any]:
        current = (self.settings or {}).get("weights") or {}
        out: dict[str, Any] = {}
        for name, tf in self.knobs.items():
            raw = (tf.value or "").strip()
            if not raw:
                continue
            value = float(raw)
            if current.get(name) is None or abs(float(current[name]) - value) > 1e-12:
                out[name] = value
        return out

    async def _run(self, e: Any = None) -> None:
        if self.busy.visible:
            return
        try:
            changes = self._changes()
            days = int((self.days.value or "7").strip())
            if not 1 <= days <= MAX_DAYS:
                raise ValueError
        except ValueError:
            self.say(f"Weights are numbers, and the days a whole number from 1 to {MAX_DAYS}.", BAD)
            self.page.update()
            return
        self.busy.visible = True
        self.say(f"Replaying the last {days} days of orders…")
        self.page.update()
        try:
            resp = await call(self, "POST", "/hq/whatif", json_body=whatif_body(days, bool(self.batch.value), changes),
                              timeout=120)
        finally:
            self.busy.visible = False
        if resp is None:
            self.offline()
        elif not resp.ok or not isinstance(resp.body, dict):
            self.say(f"The what-if did not run: {problem(resp)}", BAD)
        else:
            self.tried = resp.body.get("weights") or None
            self.say(f"Replayed {resp.body.get('orders', 0)} orders in {float(resp.body.get('seconds') or 0):.1f} s.")
            self.result.controls = self._result(resp.body, changes)
        self.page.update()

    def _result(self, body: dict, changes: dict) -> list[ft.Control]:
        w = (110, 150, 150, 130)
        head = ft.Row([cell("Figure", 200, bold=True, align="left"), cell("Actual", w[1], bold=True),
                       cell("What-if", w[2], bold=True), cell("Change", w[3], bold=True)], spacing=0)
        rows: list[ft.Control] = [head]
        for c in body.get("comparison") or []:
            label, kind, lower_better = FIGURES.get(c.get("figure"), (c.get("figure"), "num", True))
            change = float(c.get("change") or 0.0)
            colour = MUTED if abs(change) < 1e-9 else (OK if (change < 0) == lower_better else BAD)
            sign = "+" if change > 0 else ""
            rows.append(hook(f"hq-whatif-fig-{c.get('figure')}", ft.Row([
                cell(str(label), 200, align="left"), cell(fmt(c.get("actual"), kind), w[1]),
                cell(fmt(c.get("whatif"), kind), w[2]), cell(sign + fmt(change, kind), w[3], colour=colour,
                                                                bold=True)], spacing=0)))
        load_a = (body.get("actual") or {}).get("store_load") or {}
        load_w = (body.get("whatif") or {}).get("store_load") or {}
        loads: list[ft.Control] = [ft.Row([cell("Location", 200, bold=True, align="left"),
                                           cell("Actual", w[1], bold=True), cell("What-if", w[2], bold=True),
                                           cell("Change", w[3], bold=True)], spacing=0)]
        for loc in sorted(set(load_a) | set(load_w), key=lambda k: -(load_a.get(k, 0) + load_w.get(k, 0))):
            a, b = int(load_a.get(loc, 0)), int(load_w.get(loc, 0))
            loads.append(ft.Row([cell(loc, 200, align="left"), cell(str(a), w[1]), cell(str(b), w[2]),
                                 cell(f"{b - a:+d}" if b != a else "0", w[3])], spacing=0))
        tried = ", ".join(f"{k} = {v:g}" for k, v in changes.items()) or "the current weights"
        batch = "with" if body.get("batch") else "without"
        self.apply_msg = text("", FONT - 2, color=MUTED)
        return [
            panel([text(f"Actual vs what-if: {body.get('orders', 0)} orders, {body.get('orders_changed', 0)} "
                        f"routed differently", 20, weight=ft.FontWeight.BOLD),
                   text(f"Tried {tried}, {batch} batch optimisation.", FONT - 2, color=MUTED),
                   ft.Row([ft.Column(rows, spacing=2, tight=True)], scroll=ft.ScrollMode.AUTO)]),
            panel([text("Load by location (orders served)", 18, weight=ft.FontWeight.BOLD),
                   ft.Row([ft.Column(loads, spacing=2, tight=True)], scroll=ft.ScrollMode.AUTO)]),
            ft.Row([big_button("Apply setting", self._apply, "hq-whatif-apply", icon=ft.Icons.SAVE,
                               disabled=not changes), hook("hq-whatif-applied", self.apply_msg)], spacing=12),
        ]

    async def _apply(self, e: Any = None) -> None:
        if not self.tried:
            return
        resp = await call(self, "PUT", "/routing/settings", json_body={
            "weights": self.tried, "note": "applied from the what-if screen"})
        if resp is None:
            self.offline()
        elif not resp.ok or not isinstance(resp.body, dict):
            self.apply_msg.value = f"Not saved: {problem(resp)}"
            self.apply_msg.color = BAD
        else:
            self.settings = resp.body
            self.apply_msg.value = f"Saved as version {resp.body.get('version')}: routing uses it from now on."
            self.apply_msg.color = OK
            self.version.value = f"In force: version {resp.body.get('version')} by {resp.body.get('created_by')}"
        self.page.update()
