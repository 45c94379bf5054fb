"""A line no single location can fill is shared by several; anything else is left whole."""
from __future__ import annotations

import numpy as np

from backend.routing.cost import Network, OrderLine, OrderRequest
from backend.routing.realtime import route_order
from backend.routing.split import join_parts, split_short_lines


def _net() -> Network:
    return Network.from_records([
        dict(code="A", type="store", lat=42.65, lon=-73.75, ships=True, pickup=True, capacity_left=50),
        dict(code="B", type="store", lat=42.81, lon=-73.94, ships=True, pickup=True, capacity_left=50),
        dict(code="W", type="warehouse", lat=40.27, lon=-76.88, ships=True, pickup=False, capacity_left=500),
    ])


def _order(qty: int, method: str = "standard", excluded=None) -> OrderRequest:
    return OrderRequest(id="o1", delivery_method=method, lines=[OrderLine("1", "SKU", qty)], lat=42.65, lon=-73.75,
                        pickup_location="A" if method == "pickup" else None, excluded=excluded or {})


def test_a_line_of_five_is_shared_by_holders_of_four_and_three():
    net, stock = _net(), {"SKU": np.array([4, 3, 0])}
    req = split_short_lines(_order(5), net, stock)
    assert [(ln.key, ln.qty) for ln in req.lines] == [("1~1", 4), ("1~2", 1)]
    d = join_parts(route_order(req, net, stock))
    assert sorted(d.assignments) == [("1", "A", 4), ("1", "B", 1)] and d.unfilled == []


def test_lines_one_location_fills_or_nobody_can_fill_stay_whole():
    net = _net()
    whole = _order(3)
    assert split_short_lines(whole, net, {"SKU": np.array([4, 3, 0])}) is whole
    assert split_short_lines(_order(9), net, {"SKU": np.array([4, 3, 0])}).lines[0].key == "1", "7 < 9: a backorder"
    assert split_short_lines(_order(5, "pickup"), net, {"SKU": np.array([4, 3, 0])}).lines[0].key == "1"
    # the store that rejected the line does not count: W's 2 and B's 3 share it
    req = split_short_lines(_order(5, excluded={"1": {"A"}}), net, {"SKU": np.array([4, 3, 2])})
    assert [(ln.key, ln.qty) for ln in req.lines] == [("1~1", 3), ("1~2", 2)]
    assert req.excluded == {"1~1": {"A"}, "1~2": {"A"}}
