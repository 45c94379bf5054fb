"""Shared parts of the HQ screens (league table, trends, exceptions, what-if) and the manager's store-vs-chain panel.

These screens read live server data: they are online-only. Each request goes through the app's transport (pyfetch
in the browser, httpx in server mode) with the signed-in user's token; when the server cannot be reached the screen
says it needs the network instead of failing. HQ users have no store, so the store sync loop does nothing for them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import flet as ft

from store_app.components.ui import BAD, FONT, MUTED, OK, PRIMARY, WARN, big_button, hook, icon_button, text
from store_app.state import API
from store_app.transport import IN_BROWSER, Offline, Response
from store_app.views.base import Screen

NEEDS_NETWORK = "This screen needs the network: it shows live figures from the server. Try again when online."
GREY = "#8A94A3"
PERIODS = (7, 30, 90)

# The columns of the league table: (key in the figures, header, how to show a value)
COLUMNS: list[tuple[str, str, str]] = [
    ("orders_fulfilled", "Orders", "int"),
    ("reject_rate", "Reject %", "pct"),
    ("pick_minutes_median", "Pick min", "min"),
    ("promises_kept_overall", "Promises kept", "pct"),
    ("inventory_accuracy", "Inv. accuracy", "pct"),
    ("reliability", "Reliability", "pct"),
    ("capacity_use", "Capacity use", "pct"),
]


# A rate or a time means nothing without the events behind it: shown as "—" when there were none.
BASIS = {"reject_rate": "lines_released", "pick_minutes_median": "lines_released",
         "promises_kept_overall": "orders_fulfilled", "inventory_accuracy": "counts"}


def value_of(fig: dict, key: str) -> Any:
    basis = BASIS.get(key)
    if basis is not None and not fig.get(basis):
        return None
    return fig.get(key)


def fmt(value: Any, kind: str) -> str:
    if value is None:
        return "—"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if kind == "int":
        return f"{int(v):,}"
    if kind == "pct":
        return f"{v * 100:.1f}%"
    if kind == "min":
        return f"{v:.1f}"
    return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"


def rating(fig: dict) -> tuple[str, str]:
    """("good" | "watch" | "poor" | "idle", colour) from promises kept and the reject rate.

    Red: more than 10% of lines rejected, or fewer than 85% of promises kept. Amber: over 5% rejected or under 95%
    kept. Green otherwise. Grey when nothing was released to or handed over by the store in the period."""
    released = fig.get("lines_released") or 0
    orders = fig.get("orders_fulfilled") or 0
    if not released and not orders:
        return "idle", GREY
    reject = float(fig.get("reject_rate") or 0.0)
    kept = float(fig.get("promises_kept_overall") or 0.0) if orders else 1.0
    if reject > 0.10 or kept < 0.85:
        return "poor", BAD
    if reject > 0.05 or kept < 0.95:
        return "watch", WARN
    return "good", OK


RATING_WORDS = {"good": "on track", "watch": "watch", "poor": "needs attention", "idle": "no activity"}


def sort_stores(stores: list[dict], key: str, descending: bool) -> list[dict]:
    """Stores sorted by one column (ties by store code, always ascending; stores without a figure last)."""
    if key == "store":
        return sorted(stores, key=lambda s: str(s.get("store")), reverse=descending)
    by_code = sorted(stores, key=lambda s: str(s.get("store")))
    known = [s for s in by_code if value_of(s, key) is not None]
    unknown = [s for s in by_code if value_of(s, key) is None]
    return sorted(known, key=lambda s: float(value_of(s, key) or 0.0), reverse=descending) + unknown


def filter_stores(stores: list[dict], words: str) -> list[dict]:
    w = (words or "").strip().lower()
    if not w:
        return list(stores)
    return [s for s in stores if w in str(s.get("store", "")).lower() or w in str(s.get("name", "")).lower()]


def period_params(days: int, today: datetime | None = None) -> dict[str, str]:
    """``from`` = the day ``days`` days ago (whole days, UTC); ``to`` defaults to now on the server."""
    t = today or datetime.now(UTC)
    return {"from": (t - timedelta(days=days)).date().isoformat()}


def api_origin(app: Any) -> str:
    """Where the API is, for links (the CSV export): the page's origin in the browser, else the transport's base."""
    if IN_BROWSER:
        try:
            import js

            return str(js.location.origin)
        except Exception:  # noqa: BLE001
            return ""
    return getattr(app.state.transport, "base", "")


async def call(screen: Screen, method: str, path: str, **kw: Any) -> Response | None:
    """One API call with the session's token; None when offline (the caller shows NEEDS_NETWORK)."""
    s = screen.state.session
    try:
        token = await screen.state.token_for(s.username) if s else None
        resp = await screen.state.transport.request(method, f"{API}{path}", token=token, **kw)
        if resp.status == 401 and s is not None:
            token = await screen.state.token_for(s.username, renew=True)
            resp = await screen.state.transport.request(method, f"{API}{path}", token=token, **kw)
    except Offline:
        screen.state.sync.online = False
        return None
    screen.state.sync.online = True
    return resp


