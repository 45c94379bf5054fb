"""One order: pick (scan or tap, reject a line), pack (packages, box, weight), hand over (carrier or customer).

The screen follows the task's step: the last pick turns it into the pack (or pickup) screen without a tap.
The scan field keeps the focus: after every scan, every tap and every dialog it is focused again, so a
keyboard-wedge scanner always types into it.
"""

from __future__ import annotations

from typing import Any

import flet as ft

from store_app.components.ui import (
    BAD,
    FONT,
    MUTED,
    OK,
    PRIMARY,
    WARN,
    big_button,
    due_words,
    field,
    focus,
    hook,
    icon_button,
    method_words,
    panel,
    text,
)
from store_app.local.outbox import conflict_text, line_done, remaining
from store_app.local.pin import pickup_code_matches
from store_app.views.base import Screen
from store_app.views.words import action_words

BOXES = ["S", "M", "L", "XL"]
CARRIERS = ["UPS", "FedEx", "USPS", "DHL"]


class TaskScreen(Screen):
    back = True

    def __init__(self, app: Any, task_id: str) -> None:
        super().__init__(app)
        self.task_id = task_id
        self.task = self.state.cache.task(task_id) or {"id": task_id, "lines": [], "step": "done", "removed": True}
        self.title = f"Order {self.number}"
        self.step = None
        # controls that survive re-renders (so the focus and typed text survive a sync in the background)
        self.scan_box, self.scan = field("Scan item", "scan", on_submit=self._scan, hint="Scan or type a barcode",
                                        autofocus=True)
        self.scan.on_blur = self._scan_blurred  # the scanner must always type into this field
        self.scan_msg = text("", FONT, weight=ft.FontWeight.W_600)
        self.header = ft.Column(spacing=6)
        self.main = ft.Column(spacing=12, horizontal_alignment=ft.CrossAxisAlignment.STRETCH)
        self.packages = 1
        self.box_size: str | None = None
        self.weight_box, self.weight = field("Weight (kg)", "pack-weight", keyboard=ft.KeyboardType.NUMBER,
                                             on_submit=self._pack, width=220, autofocus=True)
        self.carrier: str | None = None
        self.tracking: list[str] = []
        self.tracking_box, self.tracking_field = field("Scan tracking number", "tracking-scan",
                                                       on_submit=self._tracking_scan, autofocus=True)
        self.code_box, self.code_field = field("Pickup code", "pickup-code", keyboard=ft.KeyboardType.NUMBER,
                                               on_submit=self._check_code, width=260, autofocus=True)
        self.code_ok = False
        self.handover_msg = text("", FONT, weight=ft.FontWeight.W_600)
        self.dialog: ft.AlertDialog | None = None

    @property
    def number(self) -> str:
        t = self.task
        return t.get("order_number") or t.get("order_id") or t["id"]

    # ------------------------------------------------------------ build / refresh
    def build(self) -> ft.Control:
        self._render()
        return ft.Column([self.header, self.main], scroll=ft.ScrollMode.AUTO, expand=True, spacing=12)

    def refresh(self, what: str) -> None:
        if what in ("pulled", "pushed"):  # re-render only when the server changed something on this order
            task = self.state.cache.task(self.task_id) or self.task
            conflicts = len(self.state.outbox.conflicts(self.task_id))
            if task != self.task or conflicts != getattr(self, "_conflicts", 0):
                self.task, self._conflicts = task, conflicts
                self._render()

    async def shown(self) -> None:
        await self._focus()

    async def _focus(self) -> None:
        step = self.task.get("step")
        if self.dialog is not None:
            return
        if step == "pick":
            await focus(self.scan)
        elif step == "pack":
            await focus(self.weight)
        elif step == "handover":
            await focus(self.code_field if self._pickup else self.tracking_field)

    @property
    def _pickup(self) -> bool:
        return self.task.get("delivery_method") == "pickup"

    def _render(self) -> None:
        t = self.task
        due, colour = due_words(t.get("promise_by"))
        me = self.state.session.username if self.state.session else None
        who = t.get("assignee")
        head: list[ft.Control] = [
            ft.Row([text(self.number, 28, weight=ft.FontWeight.BOLD),
                    text(method_words(t.get("delivery_method")), FONT, color=PRIMARY),
                    text(due, FONT, color=colour, weight=ft.FontWeight.W_600)], spacing=16, wrap=True),
        ]
        if who and who != me:
            head.append(text(f"{who} is working on this order.", FONT, color=WARN))
        conflicts = self.state.outbox.conflicts(self.task_id)
        if conflicts:
            words = []
            for c in conflicts:
                w = conflict_text(c.get("code"), c.get("message"))
                if w not in words:
                    words.append(w)
            done = "; ".join(action_words(c["body"], t) for c in conflicts)
            head.append(hook("conflict", panel(
                [text("The server did not accept your work on this order", 20, weight=ft.FontWeight.BOLD,
                      color=BAD)] + [text(w, FONT) for w in words] +
                [text(f"Not applied: {done}", FONT - 2, color=MUTED),
                 big_button("Got it", self._dismiss, "conflict-dismiss", kind="tonal")],
                bgcolor="#FDECEA", border=BAD)))
        self.header.controls = head
        step = "withdrawn" if t.get("removed") and t.get("step") != "done" else t.get("step")
        if t.get("removed") and t.get("step") == "done" and not self.state.db.one(
                "SELECT 1 FROM outbox WHERE task_id = ? AND type LIKE 'handover%' AND state != 'rejected'",
                (self.task_id,)):
            step = "withdrawn"
        if step != self.step:
            self.scan_msg.value = "" if self.step is not None else self.scan_msg.value
        self.step = step
        if step == "pick":
            self.main.controls = self._pick_controls()
        elif step == "pack":
            self.main.controls = self._pack_controls()
        elif step == "handover":
            self.main.controls = self._handover_controls()
        elif step == "withdrawn":
            self.main.controls = [panel([text("This order is no longer in your queue.", 22, weight=ft.FontWeight.BOLD),
                                         text("It was cancelled or moved to another store.", FONT)]),
                                  big_button("Back to queue", self.app.go_back, "to-queue")]
        else:
            self.main.controls = [panel([text("Done: this order has been handed over.", 22, color=OK,
                                              weight=ft.FontWeight.BOLD)]),
                                  big_button("Back to queue", self.app.go_back, "to-queue")]

    # ------------------------------------------------------------ pick
    def _pick_controls(self) -> list[ft.Control]:
        lines = self.task.get("lines", [])
        total = sum(int(x.get("quantity") or 0) for x in lines)
        picked = sum(int(x.get("picked") or 0) for x in lines)
        rejected = sum(int(x.get("rejected") or 0) for x in lines)
        progress = f"Picked {picked} of {total}" + (f" · rejected {rejected}" if rejected else "")
        out: list[ft.Control] = [self.scan_box, hook("scan-result", self.scan_msg),
                                 hook("pick-progress", text(progress, FONT, color=MUTED))]
        for line in lines:
            out.append(self._line_card(line))
        return out

    def _line_card(self, line: dict) -> ft.Control:
        lid = str(line.get("line_id"))
        qty = int(line.get("quantity") or 0)
        picked = int(line.get("picked") or 0)
        rejected = int(line.get("rejected") or 0)
        done = line_done(line)
        status = f"Picked {picked} of {qty}" + (f" · rejected {rejected}" if rejected else "")
        codes = line.get("barcodes") or []
        info = ft.Column([
            text(line.get("name") or line.get("sku") or lid, 22, weight=ft.FontWeight.BOLD),
            text(f"{line.get('sku')}" + (f" · barcode {codes[0]}" if codes else ""), FONT - 2, color=MUTED),
            text(("Done · " if done else "") + status, FONT, weight=ft.FontWeight.W_600,
                 color=OK if done and picked else (BAD if done else PRIMARY)),
        ], spacing=4, expand=True)
        buttons: list[ft.Control] = []
        if not done:
            buttons = [big_button("Pick 1", self._tap_pick(lid), f"pick-{lid}", icon=ft.Icons.ADD),
                       big_button("Reject", self._open_reject(lid), f"reject-{lid}", kind="outlined",
                                  icon=ft.Icons.REMOVE_SHOPPING_CART)]
        box = ft.Container(ft.Row([info] + buttons, vertical_alignment=ft.CrossAxisAlignment.CENTER, spacing=10),
                           bgcolor="#FFFFFF" if not done else "#EEF5EF", padding=16, border_radius=14)
        return hook(f"line-{lid}", box)

    async def _scan_blurred(self, e: Any = None) -> None:
        """Take the focus back unless the associate moved on (another screen, a dialog, the next step)."""
        import asyncio

        await asyncio.sleep(0.25)
        if self.app.screen is self and self.dialog is None and self.step == "pick":
            await focus(self.scan)

    async def _scan(self, e: Any = None) -> None:
        code = (self.scan.value or "").strip()
        self.scan.value = ""
        if code:
            self._apply_scan(code)
        self.page.update()
        await self._focus()  # the last pick turns the screen into the pack step: focus what is there

    def _apply_scan(self, code: str) -> None:
        lines = self.task.get("lines", [])
        matching = [x for x in lines if code in (x.get("barcodes") or []) or code == x.get("sku")]
        if not matching:
            product = self.state.cache.product_by_barcode(code)
            if product is not None:
                matching = [x for x in lines if x.get("sku") == product.get("sku")]
        open_lines = [x for x in matching if not line_done(x)]
        if open_lines:
            line = open_lines[0]
            self._pick(str(line["line_id"]), barcode=code)
            line = next(x for x in self.task["lines"] if str(x["line_id"]) == str(line["line_id"]))
            self._say(f"Picked {line.get('name') or line.get('sku')} · {line.get('picked')} of "
                      f"{line.get('quantity')}", OK)
        elif matching:
            self._say(f"All of {matching[0].get('name') or matching[0].get('sku')} is already picked.", WARN)
        else:
            product = self.state.cache.product_by_barcode(code)
            what = f"{product.get('name')} ({product.get('sku')})" if product else f"Barcode {code}"
            self._say(f"Wrong item: {what} is not on this order.", BAD)

    def _say(self, words: str, colour: str) -> None:
        self.scan_msg.value = words
        self.scan_msg.color = colour

    def _pick(self, line_id: str, barcode: str | None = None) -> None:
        self.state.act("pick", task_id=self.task_id, line_id=line_id, quantity=1, barcode=barcode)
        self.task = self.state.cache.task(self.task_id) or self.task
        self._render()

    def _tap_pick(self, line_id: str):
        async def click(e: Any) -> None:
            line = next((x for x in self.task.get("lines", []) if str(x.get("line_id")) == line_id), None)
            if line is None or line_done(line):
                return
            self._pick(line_id)
            line = next(x for x in self.task["lines"] if str(x["line_id"]) == line_id)
            if self.step == "pick":
                self._say(f"Picked {line.get('name') or line.get('sku')} · {line.get('picked')} of "
                          f"{line.get('quantity')}", OK)
            self.page.update()
            await self._focus()
        return click

    # ------------------------------------------------------------ reject dialog
    def _open_reject(self, line_id: str):
        async def click(e: Any) -> None:
            line = next((x for x in self.task.get("lines", []) if str(x.get("line_id")) == line_id), None)
            if line is None:
                return
            self._reject_dialog(line)
        return click

    def _reject_dialog(self, line: dict) -> None:
        reasons = self.state.cache.reason_codes()
        chosen: dict[str, Any] = {"reason": None, "qty": remaining(line)}
        max_qty = remaining(line)
        qty_text = text("", 22, weight=ft.FontWeight.BOLD)
        note_box, note = field("Note", "reject-note", multiline=False)
        msg = text("", FONT - 2, color=BAD)
        reason_col = ft.Column(spacing=8)
        confirm = big_button("Reject", None, "reject-confirm", color=BAD)

        def render() -> None:
            qty_text.value = f"{chosen['qty']} of {max_qty}"
            needs = next((r["needs_note"] for r in reasons if r["code"] == chosen["reason"]), False)
            note.label = "Note (required)" if needs else "Note (optional)"
            reason_col.controls = [big_button(r["label"], pick_reason(r["code"]), f"reason-{r['code']}",
                                              kind="filled" if r["code"] == chosen["reason"] else "outlined",
                                              width=460) for r in reasons]

        def pick_reason(code: str):
            async def click(e: Any) -> None:
                chosen["reason"] = code
                msg.value = ""
                render()
                self.page.update()
            return click

        def step_qty(delta: int):
            async def click(e: Any) -> None:
                chosen["qty"] = max(1, min(max_qty, chosen["qty"] + delta))
                render()
                self.page.update()
            return click

        async def do_confirm(e: Any) -> None:
            reason = chosen["reason"]
            needs = next((r["needs_note"] for r in reasons if r["code"] == reason), False)
            if reason is None:
                msg.value = "Choose a reason."
            elif needs and not (note.value or "").strip():
                msg.value = "Add a note for this reason."
            else:
                self.state.act("reject", task_id=self.task_id, line_id=str(line["line_id"]), quantity=chosen["qty"],
                               reason=reason, note=(note.value or "").strip() or None)
                self.task = self.state.cache.task(self.task_id) or self.task
                label = next((r["label"] for r in reasons if r["code"] == reason), reason)
                self._say(f"Rejected {chosen['qty']} × {line.get('name') or line.get('sku')}: {label}", WARN)
                await close()
                return
            self.page.update()

        async def close(e: Any = None) -> None:
            self.page.pop_dialog()
            self.dialog = None
            self._render()
            self.page.update()
            await self._focus()

        confirm.content.on_click = do_confirm
        render()
        self.dialog = ft.AlertDialog(
            modal=True, semantics_label="Reject dialog",
            title=text(f"Reject {line.get('name') or line.get('sku')}", 24, weight=ft.FontWeight.BOLD),
            content=ft.Column([
                text("Reason", FONT, color=MUTED), reason_col,
                ft.Row([text("Quantity", FONT, color=MUTED),
                        icon_button(ft.Icons.REMOVE, "One less", step_qty(-1), "reject-qty-minus"),
                        hook("reject-qty", qty_text),
                        icon_button(ft.Icons.ADD, "One more", step_qty(1), "reject-qty-plus")],
                       vertical_alignment=ft.CrossAxisAlignment.CENTER),
                note_box, hook("reject-message", msg),
            ], tight=True, scroll=ft.ScrollMode.AUTO, width=480, spacing=10),
            actions=[big_button("Cancel", close, "reject-cancel", kind="outlined"), confirm])
        self.page.show_dialog(self.dialog)

    # ------------------------------------------------------------ pack
    def _pack_controls(self) -> list[ft.Control]:
        items = sum(int(x.get("picked") or 0) for x in self.task.get("lines", []))
        return [
            hook("scan-result", self.scan_msg),
            panel([text(f"All picked: {items} item{'s' if items != 1 else ''}. Pack the order.", 22,
                        weight=ft.FontWeight.BOLD, color=OK),
                   text("Packages", FONT, color=MUTED),
                   ft.Row([icon_button(ft.Icons.REMOVE, "One package less", self._packages(-1), "packages-minus"),
                           hook("packages", text(f"{self.packages}", 28, weight=ft.FontWeight.BOLD)),
                           icon_button(ft.Icons.ADD, "One package more", self._packages(1), "packages-plus")],
                          vertical_alignment=ft.CrossAxisAlignment.CENTER),
                   text("Box", FONT, color=MUTED),
                   ft.Row([big_button(b, self._box(b), f"box-{b}", kind="filled" if b == self.box_size else "outlined")
                           for b in BOXES], spacing=10),
                   self.weight_box,
                   hook("pack-message", self.handover_msg),
                   big_button("Packed", self._pack, "pack-confirm", icon=ft.Icons.INVENTORY)], spacing=14),
        ]

    def _packages(self, delta: int):
        async def click(e: Any) -> None:
            self.packages = max(1, min(50, self.packages + delta))
            self._render()
            self.page.update()
        return click

    def _box(self, size: str):
        async def click(e: Any) -> None:
            self.box_size = size
            self._render()
            self.page.update()
            await focus(self.weight)
        return click

    async def _pack(self, e: Any = None) -> None:
        raw = (self.weight.value or "").strip().replace(",", ".")
        try:
            weight = float(raw) if raw else None
        except ValueError:
            weight = -1
        if weight is not None and not (0 < weight <= 2000):
            self.handover_msg.value = "Weight must be a number of kilograms, like 1.2"
            self.handover_msg.color = BAD
            self.page.update()
            await focus(self.weight)
            return
        self.state.act("pack", task_id=self.task_id, packages=self.packages, box=self.box_size, weight_kg=weight)
        self.task = self.state.cache.task(self.task_id) or self.task
        self.handover_msg.value = ""
        self._say(f"Packed in {self.packages} package{'s' if self.packages != 1 else ''}. "
                  "Ready for handover.", OK)
        self._render()
        self.page.update()
        await self._focus()

    # ------------------------------------------------------------ handover
    def _handover_controls(self) -> list[ft.Control]:
        if self._pickup:
            can = self.code_ok or not self.task.get("pickup_code_sha256")
            return [hook("scan-result", self.scan_msg), panel([
                text("Customer pickup: ask for the pickup code.", 22, weight=ft.FontWeight.BOLD),
                ft.Row([self.code_box, big_button("Check code", self._check_code, "pickup-check", kind="tonal")]),
                hook("pickup-result", self.handover_msg),
                big_button("Handed to customer", self._handover_customer, "handover-confirm",
                           icon=ft.Icons.HANDSHAKE, disabled=not can or not (self.code_field.value or "").strip()),
            ], spacing=14)]
        chips = [ft.Row([text(tn, FONT), icon_button(ft.Icons.CLOSE, f"Remove {tn}", self._untrack(tn),
                                                      f"untrack-{tn}")]) for tn in self.tracking]
        return [hook("scan-result", self.scan_msg), panel([
            text("Hand over to the carrier", 22, weight=ft.FontWeight.BOLD),
            text("Carrier", FONT, color=MUTED),
            ft.Row([big_button(c, self._carrier(c), f"carrier-{c}", kind="filled" if c == self.carrier else "outlined")
                    for c in CARRIERS], spacing=10, wrap=True),
            self.tracking_box,
            hook("tracking-list", ft.Column(chips or [text("No tracking number scanned yet.", FONT - 2,
                                                           color=MUTED)], spacing=4)),
            hook("handover-message", self.handover_msg),
            big_button("Handed to carrier", self._handover_carrier, "handover-confirm", icon=ft.Icons.LOCAL_SHIPPING,
                       disabled=not (self.carrier and self.tracking)),
        ], spacing=14)]

    def _carrier(self, name: str):
        async def click(e: Any) -> None:
            self.carrier = name
            self._render()
            self.page.update()
            await focus(self.tracking_field)
        return click

    def _untrack(self, tn: str):
        async def click(e: Any) -> None:
            self.tracking = [x for x in self.tracking if x != tn]
            self._render()
            self.page.update()
            await focus(self.tracking_field)
        return click

    async def _tracking_scan(self, e: Any = None) -> None:
        tn = (self.tracking_field.value or "").strip()
        self.tracking_field.value = ""
        if tn and tn not in self.tracking:
            self.tracking.append(tn)
        self._render()
        self.page.update()
        await focus(self.tracking_field)

    async def _handover_carrier(self, e: Any = None) -> None:
        if not (self.carrier and self.tracking):
            return
        self.state.act("handover_carrier", task_id=self.task_id, carrier=self.carrier, tracking=list(self.tracking))
        await self._finished(f"{self.number} handed to {self.carrier}.")

    async def _check_code(self, e: Any = None) -> None:
        code = (self.code_field.value or "").strip()
        expected = self.task.get("pickup_code_sha256")
        if not code:
            self.handover_msg.value, self.handover_msg.color = "Enter the customer's pickup code.", BAD
        elif not expected:
            self.code_ok = True
            self.handover_msg.value, self.handover_msg.color = "The server will check this code.", WARN
        elif pickup_code_matches(self.task_id, code, expected):
            self.code_ok = True
            self.handover_msg.value, self.handover_msg.color = "Code matches. Hand over the order.", OK
        else:
            self.code_ok = False
            self.code_field.value = ""
            self.handover_msg.value, self.handover_msg.color = "That code does not match this order.", BAD
        self._render()
        self.page.update()
        if not self.code_ok:
            await focus(self.code_field)

    async def _handover_customer(self, e: Any = None) -> None:
        code = (self.code_field.value or "").strip()
        if not code:
            return
        if self.task.get("pickup_code_sha256") and not pickup_code_matches(
                self.task_id, code, self.task["pickup_code_sha256"]):
            self.code_ok = False
            await self._check_code()
            return
        self.state.act("handover_customer", task_id=self.task_id, pickup_code=code)
        await self._finished(f"{self.number} handed to the customer.")

    async def _finished(self, words: str) -> None:
        self.app.toast(words)
        await self.app.go_back()

    async def _dismiss(self, e: Any = None) -> None:
        self.state.outbox.dismiss(self.task_id)
        self._render()
        self.page.update()
