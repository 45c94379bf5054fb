"""Lines no single location can fill, but several can together: routed as parts.

The router places each line whole at one location. A line of 5 when the nearest stores hold 3 and 4 would wait as
a backorder although the chain has the units. `split_short_lines` cuts such a line into parts sized to the largest
holders (fewest packages: 5 → 4 + 1 when the holders have 4 and 3), each part a line of its own to the router, so
the usual cost model chooses where each part goes (the part of 1 may go to any holder). `join_parts` turns the
decision back into the order's own lines. Lines that one location can fill, or that even the whole chain cannot,
are left as they are; pickup orders are never split (the customer collects at one store).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from backend.routing.cost import Network, OrderLine, OrderRequest, Stock
from backend.routing.realtime import Decision

PART = "~"  # part keys: "<line key>~<n>"


def split_short_lines(order: OrderRequest, network: Network, stock: Stock) -> OrderRequest:
    if order.delivery_method == "pickup":
        return order
    lines: list[OrderLine] = []
    excluded: dict[str, set[str]] = {}
    changed = False
    for ln in order.lines:
        atp = stock.get(ln.sku)
        parts = _parts(ln, atp, order.excluded.get(ln.key, set()), network) if atp is not None else None
        if parts is None:
            lines.append(ln)
            if ln.key in order.excluded:
                excluded[ln.key] = order.excluded[ln.key]
            continue
        changed = True
        for i, q in enumerate(parts, start=1):
            key = f"{ln.key}{PART}{i}"
            lines.append(OrderLine(key, ln.sku, q))
            if ln.key in order.excluded:
                excluded[key] = order.excluded[ln.key]
    return replace(order, lines=lines, excluded=excluded) if changed else order


def _parts(ln: OrderLine, atp: np.ndarray, excluded: set[str], network: Network) -> list[int] | None:
    units = np.maximum(np.asarray(atp, dtype=np.int64), 0)
    if excluded:
        units = units.copy()
        for code in excluded:
            i = network.index.get(code)
            if i is not None:
                units[i] = 0
    if units.size == 0 or units.max() >= ln.qty or units.sum() < ln.qty:
        return None
    parts, left = [], ln.qty
    for have in sorted(units[units > 0].tolist(), reverse=True):
        take = min(have, left)
        parts.append(int(take))
        left -= take
        if left == 0:
            return parts
    return None


def base_key(key: str) -> str:
    return key.split(PART, 1)[0]


def join_parts(decision: Decision) -> Decision:
    """The decision over the order's own lines: parts' assignments merged per (line, location); a line with an
    unfilled part keeps what was placed and is reported unfilled for the rest (routing retries it)."""
    if not any(PART in k for k, _, _ in decision.assignments) and not any(PART in k for k, _ in decision.unfilled):
        return decision
    merged: dict[tuple[str, str], int] = {}
    for key, code, qty in decision.assignments:
        merged[(base_key(key), code)] = merged.get((base_key(key), code), 0) + qty
    unfilled: dict[str, str] = {}
    for key, reason in decision.unfilled:
        unfilled.setdefault(base_key(key), reason)
    return replace(decision, assignments=[(k, c, q) for (k, c), q in merged.items()],
                   unfilled=list(unfilled.items()))