def problem(resp: Response) -> str:
    body = resp.body if isinstance(resp.body, dict) else {}
    return str(body.get("message") or body.get("detail") or f"HTTP {resp.status}")


NAV = [("league", "League table", ft.Icons.LEADERBOARD), ("trends", "Trends", ft.Icons.BAR_CHART),
       ("exceptions", "Exceptions", ft.Icons.REPORT_PROBLEM), ("whatif", "What-if", ft.Icons.SCIENCE)]


class HQScreen(Screen):
    """An HQ screen: no sync banner (HQ has no store queue), a row of tabs, a status line, live data."""

    show_banner = False
    key = ""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.status = text("", FONT - 2, color=MUTED)

    def actions(self) -> list[ft.Control]:
        s = self.state.session
        return [ft.Text(s.name or s.username if s else "", color="#FFFFFF", size=FONT),
                icon_button(ft.Icons.REFRESH, "Refresh", self._refresh_click, "hq-refresh", color="#FFFFFF"),
                icon_button(ft.Icons.LOGOUT, "Sign out", self._logout, "logout", color="#FFFFFF")]

    def nav(self) -> ft.Control:
        return ft.Row([big_button(label, self._go(key), f"hq-nav-{key}", icon=icon,
                                  kind="filled" if key == self.key else "outlined") for key, label, icon in NAV],
                      spacing=8, wrap=True)

    def frame(self, *controls: ft.Control) -> ft.Control:
        return ft.Column([self.nav(), hook("hq-status", self.status), *controls], scroll=ft.ScrollMode.AUTO,
                         expand=True, spacing=12)

    def say(self, words: str, colour: str = MUTED) -> None:
        self.status.value = words
        self.status.color = colour

    def offline(self) -> None:
        self.say(NEEDS_NETWORK, WARN)

    async def load(self) -> None:
        return None

    async def shown(self) -> None:
        await self.load()

    async def _refresh_click(self, e: Any = None) -> None:
        await self.load()

    def _go(self, key: str):
        async def click(e: Any) -> None:
            if key != self.key:
                await self.app.show(hq_screen(self.app, key), replace=True)
        return click

    async def _logout(self, e: Any = None) -> None:
        from store_app.views.login import LoginScreen

        self.state.logout()
        await self.app.show(LoginScreen(self.app), replace=True)


def hq_screen(app: Any, key: str = "league") -> Screen:
    from store_app.views.hq_exceptions import ExceptionsScreen
    from store_app.views.hq_league import LeagueScreen
    from store_app.views.hq_trends import TrendsScreen
    from store_app.views.hq_whatif import WhatIfScreen

    return {"league": LeagueScreen, "trends": TrendsScreen, "exceptions": ExceptionsScreen,
            "whatif": WhatIfScreen}[key](app)


def cell(value: str, width: float, *, bold: bool = False, colour: str | None = None, align: str = "right"
         ) -> ft.Container:
    return ft.Container(ft.Text(value, size=FONT - 2, weight=ft.FontWeight.BOLD if bold else None, color=colour,
                                text_align=ft.TextAlign.RIGHT if align == "right" else ft.TextAlign.LEFT,
                                no_wrap=True, overflow=ft.TextOverflow.ELLIPSIS),
                        width=width, padding=ft.Padding.symmetric(horizontal=6, vertical=4))


def bars(points: list[tuple[str, float]], *, kind: str = "num", height: float = 160, colour: str = PRIMARY
         ) -> ft.Control:
    """A bar chart drawn with Containers (bar height proportional to the value), one labelled bar per point."""
    top = max((v for _, v in points), default=0.0) or 1.0
    cols = []
    for label, v in points:
        h = max(2.0, height * v / top) if v > 0 else 2.0
        cols.append(ft.Column([
            ft.Text(fmt(v, kind) if v else "", size=11, color=MUTED, no_wrap=True),
            ft.Container(width=18, height=h, bgcolor=colour if v > 0 else "#D5DAE1",
                         border_radius=ft.BorderRadius.only(top_left=4, top_right=4), tooltip=f"{label}: "
                         + fmt(v, kind)),
            ft.Text(label, size=11, color=MUTED, no_wrap=True),
        ], spacing=2, horizontal_alignment=ft.CrossAxisAlignment.CENTER, alignment=ft.MainAxisAlignment.END,
            height=height + 40, tight=True))
    return ft.Row(cols, spacing=4, vertical_alignment=ft.CrossAxisAlignment.END, scroll=ft.ScrollMode.AUTO)


def compare_rows(mine: dict, chain: dict) -> list[tuple[str, str, str, str, str]]:
    """(key, figure, store, chain, colour) for the manager's store-vs-chain panel; green better, red worse."""
    out = []
    lower_better = {"reject_rate", "pick_minutes_median"}
    for key, label, kind in COLUMNS:
        a, b = value_of(mine, key), value_of(chain, key)
        colour = MUTED
        if (isinstance(a, int | float) and isinstance(b, int | float) and abs(a - b) > 1e-9
                and key not in ("orders_fulfilled", "capacity_use")):
            better = a < b if key in lower_better else a > b
            colour = OK if better else BAD
        out.append((key, label, fmt(a, kind), fmt(b, kind), colour))
    return out
