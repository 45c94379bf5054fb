"""Routing domain: cost model, real-time routing, eligibility, explanations, batch optimiser."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pytest

from backend.routing.cost import (
    CostModel,
    Network,
    OrderLine,
    OrderRequest,
    Weights,
    evaluate_plan,
    same_day_open_now,
    stock_from_rows,
)
from backend.routing.explain import explain_batch_change, explain_decision
from backend.routing.geo import distance_from_xyz, haversine_km, point_xyz, unit_xyz
from backend.routing.optimiser import optimise_batch
from backend.routing.realtime import route_order

# Albany, NY area: customers near the stores; the warehouse is ~1,000 km away (Memphis-like distance).
ALB = (42.65, -73.75)


def net_of(rows, **over) -> Network:
    """rows: (code, type, lat, lon, radius_km, capacity) ."""
    n = len(rows)
    kw = dict(codes=[r[0] for r in rows], types=[r[1] for r in rows], lat=[r[2] for r in rows],
              lon=[r[3] for r in rows], ships=[True] * n, pickup=[r[1] == "store" for r in rows],
              same_day_radius_km=[r[4] for r in rows], same_day_open=[True] * n,
              capacity_left=[r[5] for r in rows])
    kw.update(over)
    return Network(**kw)


def two_node_network() -> Network:
    return net_of([("S12", "store", 42.66, -73.76, 30.0, 50), ("W2", "warehouse", 39.0, -82.0, 0.0, 10_000)])


def reserve(stock, net, order, assignments):
    skus = {ln.key: ln.sku for ln in order.lines}
    for key, code, q in assignments:
        stock[skus[key]][net.index[code]] -= q
    for code in {c for _, c, _ in assignments}:
        net.capacity_left[net.index[code]] -= 1


# ----------------------------------------------------------------------------------------------------------------------
def test_motivating_case_batch_gives_the_store_to_the_same_day_order():
    net = two_node_network()
    stock = {"SKU-Y": np.array([1, 500])}  # the store holds the last unit
    std = OrderRequest("STD-1", "standard", [("1", "SKU-Y", 1)], lat=42.67, lon=-73.78)
    sd = OrderRequest("SD-1", "same_day", [("1", "SKU-Y", 1)], lat=42.64, lon=-73.74)
    live = {k: v.copy() for k, v in stock.items()}
    live_net = net.with_capacity(net.capacity_left.copy())

    d_std = route_order(std, live_net, live)
    assert d_std.assignments == [("1", "S12", 1)]  # real time: the standard order takes the store's units
    reserve(live, live_net, std, d_std.assignments)
    d_sd = route_order(sd, live_net, live)
    assert d_sd.assignments == [("1", "W2", 1)]
    assert not d_sd.promise_kept
    reserve(live, live_net, sd, d_sd.assignments)

    current = {"STD-1": d_std.assignments, "SD-1": d_sd.assignments}
    res = optimise_batch([std, sd], current, net, stock)  # stock = ATP + these orders' reservations
    assert res.improved
    assert res.assignment["SD-1"] == [("1", "S12", 1)]
    assert res.assignment["STD-1"] == [("1", "W2", 1)]
    assert res.cost_after < res.cost_before - 30  # the same-day promise is worth 40
    assert sorted(res.changed) == ["SD-1", "STD-1"]
    text = res.reasons["STD-1"].text
    assert "same-day order SD-1" in text and "S12" in text and "SKU-Y" in text and "last unit" in text
    assert res.reasons["STD-1"].freed[0]["taken_by"][0]["order_id"] == "SD-1"
    ex = explain_batch_change(res.reasons["SD-1"])
    assert ex["summary"] and any("STD-1" in s for s in ex["sentences"])
    summary = res.summary()
    assert set(summary) == {"orders", "changed", "cost_before", "cost_after", "seconds"}


def test_batch_never_worse_returns_current_when_optimal():
    net = two_node_network()
    stock = {"A": np.array([5, 500])}
    o = OrderRequest("O1", "same_day", [("1", "A", 1)], lat=42.64, lon=-73.74)
    cur = {"O1": [("1", "S12", 1)]}
    res = optimise_batch([o], cur, net, stock)
    assert not res.improved and res.changed == [] and res.assignment == cur
    assert res.cost_after == pytest.approx(res.cost_before)


# ----------------------------------------------------------------------------------------------------------------------
def test_same_day_outside_radius_or_past_cutoff_is_not_chosen():
    # S1 is nearest but its radius is 5 km (customer 9 km away); S2 is open and covers the customer.
    rows = [("S1", "store", 42.70, -73.70, 5.0, 10), ("S2", "store", 42.80, -73.90, 40.0, 10),
            ("S3", "store", 42.66, -73.75, 40.0, 10), ("W1", "warehouse", 39.0, -82.0, 0.0, 1000)]
    net = net_of(rows, same_day_open=[True, True, False, True])  # S3 is past its cut-off
    stock = {"A": np.array([3, 3, 3, 100])}
    o = OrderRequest("O", "same_day", [("1", "A", 1)], lat=ALB[0], lon=ALB[1])
    d = route_order(o, net, stock)
    assert d.packages == ["S2"] and d.promise_kept
    why = {c.location: c.reasons for c in d.candidates}
    assert any("outside same-day radius" in r for r in why["S1"])
    assert "past cut-off" in why["S3"]
    sentences = " ".join(explain_decision(d)["sentences"])
    assert "outside same-day radius" in sentences and "past cut-off" in sentences


def test_same_day_fallback_off_leaves_line_unfilled():
    rows = [("S1", "store", 42.66, -73.75, 40.0, 10), ("W1", "warehouse", 39.0, -82.0, 0.0, 1000)]
    net = net_of(rows, same_day_open=[False, True])
    stock = {"A": np.array([3, 100])}
    o = OrderRequest("O", "same_day", [("1", "A", 1)], lat=ALB[0], lon=ALB[1])
    soft = route_order(o, net, stock)
    assert soft.assignments and not soft.promise_kept and soft.terms["promise_miss"] == 40.0
    hard = route_order(o, net, stock, Weights(same_day_fallback=False))
    assert hard.assignments == [] and hard.unfilled and hard.unfilled[0][0] == "1"


def test_pickup_at_the_chosen_store_and_transfer_when_it_lacks_stock():
    rows = [("S1", "store", 42.66, -73.75, 30.0, 10), ("S2", "store", 42.70, -73.80, 30.0, 10),
            ("W1", "warehouse", 39.0, -82.0, 0.0, 1000)]
    net = net_of(rows)
    o = OrderRequest("P", "pickup", [("1", "A", 1)], pickup_location="S2")
    d = route_order(o, net, {"A": np.array([5, 1, 50])})
    assert d.packages == ["S2"] and d.promise_kept and d.terms["transfer"] == 0.0
    d2 = route_order(o, net, {"A": np.array([5, 0, 50])})
    assert d2.packages == ["S1"] and not d2.promise_kept and d2.terms["transfer"] > 0
    s = " ".join(explain_decision(d2)["sentences"])
    assert "lacks SKU A" in s


def test_capacity_is_hard_and_excluded_locations_are_never_used():
    rows = [("S1", "store", 42.66, -73.75, 30.0, 0), ("S2", "store", 42.70, -73.80, 30.0, 10),
            ("W1", "warehouse", 39.0, -82.0, 0.0, 1000)]
    net = net_of(rows)
    stock = {"A": np.array([5, 5, 50])}
    o = OrderRequest("O", "standard", [("1", "A", 1)], lat=ALB[0], lon=ALB[1], excluded={"1": {"S2"}})
    d = route_order(o, net, stock)
    assert d.packages == ["W1"]
    why = {c.location: c.reasons for c in d.candidates}
    assert "at capacity" in why["S1"]
    assert any("excluded after rejection" in r for r in why["S2"])
    text = " ".join(explain_decision(d)["sentences"])
    assert "at capacity" in text and "excluded after rejection" in text


def test_unfilled_line_has_a_reason_and_stock_is_not_mutated():
    net = two_node_network()
    stock = {"A": np.array([1, 10])}
    before = stock["A"].copy()
    o = OrderRequest("O", "next_day", [("1", "A", 1), ("2", "NOPE", 1)], lat=ALB[0], lon=ALB[1])
    d = route_order(o, net, stock)
    assert [k for k, _ in d.unfilled] == ["2"]
    assert "no location has SKU NOPE" in d.unfilled[0][1]
    assert d.terms["unfilled"] == Weights().unfilled_per_line
    assert np.array_equal(stock["A"], before)
    assert "backordered" in " ".join(explain_decision(d)["sentences"])


def test_single_package_beats_split_and_is_explained():
    # The store near the customer holds only A; the warehouse holds A and B: one package wins over a split.
    net = two_node_network()
    stock = {"A": np.array([3, 50]), "B": np.array([0, 50])}
    o = OrderRequest("O", "standard", [("1", "A", 1), ("2", "B", 1)], lat=ALB[0], lon=ALB[1])
    d = route_order(o, net, stock)
    assert d.packages == ["W2"] and d.best_single and d.best_split
    ex = explain_decision(d)
    assert json.loads(json.dumps(ex)) == ex
    assert any("could ship all lines in one package" in s and "split" in s for s in ex["sentences"])
    assert any(s.startswith("Store S12") and "lacks SKU B" in s for s in ex["sentences"])
    assert set(ex) >= {"summary", "winner", "candidates", "sentences"}


def test_split_when_no_single_location_holds_everything():
    rows = [("S1", "store", 42.66, -73.75, 30.0, 10), ("S2", "store", 42.70, -73.80, 30.0, 10)]
    net = net_of(rows)
    stock = {"A": np.array([1, 0]), "B": np.array([0, 1]), "C": np.array([1, 0])}
    o = OrderRequest("O", "standard", [("1", "A", 1), ("2", "B", 1), ("3", "C", 1)], lat=ALB[0], lon=ALB[1])
    d = route_order(o, net, stock)
    assert sorted(d.packages) == ["S1", "S2"] and not d.unfilled
    assert dict((k, c) for k, c, _ in d.assignments) == {"1": "S1", "2": "S2", "3": "S1"}


def test_two_lines_of_one_sku_do_not_overdraw_a_location():
    net = two_node_network()
    stock = {"A": np.array([1, 1])}
    o = OrderRequest("O", "standard", [("1", "A", 1), ("2", "A", 1)], lat=ALB[0], lon=ALB[1])
    d = route_order(o, net, stock)
    used = {}
    for _, c, q in d.assignments:
        used[c] = used.get(c, 0) + q
    assert all(used[c] <= stock["A"][net.index[c]] for c in used)
    assert len(d.assignments) == 2


# ----------------------------------------------------------------------------------------------------------------------
def test_weights_round_trip_and_validation():
    w = Weights()
    d = w.to_dict()
    assert json.loads(json.dumps(d)) == d and d["schema"] == 1
    assert Weights.from_dict(d) == w
    assert Weights.from_dict({"package_base": 7.5}).package_base == 7.5
    assert Weights.from_dict({"handling": {"store": 4.0}}).handling["warehouse"] == 0.75
    with pytest.raises(ValueError, match="unknown routing weight"):
        Weights.from_dict({"nope": 1})
    with pytest.raises(ValueError):
        Weights(package_base=-1.0)
    with pytest.raises(ValueError):
        Weights(handling={"shop": 1.0})
    assert hash(w) == hash(Weights.from_dict(d))


def test_cost_breakdown_terms_add_up():
    net = two_node_network()
    stock = {"A": np.array([3, 50]), "B": np.array([0, 50])}
    o = OrderRequest("O", "standard", [("1", "A", 2), ("2", "B", 1)], lat=ALB[0], lon=ALB[1], priority=1)
    d = route_order(o, net, stock)
    assert d.total_cost == pytest.approx(sum(d.terms.values()))
    ev = evaluate_plan([o], {"O": d.assignments}, net, stock=stock)
    assert ev.total_cost == pytest.approx(d.total_cost)
    assert ev.orders["O"].terms["units"] == pytest.approx(d.terms["units"])


def test_same_day_open_now_and_network_from_records():
    now = datetime(2025, 6, 2, 19, 30, tzinfo=UTC)  # 15:30 in New York (UTC-4), 12:30 in Los Angeles
    opened = same_day_open_now(np.array([15 * 60, 15 * 60]), np.array([-240, -420]), now)
    assert opened.tolist() == [False, True]
    net = Network.from_records([
        {"code": "S1", "type": "store", "lat": 42.65, "lon": -73.75, "timezone": "America/New_York",
         "ships": True, "pickup": True, "same_day_radius_km": 25, "same_day_cutoff": "15:00", "daily_capacity": 40,
         "capacity_left": 12, "reliability": 0.9},
        {"code": "W1", "type": "warehouse", "lat": 39.0, "lon": -82.0, "same_day_cutoff": None},
    ], now_utc=now)
    assert net.same_day_open.tolist() == [False, True]
    assert net.capacity_left.tolist()[0] == 12 and net.daily_capacity.tolist()[0] == 40
    st = stock_from_rows([("A", "S1", 3), ("A", "W1", 7), ("A", "ZZ", 1)], net)
    assert st["A"].tolist() == [3, 7]


def test_geo_fast_distance_matches_haversine():
    rng = np.random.default_rng(3)
    lat, lon = rng.uniform(25, 49, 500), rng.uniform(-124, -67, 500)
    xyz = unit_xyz(lat, lon)
    d1 = haversine_km(40.7, -74.0, lat, lon)
    d2 = distance_from_xyz(*point_xyz(40.7, -74.0), xyz[:, 0], xyz[:, 1], xyz[:, 2])
    assert np.abs(d1 - d2).max() < 0.5
    assert haversine_km(42.65, -73.75, 42.65, -73.75) == pytest.approx(0.0)


def test_load_penalty_is_marginal_and_convex():
    net = net_of([("S1", "store", 42.66, -73.75, 30.0, 2)], daily_capacity=[10])
    m = CostModel(net, Weights())
    # 8 of 10 used: the 9th package is above 80%, not above 95%
    assert m.load_marginal(net.capacity_left)[0] == pytest.approx(1.0)
    assert m.load_cost(np.array([2]))[0] == pytest.approx(1.0 + 1.0 + 3.0)


def test_domain_imports_no_web_or_database_libraries():
    code = ("import sys; import backend.routing.cost, backend.routing.realtime, backend.routing.optimiser, "
            "backend.routing.explain, backend.routing.scenario, backend.routing.bench, backend.routing.geo; "
            "bad=[m for m in ('fastapi','sqlmodel','sqlalchemy','ortools') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_order_line_tuples_are_accepted():
    o = OrderRequest("X", "standard", [("1", "A", 2)], lat=1.0, lon=2.0)
    assert o.lines == [OrderLine("1", "A", 2)]
    with pytest.raises(ValueError):
        OrderRequest("X", "teleport", [("1", "A", 1)], lat=1.0, lon=2.0)
    with pytest.raises(ValueError):
        OrderRequest("X", "pickup", [("1", "A", 1)])
