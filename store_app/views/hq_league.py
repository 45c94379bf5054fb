"""HQ league table: every store's figures from ``GET /hq/stores/performance`` with the chain on top; tap a header to
sort (again to reverse), filter by store code or name, choose the period (7/30/90 days); each row is coloured by
promises kept and reject rate. The CSV button shows the export URL (the API serves CSV with ``?format=csv``)."""

from __future__ import annotations

from typing import Any

import flet as ft

from store_app.components.ui import FONT, MUTED, PRIMARY, big_button, field, hook, text
from store_app.views.hq_common import (
    COLUMNS,
    PERIODS,
    RATING_WORDS,
    HQScreen,
    api_origin,
    call,
    cell,
    filter_stores,
    fmt,
    period_params,
    problem,
    rating,
    sort_stores,
    value_of,
)

NAME_W, COL_W, RATE_W = 200, 94, 150


class LeagueScreen(HQScreen):
    title = "HQ · store league table"
    key = "league"

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.days = 30
        self.sort_key = "store"
        self.descending = False
        self.data: dict | None = None

    def build(self) -> ft.Control:
        self.filter_box, self.filter = field("Filter stores (code or name)", "hq-filter", on_change=self._filtered,
                                             expand=True)
        self.periods = ft.Row(spacing=8)
        self.header = ft.Row(spacing=0)
        self.rows = ft.Column(spacing=4)
        self._render()
        table = ft.Row([ft.Column([self.header, self.rows], spacing=4, tight=True)], scroll=ft.ScrollMode.AUTO)
        return self.frame(
            ft.Row([self.filter_box, self.periods,
                    big_button("CSV", self._csv, "hq-csv", icon=ft.Icons.DOWNLOAD, kind="outlined")],
                   spacing=10, wrap=False),
            hook("hq-league", table),
            text("Rows: green on track, amber watch, red needs attention (promises kept under 95% / 85%, or over "
                 "5% / 10% of lines rejected); grey: no activity in the period.", FONT - 4, color=MUTED))

    # ------------------------------------------------------------ data
    async def load(self) -> None:
        self.say(f"Loading the last {self.days} days…")
        self.page.update()
        resp = await call(self, "GET", "/hq/stores/performance", params=period_params(self.days))
        if resp is None:
            self.offline()
        elif not resp.ok or not isinstance(resp.body, dict):
            self.say(f"The server did not give the figures: {problem(resp)}", "#B3261E")
        else:
            self.data = resp.body
            self.say(f"{len(resp.body.get('stores') or [])} stores · last {self.days} days")
        self._render()
        self.page.update()

    # ------------------------------------------------------------ rendering
    def _render(self) -> None:
        self.periods.controls = [big_button(f"{d} days", self._period(d), f"hq-period-{d}",
                                            kind="filled" if d == self.days else "outlined") for d in PERIODS]
        heads = [self._head("store", "Store", NAME_W, "left")]
        heads += [self._head(k, label, COL_W) for k, label, _ in COLUMNS]
        heads.append(cell("Status", RATE_W, bold=True, align="left"))
        self.header.controls = heads
        if self.data is None:
            self.rows.controls = []
            return
        chain = dict(self.data.get("chain") or {}, store="Chain", name="All stores")
        stores = sort_stores(filter_stores(self.data.get("stores") or [], self.filter.value or ""), self.sort_key,
                             self.descending)
        self.rows.controls = [self._row(chain, "hq-row-chain", chain=True)] + [
            self._row(s, f"hq-row-{s.get('store')}") for s in stores]
        if not stores:
            self.rows.controls.append(text("No store matches the filter.", FONT - 2, color=MUTED))

    def _head(self, key: str, label: str, width: float, align: str = "right") -> ft.Control:
        """A header: tap to sort by it (tap again to reverse); the sorted one shows an arrow and says so."""
        words = ft.Text(label, size=FONT - 3, weight=ft.FontWeight.BOLD, color=PRIMARY,
                        text_align=ft.TextAlign.LEFT if align == "left" else ft.TextAlign.RIGHT)
        parts: list[ft.Control] = [ft.Container(words, expand=True)]
        sorted_here = self.sort_key == key
        if sorted_here:
            parts.append(ft.Icon(ft.Icons.ARROW_DOWNWARD if self.descending else ft.Icons.ARROW_UPWARD, size=16,
                                 color=PRIMARY))
        btn = ft.TextButton(content=ft.Row(parts, spacing=2, tight=True), on_click=self._sort(key), width=width,
                            height=52, style=ft.ButtonStyle(padding=ft.Padding.symmetric(horizontal=4)))
        state = (", sorted high to low" if self.descending else ", sorted low to high") if sorted_here else ""
        return hook(f"hq-sort-{key}", btn, label=f"Sort by {label}{state}")

    def _row(self, fig: dict, identifier: str, chain: bool = False) -> ft.Control:
        grade, colour = rating(fig)
        cells = [cell(f"{fig.get('store')} · {fig.get('name')}", NAME_W, bold=True, align="left")]
        cells += [cell(fmt(value_of(fig, k), kind), COL_W, bold=chain) for k, _, kind in COLUMNS]
        cells.append(cell(RATING_WORDS[grade], RATE_W, colour=colour, bold=True, align="left"))
        box = ft.Container(ft.Row(cells, spacing=0), bgcolor="#E8EEF7" if chain else "#FFFFFF",
                           border=ft.Border.only(left=ft.BorderSide(8, colour)), border_radius=6,
                           padding=ft.Padding.symmetric(vertical=4))
        return hook(identifier, box)

    # ------------------------------------------------------------ handlers
    def _sort(self, key: str):
        async def click(e: Any) -> None:
            if self.sort_key == key:
                self.descending = not self.descending
            else:  # a figure column starts with the highest first, the store column A→Z
                self.sort_key, self.descending = key, key != "store"
            self._render()
            self.page.update()
        return click

    def _period(self, days: int):
        async def click(e: Any) -> None:
            self.days = days
            await self.load()
        return click

    async def _filtered(self, e: Any = None) -> None:
        self._render()
        self.page.update()

    async def _csv(self, e: Any = None) -> None:
        from urllib.parse import urlencode

        url = f"{api_origin(self.app)}/api/v1/hq/stores/performance?" + urlencode(
            {**period_params(self.days), "format": "csv"})

        async def close(e: Any) -> None:
            self.page.pop_dialog()

        async def copy(e: Any) -> None:
            try:
                await ft.Clipboard().set(url)
                self.say("CSV URL copied.")
            except Exception:  # noqa: BLE001 - a browser may refuse clipboard access
                self.say("Copying was refused by the browser: copy the URL by hand.")
            self.page.pop_dialog()
            self.page.update()

        self.page.show_dialog(ft.AlertDialog(
            title=text("Export as CSV", 22, weight=ft.FontWeight.BOLD),
            content=ft.Column([
                text("The same figures, one row per store, as CSV:", FONT - 2),
                hook("hq-csv-url", ft.Text(url, size=FONT - 2, color=PRIMARY)),
                text("Open it with your HQ sign-in token (Authorization: Bearer …), e.g. with curl or a "
                     "spreadsheet's web import.", FONT - 4, color=MUTED),
            ], tight=True, spacing=8, width=560),
            actions=[big_button("Copy URL", copy, "hq-csv-copy", icon=ft.Icons.COPY, kind="tonal"),
                     big_button("Close", close, "hq-csv-close", kind="outlined")]))
