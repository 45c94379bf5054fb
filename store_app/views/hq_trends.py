"""HQ trends: a daily series from ``GET /hq/stores/trends`` for the chain or a chosen store, one metric at a time.

Drawn with flet-charts' ``BarChart`` (its Flutter side is part of the prebuilt flet web client that ``flet publish``
ships, and its Python side is a pure wheel put in the bundle); where the package is not installed it falls back to
bars drawn with Containers, so the screen never depends on it.
"""

from __future__ import annotations

from typing import Any

import flet as ft

from store_app.components.ui import FONT, MUTED, PRIMARY, big_button, hook, panel, text
from store_app.views.hq_common import HQScreen, bars, call, fmt, problem

METRICS = [("orders_fulfilled", "Orders fulfilled", "int"), ("reject_rate", "Reject rate", "pct"),
           ("promises_kept", "Promises kept", "pct")]
DAYS = 28

try:  # flet-charts: pure Python over Flutter code that the prebuilt web client already contains
    import flet_charts as fch
except ImportError:  # pragma: no cover - the app still draws its own bars
    fch = None


def nice_top(top: float) -> float:
    """A round top for the value axis a little above the highest bar (a round step times a power of ten)."""
    import math

    if top <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(top * 1.1))
    return next(m * mag for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * mag >= top * 1.1)


def chart(points: list[tuple[str, float]], kind: str) -> ft.Control:
    if fch is None:
        return bars(points, kind=kind)
    scale = 100.0 if kind == "pct" else 1.0  # rates are drawn in percent
    top = max((v * scale for _, v in points), default=0.0)
    step = max(1, len(points) // 7)
    return fch.BarChart(
        groups=[fch.BarChartGroup(x=i, rods=[fch.BarChartRod(from_y=0, to_y=v * scale, width=14, color=PRIMARY,
                                                             tooltip=f"{label}: {fmt(v, kind)}",
                                                             border_radius=3)])
                for i, (label, v) in enumerate(points)],
        bottom_axis=fch.ChartAxis(labels=[fch.ChartAxisLabel(value=i, label=ft.Text(label[5:], size=11))
                                          for i, (label, _) in enumerate(points) if i % step == 0],
                                  label_size=28),
        left_axis=fch.ChartAxis(label_size=48),
        horizontal_grid_lines=fch.ChartGridLines(color="#DDE3EA", width=1),
        min_y=0, max_y=min(100.0, nice_top(top)) if kind == "pct" else nice_top(top), interactive=True,
        height=260, expand=True)


class TrendsScreen(HQScreen):
    title = "HQ · trends"
    key = "trends"

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.metric = "orders_fulfilled"
        self.store: str | None = None
        self.stores: list[dict] = []

    def build(self) -> ft.Control:
        self.metric_row = ft.Row(spacing=8, wrap=True)
        self.store_row = ft.Row(spacing=8, wrap=True)
        self.caption = text("", 20, weight=ft.FontWeight.BOLD)
        self.summary = text("", FONT - 2, color=MUTED)
        self.chart = ft.Container(height=300)
        self._buttons()
        return self.frame(self.metric_row, self.store_row,
                          hook("hq-trend-chart", panel([self.caption, self.chart, self.summary])),
                          text("Daily figures (UTC days) over the last 4 weeks.", FONT - 4, color=MUTED))

    def _buttons(self) -> None:
        self.metric_row.controls = [big_button(label, self._pick_metric(k), f"hq-trend-metric-{k}",
                                               kind="filled" if k == self.metric else "outlined")
                                    for k, label, _ in METRICS]
        choices = [(None, "Chain")] + [(s["store"], s["store"]) for s in self.stores]
        self.store_row.controls = [big_button(label, self._pick_store(code), f"hq-trend-store-{code or 'chain'}",
                                              kind="tonal" if code == self.store else "outlined")
                                   for code, label in choices]

    async def load(self) -> None:
        if not self.stores:
            resp = await call(self, "GET", "/hq/stores/performance")
            if resp is not None and resp.ok and isinstance(resp.body, dict):
                self.stores = [{"store": s["store"], "name": s.get("name")} for s in resp.body.get("stores") or []]
        self._buttons()
        self.say("Loading…")
        self.page.update()
        params: dict[str, Any] = {"metric": self.metric, "days": DAYS}
        if self.store:
            params["store"] = self.store
        resp = await call(self, "GET", "/hq/stores/trends", params=params)
        if resp is None:
            self.offline()
        elif not resp.ok or not isinstance(resp.body, dict):
            self.say(f"The server did not give the trend: {problem(resp)}", "#B3261E")
        else:
            self.say("")
            self._draw(resp.body)
        self.page.update()

    def _draw(self, body: dict) -> None:
        label, kind = next((w, k) for m, w, k in METRICS if m == self.metric)
        series = body.get("series") or []
        points = [(str(p.get("date")), float(p.get("value") or 0.0)) for p in series]
        where = self.store or "the chain"
        self.caption.value = f"{label} · {where}"
        events = sum(int(p.get("count") or 0) for p in series)
        total = sum(v for _, v in points)
        shown = fmt(total, kind) if kind == "int" else (
            fmt(sum(float(p.get("value") or 0) * int(p.get("count") or 0) for p in series) / events, kind)
            if events else "—")
        self.summary.value = (f"{len(points)} days · {'total' if kind == 'int' else 'overall'} {shown} · "
                              f"{events} events behind the figures")
        self.chart.content = chart(points, kind)

    def _pick_metric(self, key: str):
        async def click(e: Any) -> None:
            self.metric = key
            await self.load()
        return click

    def _pick_store(self, code: str | None):
        async def click(e: Any) -> None:
            self.store = code
            await self.load()
        return click
