"""Manager: workload by step and by associate (the server's figures when online, the tablet's otherwise),
and reassigning an order to another associate (an ``assign`` action through the outbox)."""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any

import flet as ft

from store_app.components.ui import BAD, FONT, MUTED, OK, big_button, due_words, hook, panel, text
from store_app.state import API
from store_app.transport import Offline
from store_app.views.base import Screen
from store_app.views.hq_common import NEEDS_NETWORK, call, cell, compare_rows, period_params, problem

STEP_WORDS = {"pick": "To pick", "pack": "To pack", "handover": "Ready for handover"}


class ManagerScreen(Screen):
    title = "Manager · workload"
    back = True

    def build(self) -> ft.Control:
        self.server = text("Asking the server for the latest workload…", FONT - 2, color=MUTED)
        self.local = ft.Column(spacing=8)
        self.tasks = ft.Column(spacing=8)
        self.versus = ft.Column(spacing=4)
        self.versus_msg = text("Asking the server for your store's figures…", FONT - 2, color=MUTED)
        self._render()
        self.page.run_task(self._fetch)
        self.page.run_task(self._fetch_versus)
        return ft.Column([hook("workload-server", self.server), hook("workload", self.local),
                          hook("manager-vs-chain", panel([
                              text("Your store against the chain · last 30 days", 20, weight=ft.FontWeight.BOLD),
                              hook("manager-vs-chain-status", self.versus_msg), self.versus])),
                          text("Open orders", 22, weight=ft.FontWeight.BOLD), self.tasks],
                         scroll=ft.ScrollMode.AUTO, expand=True, spacing=12)

    def refresh(self, what: str) -> None:
        if what in ("pulled", "local", "pushed"):
            self._render()

    def _render(self) -> None:
        tasks = self.state.cache.open_tasks()
        by_step = Counter(t.get("step") for t in tasks)
        by_person = Counter(t.get("assignee") or "Unassigned" for t in tasks)
        late = sum(1 for t in tasks if due_words(t.get("promise_by"))[1] == BAD)
        self.local.controls = [panel([
            text("Open tasks by step", 20, weight=ft.FontWeight.BOLD),
            ft.Row([hook(f"workload-{k}", text(f"{STEP_WORDS[k]}: {by_step.get(k, 0)}", FONT))
                    for k in STEP_WORDS], spacing=24, wrap=True),
            text(f"Late: {late}", FONT, color=BAD if late else OK),
            text("By associate", 20, weight=ft.FontWeight.BOLD),
            ft.Row([text(f"{who}: {n}", FONT) for who, n in sorted(by_person.items())], spacing=24, wrap=True),
        ])]
        rows = []
        for t in tasks:
            number = t.get("order_number") or t["id"]
            due, colour = due_words(t.get("promise_by"))
            rows.append(hook(f"manage-{number}", ft.Container(ft.Row([
                ft.Column([text(f"{number} · {STEP_WORDS.get(t.get('step'), t.get('step'))}", FONT,
                                weight=ft.FontWeight.BOLD),
                           text(f"{due} · {t.get('assignee') or 'Unassigned'}", FONT - 2, color=colour)],
                          expand=True, spacing=2),
                big_button("Reassign", self._reassign(t), f"reassign-{number}", kind="outlined")]),
                bgcolor="#FFFFFF", padding=12, border_radius=12)))
        self.tasks.controls = rows or [text("No open orders.", FONT, color=MUTED)]

    async def _fetch(self) -> None:
        s = self.state.session
        if s is None or not s.store:
            self.server.value = "No store on this user: showing this tablet's figures."
            self.page.update()
            return
        try:
            token = await self.state.token_for(s.username)
            resp = await self.state.transport.request("GET", f"{API}/stores/{s.store}/workload", token=token)
        except Offline:
            self.server.value = "Offline: showing this tablet's figures."
            self.page.update()
            return
        if not resp.ok or not isinstance(resp.body, dict):
            self.server.value = f"The server did not give the workload (HTTP {resp.status}): showing this tablet's."
        else:
            self.server.value = "Server: " + summarise(resp.body)
        self.page.update()

    async def _fetch_versus(self) -> None:
        """The store's row and the chain's from /hq/stores/performance (a manager sees only those two)."""
        s = self.state.session
        if s is None or not s.store:
            self.versus_msg.value = "No store on this user."
            self.page.update()
            return
        resp = await call(self, "GET", "/hq/stores/performance", params=period_params(30))
        if resp is None:
            self.versus_msg.value = NEEDS_NETWORK
        elif not resp.ok or not isinstance(resp.body, dict):
            self.versus_msg.value = f"The server did not give the figures: {problem(resp)}"
        else:
            mine = next((x for x in resp.body.get("stores") or [] if x.get("store") == s.store), None)
            if mine is None:
                self.versus_msg.value = f"No figures for {s.store} yet."
            else:
                chain = resp.body.get("chain") or {}
                self.versus_msg.value = f"{mine.get('store')} · {mine.get('name')}"
                head = ft.Row([cell("Figure", 190, bold=True, align="left"), cell(s.store, 130, bold=True),
                               cell("Chain", 130, bold=True)], spacing=0)
                self.versus.controls = [head] + [
                    hook(f"vs-{key}", ft.Row([cell(label, 190, align="left"), cell(a, 130, colour=colour,
                                                                                      bold=True),
                                              cell(b, 130)], spacing=0))
                    for key, label, a, b, colour in compare_rows(mine, chain)]
        with contextlib.suppress(Exception):  # the screen may have been left meanwhile
            self.page.update()

    def _reassign(self, task: dict):
        async def click(e: Any) -> None:
            people = [u["username"] for u in self.state.cache.associates() if u.get("role") in (None, "associate",
                                                                                               "manager")]
            number = task.get("order_number") or task["id"]

            def choose(who: str):
                async def pick(e: Any) -> None:
                    self.state.act("assign", task_id=task["id"], assignee=who)
                    self.page.pop_dialog()
                    self.app.toast(f"{number} assigned to {who}.")
                    self._render()
                    self.page.update()
                return pick

            async def cancel(e: Any) -> None:
                self.page.pop_dialog()

            buttons = [big_button(p, choose(p), f"assign-{p}", kind="filled" if p == task.get("assignee") else
                                  "outlined", width=380) for p in people] or [
                text("No associates known on this tablet yet (they arrive with the next sync).", FONT)]
            self.page.show_dialog(ft.AlertDialog(
                modal=True, title=text(f"Assign {number} to", 22, weight=ft.FontWeight.BOLD),
                content=ft.Column(buttons, tight=True, scroll=ft.ScrollMode.AUTO, spacing=8),
                actions=[big_button("Cancel", cancel, "assign-cancel", kind="outlined")]))
        return click


