"""Plain words for actions, as an associate would say them."""

from __future__ import annotations

from typing import Any

REASON_WORDS = {"not_found": "not found", "damaged": "damaged", "wrong_item": "wrong item",
                "customer_hold": "held for a customer", "other": "other"}


def _line_name(task: dict | None, line_id: Any, state: Any = None) -> str:
    for line in (task or {}).get("lines", []):
        if str(line.get("line_id")) == str(line_id):
            return line.get("name") or line.get("sku") or f"line {line_id}"
    return f"line {line_id}"


def action_words(a: dict, task: dict | None = None, state: Any = None) -> str:
    kind = a.get("type")
    qty = a.get("quantity") or 1
    if kind == "pick":
        return f"picked {qty} × {_line_name(task, a.get('line_id'))}"
    if kind == "reject":
        reason = REASON_WORDS.get(a.get("reason") or "", a.get("reason") or "")
        return f"rejected {qty} × {_line_name(task, a.get('line_id'))} ({reason})"
    if kind == "pack":
        n = a.get("packages") or 1
        return f"packed in {n} package{'s' if n != 1 else ''}" + (f", box {a['box']}" if a.get("box") else "")
    if kind == "handover_carrier":
        return f"handed to {a.get('carrier') or 'the carrier'}"
    if kind == "handover_customer":
        return "handed to the customer"
    if kind == "assign":
        return f"assigned to {a.get('assignee')}"
    if kind == "claim":
        return "took the order"
    if kind == "count":
        return f"counted {a.get('counted')} × {a.get('sku')}"
    return str(kind)
