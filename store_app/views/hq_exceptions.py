"""HQ exceptions queue: open and acknowledged exceptions from ``GET /exceptions`` (promise at risk, unfillable,
repeated rejects, stock mismatches…), each with what to do, and Acknowledge / Resolve buttons calling the API."""

from __future__ import annotations

from typing import Any

import flet as ft

from store_app.components.ui import BAD, FONT, MUTED, PRIMARY, WARN, big_button, clock, hook, text
from store_app.views.hq_common import HQScreen, call, problem

SEVERITY = {"high": BAD, "medium": WARN, "low": PRIMARY}
KIND_WORDS = {"promise_at_risk": "Promise at risk", "unfillable": "Unfillable", "repeated_rejects": "Repeated rejects",
              "stock_mismatch": "Stock mismatch", "stock_shortfall": "Stock shortfall", "task_idle": "Task idle"}


class ExceptionsScreen(HQScreen):
    title = "HQ · exceptions"
    key = "exceptions"

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.items: list[dict] = []

    def build(self) -> ft.Control:
        self.list = ft.Column(spacing=10)
        self.cost = text("", FONT - 2, color=MUTED)
        return self.frame(ft.Column([hook("hq-exc-cost", self.cost), hook("hq-exceptions", self.list)], spacing=10))

    async def load(self) -> None:
        self.say("Loading…")
        self.page.update()
        resp = await call(self, "GET", "/exceptions", params={"limit": 500})
        if resp is None:
            self.offline()
        elif not resp.ok or not isinstance(resp.body, dict):
            self.say(f"The server did not give the exceptions: {problem(resp)}", BAD)
        else:
            self.items = list(resp.body.get("items") or [])
            n_open = sum(1 for x in self.items if x.get("status") == "open")
            self.say(f"{n_open} open · {len(self.items) - n_open} acknowledged")
            report = await call(self, "GET", "/exceptions/cost-report", params={"weeks": 4})
            if report is not None and report.ok and isinstance(report.body, dict):
                self.cost.value = cost_words(report.body)
        self._render()
        self.page.update()

    def _render(self) -> None:
        self.list.controls = [self._card(x) for x in self.items] or [
            text("No open exceptions.", FONT, color=MUTED)]

    def _card(self, x: dict) -> ft.Control:
        colour = SEVERITY.get(x.get("severity") or "", MUTED)
        where = " · ".join(str(v) for v in (x.get("location"), x.get("sku")) if v)
        head = f"{KIND_WORDS.get(x.get('kind') or '', x.get('kind'))} · {x.get('severity')}" + (
            f" · {where}" if where else "") + f" · raised {clock(x.get('raised_at'))}"
        acknowledged = x.get("status") == "acknowledged"
        buttons = [big_button("Resolve", self._act(x, "resolve"), f"hq-resolve-{x['id']}", icon=ft.Icons.CHECK)]
        if not acknowledged:
            buttons.insert(0, big_button("Acknowledge", self._act(x, "acknowledge"), f"hq-ack-{x['id']}",
                                         kind="outlined"))
        box = ft.Container(ft.Column([
            ft.Row([text(head, FONT - 2, weight=ft.FontWeight.BOLD, color=colour),
                    text("Acknowledged" if acknowledged else "Open", FONT - 2, color=MUTED)],
                   alignment=ft.MainAxisAlignment.SPACE_BETWEEN),
            text(x.get("message") or "", FONT),
            text("What to do: " + (x.get("action") or ""), FONT - 2, color=MUTED),
            ft.Row(buttons, spacing=10),
        ], spacing=6), bgcolor="#FFFFFF", padding=14, border_radius=12,
            border=ft.Border.only(left=ft.BorderSide(8, colour)))
        return hook(f"hq-exc-{x['id']}", box)

    def _act(self, x: dict, verb: str):
        async def click(e: Any) -> None:
            resp = await call(self, "POST", f"/exceptions/{x['id']}/{verb}")
            if resp is None:
                self.offline()
            elif not resp.ok:
                self.say(f"Not done: {problem(resp)}", BAD)
            else:
                body = resp.body if isinstance(resp.body, dict) else {}
                if verb == "resolve" or body.get("status") == "resolved":
                    self.items = [i for i in self.items if i.get("id") != x["id"]]
                    self.say(f"Resolved: {KIND_WORDS.get(x.get('kind') or '', x.get('kind'))}.")
                else:
                    self.items = [dict(i, **body) if i.get("id") == x["id"] else i for i in self.items]
                    self.say(f"Acknowledged: {KIND_WORDS.get(x.get('kind') or '', x.get('kind'))}.")
                self._render()
            self.page.update()
        return click


def cost_words(report: dict) -> str:
    """This week's exception cost next to the orders it touched, and the last weeks' total (GET /exceptions/
    cost-report: each kind's handling cost, set by HQ)."""
    weeks = report.get("weeks") or []
    if not weeks:
        return ""
    now = weeks[-1]
    per_order = f", ${now['cost_per_order']:,.0f} an order" if now.get("cost_per_order") is not None else ""
    return (f"Cost of exceptions this week: ${now.get('cost', 0):,.0f} for {now.get('exceptions', 0)} exceptions "
            f"touching {now.get('orders', 0)} orders{per_order} · last {len(weeks)} weeks: "
            f"${report.get('total_cost', 0):,.0f}")