def summarise(body: dict) -> str:
    """A short sentence from the workload answer, whatever extra fields it carries."""
    parts = []
    steps = body.get("open_by_step") or body.get("by_step") or body.get("steps")
    if isinstance(steps, dict):
        parts.append(", ".join(f"{STEP_WORDS.get(k, k)} {v if not isinstance(v, dict) else v.get('count', v)}"
                               for k, v in steps.items()))
    elif isinstance(steps, list):
        parts.append(", ".join(f"{STEP_WORDS.get(x.get('step'), x.get('step'))} {x.get('count', x.get('open', ''))}"
                               for x in steps if isinstance(x, dict)))
    people = body.get("by_associate") or body.get("associates")
    if isinstance(people, list):
        parts.append(", ".join(f"{x.get('username') or x.get('assignee') or 'unassigned'} "
                               f"{x.get('count', x.get('open', ''))} open"
                               + (f", {x['done_today']} done today" if x.get("done_today") else "")
                               for x in people if isinstance(x, dict)))
    if isinstance(body.get("oldest_minutes"), int | float) and body["oldest_minutes"] > 0:
        parts.append(f"oldest open task {int(body['oldest_minutes'])} min")
    elif isinstance(people, dict):
        parts.append(", ".join(f"{k} {v if not isinstance(v, dict) else v.get('count', '')}" for k, v in
                               people.items()))
    return " · ".join(p for p in parts if p) or "received."
