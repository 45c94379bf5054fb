"""Base class of the screens."""

from __future__ import annotations

from typing import TYPE_CHECKING

import flet as ft

if TYPE_CHECKING:
    from store_app.main import StoreApp


class Screen:
    """A screen: ``build`` returns its body; ``refresh`` re-renders after a change; ``shown`` sets focus."""

    title = ""
    back = False
    show_banner = True

    def __init__(self, app: StoreApp) -> None:
        self.app = app
        self.state = app.state
        self.page = app.page

    def build(self) -> ft.Control:
        raise NotImplementedError

    def refresh(self, what: str) -> None:
        return None

    async def shown(self) -> None:
        return None

    def actions(self) -> list[ft.Control]:
        return []
