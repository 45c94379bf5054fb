"""The store's queue: four tabs, cards by urgency, search by order number or scan, conflicts on top."""

from __future__ import annotations

from typing import Any

import flet as ft

from store_app.components.ui import (
    BAD,
    FONT,
    MUTED,
    PRIMARY,
    big_button,
    due_words,
    field,
    focus,
    hook,
    icon_button,
    method_words,
    text,
)
from store_app.local.outbox import conflict_text, remaining
from store_app.views.base import Screen
from store_app.views.words import action_words

TABS = [("pick", "To pick"), ("pack", "To pack"), ("handover", "Ready for handover"), ("pickup", "Pickups waiting")]
OPEN_WORDS = {"pick": "Pick", "pack": "Pack", "handover": "Hand over", "pickup": "Customer pickup"}


def tab_of(task: dict) -> str:
    step = task.get("step")
    if step == "handover":
        return "pickup" if task.get("delivery_method") == "pickup" else "handover"
    return step or "pick"


class QueueScreen(Screen):
    title = "Queue"
    tab = "pick"

    def actions(self) -> list[ft.Control]:
        s = self.state.session
        who = f"{s.name or s.username}" if s else ""
        return [ft.Text(who, color="#FFFFFF", size=FONT),
                icon_button(ft.Icons.LOGOUT, "Sign out", self._logout, "logout", color="#FFFFFF")]

    def build(self) -> ft.Control:
        s = self.state.session
        self.title = f"Queue · {s.store}" if s and s.store else "Queue"
        self.app.set_title(self.title)
        self.search_box, self.search = field("Order number or scan", "queue-search", on_submit=self._search,
                                             expand=True, autofocus=True)
        self.search.on_blur = self._search_blurred
        self.search_msg = text("", FONT - 2, color=BAD)
        self.tabs = ft.Row(spacing=8, scroll=ft.ScrollMode.AUTO)
        self.attention = ft.Column(spacing=10)
        self.list = ft.ListView(spacing=10, expand=True, padding=ft.Padding.only(bottom=24))
        nav = [big_button("Count stock", self._count, "nav-count", icon=ft.Icons.INVENTORY_2, kind="outlined")]
        if s and s.role in ("manager", "hq"):
            nav.append(big_button("Manager", self._manager, "nav-manager", icon=ft.Icons.GROUPS, kind="outlined"))
        self._render()
        return ft.Column([
            ft.Row([self.search_box] + nav, spacing=10),
            ft.Semantics(identifier="search-message", content=self.search_msg),
            self.tabs, self.attention,
            ft.Semantics(identifier="task-list", content=self.list, expand=True),
        ], expand=True, spacing=10)

    async def shown(self) -> None:
        await focus(self.search)

    def refresh(self, what: str) -> None:
        if what in ("local", "pulled", "pushed", "sync"):
            self._render()

    # ------------------------------------------------------------ rendering
    def _render(self) -> None:
        tasks = self.state.cache.open_tasks()
        counts = {k: 0 for k, _ in TABS}
        for t in tasks:
            counts[tab_of(t)] = counts.get(tab_of(t), 0) + 1
        self.tabs.controls = [
            big_button(f"{label} ({counts[key]})", self._tab_click(key), f"tab-{key}",
                       kind="filled" if key == self.tab else "outlined")
            for key, label in TABS]
        self.attention.controls = [self._attention_card(t) for t in self.state.cache.attention()]
        shown = [t for t in tasks if tab_of(t) == self.tab]
        self.list.controls = [self._card(t) for t in shown] or [
            ft.Container(text(f"Nothing {dict(TABS)[self.tab].lower()} right now.", color=MUTED), padding=20)]

    def _card(self, t: dict) -> ft.Control:
        number = t.get("order_number") or t.get("order_id") or t["id"]
        due, colour = due_words(t.get("promise_by"))
        lines = t.get("lines", [])
        items = sum(int(x.get("quantity") or 0) for x in lines)
        left = sum(remaining(x) for x in lines)
        me = self.state.session.username if self.state.session else None
        who = t.get("assignee")
        who_words = "Unassigned" if not who else ("You" if who == me else who)
        detail = f"{items} item{'s' if items != 1 else ''} · {len(lines)} line{'s' if len(lines) != 1 else ''}"
        if t.get("step") == "pick" and left < items:
            detail += f" · {left} left to pick"
        waiting = self.state.db.one("SELECT COUNT(*) n FROM outbox WHERE task_id = ? AND state = 'pending'",
                                    (t["id"],))["n"]
        tab = tab_of(t)
        info = ft.Column([
            ft.Row([text(number, 24, weight=ft.FontWeight.BOLD), text(method_words(t.get("delivery_method")),
                                                                      FONT, color=PRIMARY)], spacing=14),
            text(due, FONT, color=colour, weight=ft.FontWeight.W_600),
            text(f"{detail} · {who_words}" + (f" · {waiting} not sent yet" if waiting else ""), FONT - 2,
                 color=MUTED),
        ], spacing=4, expand=True)
        card = ft.Container(
            content=ft.Row([info, big_button(OPEN_WORDS[tab], self._open(t["id"]), f"open-{number}")],
                           vertical_alignment=ft.CrossAxisAlignment.CENTER),
            bgcolor="#FFFFFF", padding=16, border_radius=14, on_click=self._open(t["id"]),
            border=ft.Border.only(left=ft.BorderSide(8, colour)))
        return hook(f"task-{number}", card)

    def _attention_card(self, t: dict) -> ft.Control:
        number = t.get("order_number") or t["id"]
        conflicts = t.get("conflicts") or []
        rows: list[ft.Control] = [text(f"{number} needs your attention", 22, weight=ft.FontWeight.BOLD, color=BAD)]
        seen: set[str] = set()
        for c in conflicts:
            words = conflict_text(c.get("code"), c.get("message"))
            if words not in seen:
                rows.append(text(words, FONT))
                seen.add(words)
        if conflicts:
            rows.append(text("Not applied: " + "; ".join(action_words(c["body"], t, self.state) for c in conflicts),
                             FONT - 2, color=MUTED))
        else:
            rows.append(text("This order left your queue on the server; your work on it is being sent.", FONT))
        rows.append(ft.Row([big_button("Open", self._open(t["id"]), f"attention-open-{number}", kind="outlined"),
                            big_button("Got it", self._dismiss(t["id"]), f"dismiss-{number}", kind="tonal")]))
        box = ft.Container(ft.Column(rows, spacing=6), bgcolor="#FDECEA", padding=16, border_radius=14,
                           border=ft.Border.all(2, BAD))
        return hook(f"attention-{number}", box)

    # ------------------------------------------------------------ handlers
    def _tab_click(self, key: str):
        async def click(e: Any) -> None:
            self.tab = key
            self._render()
            self.page.update()
        return click

    def _open(self, task_id: str):
        async def click(e: Any) -> None:
            from store_app.views.task import TaskScreen

            await self.app.show(TaskScreen(self.app, task_id))
        return click

    def _dismiss(self, task_id: str):
        async def click(e: Any) -> None:
            self.state.outbox.dismiss(task_id)
            self._render()
            self.page.update()
        return click

    async def _search_blurred(self, e: Any = None) -> None:
        import asyncio

        await asyncio.sleep(0.25)
        if self.app.screen is self and self.state.session is not None:
            await focus(self.search)

    async def _search(self, e: Any = None) -> None:
        from store_app.views.task import TaskScreen

        value = (self.search.value or "").strip()
        self.search.value = ""
        if not value:
            return
        task = self.state.cache.find_task(value)
        if task is None:
            self.search_msg.value = f"No order {value} in this store's queue."
            self.page.update()
            await focus(self.search)
            return
        self.search_msg.value = ""
        await self.app.show(TaskScreen(self.app, task["id"]))

    async def _count(self, e: Any = None) -> None:
        from store_app.views.count import CountScreen

        await self.app.show(CountScreen(self.app))

    async def _manager(self, e: Any = None) -> None:
        from store_app.views.manager import ManagerScreen

        await self.app.show(ManagerScreen(self.app))

    async def _logout(self, e: Any = None) -> None:
        from store_app.views.login import LoginScreen

        self.state.logout()
        await self.app.show(LoginScreen(self.app), replace=True)
