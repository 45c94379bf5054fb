"""Building blocks sized for a tablet held in one hand: large targets, few words, a test hook on each."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import flet as ft

from store_app.transport import IN_BROWSER

PRIMARY = "#0B5CAD"
OK = "#1B7F3B"
WARN = "#B26A00"
BAD = "#B3261E"
MUTED = "#5F6B7A"
SURFACE = "#F4F6F9"
TARGET = 60  # minimum height of anything tapped, in logical pixels
FONT = 18

Handler = Callable[[Any], Any]


def hook(identifier: str, control: ft.Control, **kw: Any) -> ft.Semantics:
    """Wrap a control so tests find it by ``flt-semantics-identifier`` (and screen readers by label)."""
    return ft.Semantics(identifier=identifier, content=control, **kw)


def big_button(text: str, on_click: Handler | None, identifier: str, *, icon: Any = None, kind: str = "filled",
               color: str | None = None, expand: bool | int | None = None, disabled: bool = False,
               width: float | None = None) -> ft.Semantics:
    style = ft.ButtonStyle(padding=ft.Padding.symmetric(horizontal=22, vertical=14),
                           text_style=ft.TextStyle(size=FONT, weight=ft.FontWeight.W_600),
                           shape=ft.RoundedRectangleBorder(radius=12))
    common: dict[str, Any] = dict(content=text, icon=icon, on_click=on_click, style=style, height=TARGET,
                                  disabled=disabled, width=width)
    if kind == "filled":
        btn: ft.Control = ft.FilledButton(**common, bgcolor=color)
    elif kind == "tonal":
        btn = ft.FilledTonalButton(**common)
    else:
        btn = ft.OutlinedButton(**common)
    sem = hook(identifier, btn)
    if expand is not None:
        sem.expand = expand
    return sem


def icon_button(icon: Any, label: str, on_click: Handler | None, identifier: str, color: str | None = None
                ) -> ft.Semantics:
    """Every icon button carries a label (tooltip → aria-label) and a hook."""
    return hook(identifier, ft.IconButton(icon=icon, tooltip=label, on_click=on_click, icon_size=30,
                                          icon_color=color, width=TARGET, height=TARGET), label=label)


def field(label: str, identifier: str, *, on_submit: Handler | None = None, password: bool = False,
          value: str = "", keyboard: ft.KeyboardType | None = None, hint: str | None = None,
          autofocus: bool = False, width: float | None = None, expand: bool | None = None,
          on_change: Handler | None = None, multiline: bool = False) -> tuple[ft.Semantics, ft.TextField]:
    tf = ft.TextField(label=label, value=value, password=password, can_reveal_password=False,
                      on_submit=on_submit, keyboard_type=keyboard, hint_text=hint, autofocus=autofocus,
                      text_size=FONT + 2, width=width, on_change=on_change, multiline=multiline,
                      content_padding=ft.Padding.symmetric(horizontal=16, vertical=18),
                      border_radius=12)
    sem = hook(identifier, tf)
    if expand:
        sem.expand = True
    return sem, tf


async def focus(control: ft.Control, attempts: int = 4) -> bool:
    """Focus a field. Retried only when Flutter had no listener for the request yet (a field mounted by the
    same update), never after a request that may have landed: a second focus would select the text a scanner
    is typing. The fields also set ``autofocus``, so Flutter focuses them when they are mounted."""
    import asyncio

    for _ in range(attempts):
        try:
            await control._invoke_method("focus", timeout=3)
            return True
        except Exception as e:  # noqa: BLE001
            if "listener" not in str(e) and "not registered" not in str(e):
                return False
            await asyncio.sleep(0.1)
    return False


def text(value: str, size: int = FONT, *, weight: ft.FontWeight | None = None, color: str | None = None,
         selectable: bool = False) -> ft.Text:
    return ft.Text(value, size=size, weight=weight, color=color, selectable=selectable)


def panel(controls: list[ft.Control], *, bgcolor: str = "#FFFFFF", padding: int = 16, border: str | None = None,
          spacing: int = 10) -> ft.Container:
    return ft.Container(content=ft.Column(controls, spacing=spacing, tight=True), bgcolor=bgcolor, padding=padding,
                        border_radius=14, border=ft.Border.all(2, border) if border else None)


# ------------------------------------------------------------ time
def local_tz() -> timezone:
    if IN_BROWSER:
        try:
            import js

            return timezone(timedelta(minutes=-int(js.Date.new().getTimezoneOffset())))
        except Exception:  # noqa: BLE001
            return UTC
    return datetime.now().astimezone().tzinfo or UTC  # type: ignore[return-value]


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def clock(value: str | None) -> str:
    dt = parse_iso(value)
    return dt.astimezone(local_tz()).strftime("%H:%M") if dt else "—"


def due_words(promise_by: str | None, now: datetime | None = None) -> tuple[str, str]:
    """("Due 14:30 · in 40 min", colour) or ("Late by 1 h 5 min", red)."""
    dt = parse_iso(promise_by)
    if dt is None:
        return "No promise time", MUTED
    now = now or datetime.now(UTC)
    local = dt.astimezone(local_tz())
    day = "" if local.date() == now.astimezone(local_tz()).date() else local.strftime("%a ")
    minutes = int((dt - now).total_seconds() // 60)
    if minutes < 0:
        return f"Late by {_span(-minutes)} · was due {day}{local:%H:%M}", BAD
    colour = WARN if minutes <= 60 else OK
    return f"Due {day}{local:%H:%M} · in {_span(minutes)}", colour


def _span(minutes: int) -> str:
    if minutes < 60:
        return f"{minutes} min"
    h, m = divmod(minutes, 60)
    if h >= 48:
        return f"{h // 24} days"
    return f"{h} h {m} min" if m else f"{h} h"


METHOD_WORDS = {"same_day": "Same day", "next_day": "Next day", "standard": "Standard", "pickup": "Store pickup"}


def method_words(method: str | None) -> str:
    return METHOD_WORDS.get(method or "", (method or "").replace("_", " ").capitalize())
