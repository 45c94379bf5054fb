"""Entry point: ``main(page)`` runs unchanged in the browser (Pyodide) and in Flet's server web mode.

It opens the local SQLite store (IDBFS in the browser), starts the background sync loop with
``page.run_task`` and shows the sign-in screen. Screens are swapped in one root view; each screen keeps
its own controls and re-renders from :class:`~store_app.state.AppState` when the sync loop or a tap changes
something.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import flet as ft

from store_app.components.banner import SyncBanner
from store_app.components.ui import PRIMARY, SURFACE, icon_button
from store_app.local.db import LocalDB
from store_app.local.persist import Flusher, open_storage
from store_app.state import AppState
from store_app.sync_loop import SyncLoop
from store_app.transport import IN_BROWSER, make_transport
from store_app.views.base import Screen

log = logging.getLogger("store_app")


def _patch_flet() -> None:
    """Flet 1.0.5 raises inside its receive loop when a method result (e.g. of ``focus()``) arrives for a
    control that a re-render has just removed; in the browser that kills the loop and the app stops
    reacting. Such a late result is harmless: drop it."""
    from flet.messaging.session import Session

    original = Session.handle_invoke_method_results
    if getattr(original, "_storeline", False):
        return

    def handle(self, control_id, call_id, result, error):
        try:
            return original(self, control_id, call_id, result, error)
        except RuntimeError as e:
            log.debug("late method result dropped: %s", e)

    handle._storeline = True  # type: ignore[attr-defined]
    Session.handle_invoke_method_results = handle


class StoreApp:
    def __init__(self, page: ft.Page, state: AppState) -> None:
        self.page = page
        self.state = state
        self.screen: Screen | None = None
        self.stack: list[Screen] = []
        self.banner = SyncBanner(state, self.sync_now)
        self.body = ft.Container(expand=True, padding=ft.Padding.only(left=16, right=16, top=12, bottom=8))
        self.title = ft.Text("", size=22, weight=ft.FontWeight.W_600, color="#FFFFFF")
        state.listeners.append(self._on_state)
        state.flusher.listeners.append(self._on_saved)

    # ------------------------------------------------------------ navigation
    async def show(self, screen: Screen, replace: bool = False) -> None:
        if replace or not screen.back:
            self.stack = []
        elif self.screen is not None:
            self.stack.append(self.screen)
        await self._render(screen)

    async def go_back(self, e: Any = None) -> None:
        from store_app.views.queue import QueueScreen

        prev = self.stack.pop() if self.stack else None
        if prev is None and self.state.session is not None and not self.state.session.store:
            from store_app.views.hq_common import hq_screen

            prev = hq_screen(self)  # HQ (no store): home is the league table
        await self._render(prev or QueueScreen(self), rebuild=prev is not None)

    async def _render(self, screen: Screen, rebuild: bool = True) -> None:
        self.screen = screen
        self.title.value = screen.title
        leading = icon_button(ft.Icons.ARROW_BACK, "Back", self.go_back, "back", color="#FFFFFF") \
            if screen.back else None
        self.page.appbar = ft.AppBar(title=self.title, leading=leading, automatically_imply_leading=False,
                                     bgcolor=PRIMARY, toolbar_height=68, actions=screen.actions())
        self.banner.render()
        self.body.content = screen.build()
        self.page.controls = [self.banner.box, self.body] if screen.show_banner else [self.body]
        self.page.update()
        await screen.shown()

    def set_title(self, title: str) -> None:
        self.title.value = title

    # ------------------------------------------------------------ state changes
    def _on_state(self, what: str) -> None:
        if what == "local":
            return  # a tap: its screen has re-rendered already; the banner follows once the flush is done
        if what in ("sync", "pushed", "pulled", "session"):
            self.banner.render()
        if self.screen is not None and what != "session":
            self.screen.refresh(what)
        with contextlib.suppress(Exception):  # the page may be closed
            self.page.update()

    def _on_saved(self) -> None:
        self.banner.render()
        with contextlib.suppress(Exception):
            self.page.update()

    async def sync_now(self, e: Any = None) -> None:
        self.state.sync_force()

    def toast(self, message: str, error: bool = False) -> None:
        self.page.show_dialog(ft.SnackBar(ft.Text(message, size=18), bgcolor="#B3261E" if error else None,
                                          duration=ft.Duration(seconds=4)))


async def main(page: ft.Page, api_url: str | None = None, data_dir: str | None = None) -> None:
    from store_app.views.login import LoginScreen

    _patch_flet()
    page.title = "Storeline Store"
    page.theme = ft.Theme(color_scheme_seed=PRIMARY, visual_density=ft.VisualDensity.COMFORTABLE)
    page.theme_mode = ft.ThemeMode.LIGHT
    page.bgcolor = SURFACE
    page.padding = 0
    page.spacing = 0
    api_url = api_url if api_url is not None else os.environ.get("STORELINE_API_URL")
    flusher = Flusher()
    path = await open_storage(data_dir or os.environ.get("STORELINE_APP_DATA"))
    db = LocalDB(path, on_commit=flusher.schedule)
    state = AppState(db, make_transport(api_url), flusher)
    app = StoreApp(page, state)
    loop = SyncLoop(state)
    page.data = app  # handy when debugging in server mode
    page.run_task(loop.run)
    page.on_close = lambda e: loop.stop()
    if IN_BROWSER:
        log.info("store app started in the browser, device %s", state.device_id)
    await app.show(LoginScreen(app))
