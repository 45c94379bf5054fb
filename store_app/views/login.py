"""Sign in: user + PIN; the last user is remembered; offline sign-in for users known to this tablet."""

from __future__ import annotations

from typing import Any

import flet as ft

from store_app.components.ui import BAD, FONT, MUTED, big_button, field, focus, panel, text
from store_app.state import LoginError
from store_app.views.base import Screen


class LoginScreen(Screen):
    title = "Storeline · Sign in"
    show_banner = False

    def build(self) -> ft.Control:
        last = self.state.last_user or ""
        self.user_box, self.user = field("User", "login-user", value=last, on_submit=self._to_pin)
        self.pin_box, self.pin = field("PIN", "login-pin", password=True, keyboard=ft.KeyboardType.NUMBER,
                                       on_submit=self._submit)
        self.error = text("", color=BAD)
        self.busy = ft.ProgressRing(visible=False, width=28, height=28)
        self.submit = big_button("Sign in", self._submit, "login-submit", icon=ft.Icons.LOGIN, expand=True)
        hint = "Last signed in here: " + last if last else "Sign in with your store user name and PIN."
        return ft.Column([
            ft.Container(height=24),
            ft.Row([ft.Container(
                panel([text("Store sign-in", 26, weight=ft.FontWeight.BOLD), text(hint, FONT - 2, color=MUTED),
                       self.user_box, self.pin_box, ft.Semantics(identifier="login-error", content=self.error),
                       ft.Row([self.submit, self.busy])], padding=24, spacing=16), width=520)],
                alignment=ft.MainAxisAlignment.CENTER),
        ], scroll=ft.ScrollMode.AUTO)

    async def shown(self) -> None:
        await focus(self.pin if self.user.value else self.user)

    async def _to_pin(self, e: Any = None) -> None:
        await focus(self.pin)

    async def _submit(self, e: Any = None) -> None:
        from store_app.views.queue import QueueScreen

        if self.busy.visible:
            return
        self.error.value = ""
        self.busy.visible = True
        self.page.update()
        try:
            await self.state.login(self.user.value or "", self.pin.value or "")
        except LoginError as err:
            self.error.value = str(err)
            self.pin.value = ""
            self.busy.visible = False
            self.page.update()
            await focus(self.pin)
            return
        if is_hq(self.state.session):  # HQ has no store queue: its screens read live figures instead
            from store_app.views.hq_common import hq_screen

            await self.app.show(hq_screen(self.app), replace=True)
            return
        await self.app.show(QueueScreen(self.app), replace=True)


def is_hq(session) -> bool:
    return session is not None and (session.role == "hq" or not session.store)
