"""Count stock: scan a product, enter the counted quantity, save (works offline: it goes through the outbox)."""

from __future__ import annotations

from typing import Any

import flet as ft

from store_app.components.ui import (
    BAD,
    FONT,
    MUTED,
    OK,
    WARN,
    big_button,
    clock,
    field,
    focus,
    hook,
    icon_button,
    panel,
    text,
)
from store_app.views.base import Screen

STATE_WORDS = {"pending": ("waiting to send", WARN), "applied": ("applied", OK), "rejected": ("not accepted", BAD)}


class CountScreen(Screen):
    title = "Count stock"
    back = True

    def build(self) -> ft.Control:
        self.product: dict | None = None
        self.scan_box, self.scan = field("Scan product", "count-scan", on_submit=self._scan,
                                         hint="Scan a barcode or type a SKU", autofocus=True)
        self.qty_box, self.qty = field("Counted quantity", "count-qty", keyboard=ft.KeyboardType.NUMBER,
                                       on_submit=self._save, width=240)
        self.product_text = text("No product scanned yet.", 22, weight=ft.FontWeight.BOLD)
        self.msg = text("", FONT, weight=ft.FontWeight.W_600)
        self.history = ft.Column(spacing=6)
        self._render_history()
        return ft.Column([
            self.scan_box,
            panel([hook("count-product", self.product_text),
                   ft.Row([icon_button(ft.Icons.REMOVE, "One less", self._step(-1), "count-minus"), self.qty_box,
                           icon_button(ft.Icons.ADD, "One more", self._step(1), "count-plus")],
                          vertical_alignment=ft.CrossAxisAlignment.CENTER),
                   hook("count-message", self.msg),
                   big_button("Save count", self._save, "count-save", icon=ft.Icons.SAVE)], spacing=14),
            text("Recent counts", FONT, color=MUTED), hook("count-history", self.history),
        ], scroll=ft.ScrollMode.AUTO, expand=True, spacing=12, horizontal_alignment=ft.CrossAxisAlignment.STRETCH)

    async def shown(self) -> None:
        await focus(self.scan)

    def refresh(self, what: str) -> None:
        if what in ("pushed", "sync"):
            self._render_history()

    def _render_history(self) -> None:
        rows = []
        for h in self.state.outbox.history("count", 10):
            words, colour = STATE_WORDS.get(h["state"], (h["state"], MUTED))
            b = h["body"]
            product = self.state.cache.product(b.get("sku") or "")
            name = product.get("name") if product else b.get("sku")
            extra = f" · {h['message']}" if h.get("message") else ""
            rows.append(text(f"{clock(h['created_at'])}  {name}: {b.get('counted')} counted · {words}{extra}",
                             FONT - 2, color=colour))
        self.history.controls = rows or [text("No counts yet.", FONT - 2, color=MUTED)]

    async def _scan(self, e: Any = None) -> None:
        code = (self.scan.value or "").strip()
        self.scan.value = ""
        if not code:
            await focus(self.scan)
            return
        product = self.state.cache.product_by_barcode(code)
        if product is None:
            self.product = None
            self.product_text.value = "No product scanned yet."
            self.msg.value, self.msg.color = f"Unknown barcode {code}.", BAD
            self.page.update()
            await focus(self.scan)
            return
        self.product = product
        self.product_text.value = f"{product.get('name')} · {product.get('sku')}"
        self.msg.value = ""
        self.qty.value = ""
        self.page.update()
        await focus(self.qty)

    def _step(self, delta: int):
        async def click(e: Any) -> None:
            try:
                n = int(self.qty.value or 0)
            except ValueError:
                n = 0
            self.qty.value = str(max(0, n + delta))
            self.page.update()
        return click

    async def _save(self, e: Any = None) -> None:
        if self.product is None:
            self.msg.value, self.msg.color = "Scan a product first.", BAD
            self.page.update()
            await focus(self.scan)
            return
        try:
            counted = int((self.qty.value or "").strip())
            if counted < 0:
                raise ValueError
        except ValueError:
            self.msg.value, self.msg.color = "Enter the number of units you counted.", BAD
            self.page.update()
            await focus(self.qty)
            return
        self.state.act("count", sku=self.product["sku"], counted=counted)
        self.msg.value, self.msg.color = f"Saved: {counted} × {self.product.get('name')}", OK
        self.qty.value = ""
        self.product = None
        self.product_text.value = "Scan the next product."
        self._render_history()
        self.page.update()
        await focus(self.scan)
