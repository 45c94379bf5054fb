"""The sync banner on every screen: online/offline, actions waiting, last sync, and a Sync now button."""

from __future__ import annotations

import flet as ft

from store_app.components.ui import BAD, FONT, OK, WARN, clock, hook, icon_button
from store_app.state import AppState


def banner_words(state: AppState) -> tuple[str, str]:
    s = state.sync
    n = state.waiting
    waiting = "all work sent" if n == 0 else f"{n} action{'s' if n != 1 else ''} waiting"
    last = f"last sync {clock(s.last_sync)}" if s.last_sync else "not synced yet"
    if s.needs_login:
        return f"Sign in again to send your work · {waiting}", BAD
    if s.online is False:
        return f"Offline · {waiting} · {last}", WARN
    if s.error:
        return f"Server problem · {waiting} · {last}", BAD
    if s.online is None:
        return f"Connecting… · {waiting}", WARN
    return f"Online · {waiting} · {last}", OK


class SyncBanner:
    def __init__(self, state: AppState, on_sync) -> None:
        self.state = state
        self.label = ft.Text("", size=FONT, color="#FFFFFF", weight=ft.FontWeight.W_600)
        label = hook("sync-banner", self.label, live_region=True)
        label.expand = True
        self.icon = ft.Icon(ft.Icons.CLOUD_DONE, color="#FFFFFF", size=28)
        self.box = ft.Container(
            content=ft.Row([self.icon, label,
                            icon_button(ft.Icons.SYNC, "Sync now", on_sync, "sync-now", color="#FFFFFF")],
                           vertical_alignment=ft.CrossAxisAlignment.CENTER),
            padding=ft.Padding.only(left=16, right=4, top=2, bottom=2), bgcolor=OK)
        self.render()

    def render(self) -> None:
        words, colour = banner_words(self.state)
        self.label.value = words
        self.box.bgcolor = colour
        online = self.state.sync.online is not False
        self.icon.icon = ft.Icons.CLOUD_DONE if online and colour == OK else (
            ft.Icons.CLOUD_OFF if not online else ft.Icons.CLOUD_SYNC)
