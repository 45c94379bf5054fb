"""Property tests on random small instances: real-time routing and the batch optimiser keep every hard rule."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.routing.cost import METHODS, Network, OrderRequest, Weights, evaluate_plan
from backend.routing.optimiser import optimise_batch
from backend.routing.realtime import route_order

SKUS = ["A", "B", "C"]


@st.composite
def instances(draw):
    n_loc = draw(st.integers(2, 6))
    types = ["warehouse" if i == n_loc - 1 else draw(st.sampled_from(["store", "store", "3pl"])) for i in range(n_loc)]
    lat = [42.0 + draw(st.floats(-1.5, 1.5)) for _ in range(n_loc)]
    lon = [-74.0 + draw(st.floats(-1.5, 1.5)) for _ in range(n_loc)]
    cap = [draw(st.integers(0, 4)) for _ in range(n_loc)]
    net = Network(codes=[f"L{i}" for i in range(n_loc)], types=types, lat=lat, lon=lon,
                  ships=[draw(st.booleans()) or i == n_loc - 1 for i in range(n_loc)],
                  pickup=[t == "store" for t in types],
                  same_day_radius_km=[draw(st.sampled_from([0.0, 30.0, 80.0])) for _ in range(n_loc)],
                  same_day_open=[draw(st.booleans()) for _ in range(n_loc)], capacity_left=cap,
                  daily_capacity=[c + draw(st.integers(0, 3)) for c in cap],
                  reliability=[draw(st.floats(0.5, 1.0)) for _ in range(n_loc)])
    stock = {s: np.array([draw(st.integers(0, 3)) for _ in range(n_loc)], dtype=np.int64) for s in SKUS}
    orders = []
    for k in range(draw(st.integers(1, 6))):
        n_lines = draw(st.integers(1, 3))
        skus = [draw(st.sampled_from(SKUS)) for _ in range(n_lines)]  # repeats allowed: same SKU on two lines
        lines = [(str(i + 1), s, draw(st.integers(1, 2))) for i, s in enumerate(skus)]
        method = draw(st.sampled_from(METHODS))
        pick = None
        if method == "pickup":
            stores = [c for c, t in zip(net.codes, types, strict=True) if t == "store"]
            if not stores:
                method = "standard"
            else:
                pick = draw(st.sampled_from(stores))
        excluded = {}
        for key, _, _ in lines:
            if draw(st.integers(0, 3)) == 0:
                excluded[key] = {draw(st.sampled_from(net.codes))}
        orders.append(OrderRequest(f"O{k}", method, lines, priority=float(draw(st.integers(0, 2))),
                                   lat=42.0 + draw(st.floats(-1, 1)), lon=-74.0 + draw(st.floats(-1, 1)),
                                   pickup_location=pick, excluded=excluded))
    weights = Weights(same_day_fallback=draw(st.booleans()))
    return net, stock, orders, weights


def _check_plan(net, stock, orders, plan, unfilled_map=None):
    used = {}
    packages = np.zeros(len(net), dtype=np.int64)
    for o in orders:
        lines = plan.get(o.id, [])
        keys = [k for k, _, _ in lines]
        assert len(keys) == len(set(keys)), "a line allocated twice"
        by_key = {ln.key: ln for ln in o.lines}
        for key, code, q in lines:
            assert code not in o.excluded.get(key, set()), "excluded location used"
            assert q == by_key[key].qty
            used[(by_key[key].sku, code)] = used.get((by_key[key].sku, code), 0) + q
        for code in {c for _, c, _ in lines}:
            packages[net.index[code]] += 1
        if unfilled_map is not None:
            unf = {k for k, _ in unfilled_map.get(o.id, [])}
            assert unf.isdisjoint(keys) and unf | set(keys) == set(by_key), "every line allocated or unfilled once"
    for (sku, code), q in used.items():
        assert q <= stock[sku][net.index[code]], "stock oversold"
    assert (packages <= net.capacity_left).all(), "capacity exceeded"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_realtime_then_batch_keep_the_hard_rules(inst):
    net, stock, orders, weights = inst
    live = {k: v.copy() for k, v in stock.items()}
    live_net = net.with_capacity(net.capacity_left.copy())
    current = {}
    for o in orders:
        before = {k: v.copy() for k, v in live.items()}
        d = route_order(o, live_net, live, weights)
        assert all(np.array_equal(before[k], live[k]) for k in live), "route_order mutated stock"
        assert {k for k, _, _ in d.assignments}.isdisjoint({k for k, _ in d.unfilled})
        assert {k for k, _, _ in d.assignments} | {k for k, _ in d.unfilled} == {ln.key for ln in o.lines}
        _check_plan(live_net, live, [o], {o.id: d.assignments})
        current[o.id] = d.assignments
        skus = {ln.key: ln.sku for ln in o.lines}
        for key, code, q in d.assignments:
            live[skus[key]][live_net.index[code]] -= q
        for code in set(d.packages):
            live_net.capacity_left[live_net.index[code]] -= 1
    assert all((v >= 0).all() for v in live.values()), "negative ATP"
    assert (live_net.capacity_left >= 0).all()

    res = optimise_batch(orders, current, net, stock, weights, time_limit_s=5.0)
    before = evaluate_plan(orders, current, net, weights, stock=stock)
    after = evaluate_plan(orders, res.assignment, net, weights, stock=stock)
    assert res.cost_after <= res.cost_before + 1e-6
    assert after.total_cost <= before.total_cost + 1e-6, "batch worse than the plan it replaced"
    assert after.stock_violations == 0 and after.capacity_violations == 0
    _check_plan(net, stock, orders, res.assignment, res.unfilled)
    if not res.improved:
        assert res.assignment == {o.id: current[o.id] for o in orders}
    for oid in res.changed:
        assert oid in res.reasons and res.reasons[oid].text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.randoms(use_true_random=False))
def test_batch_from_an_arbitrary_feasible_plan_is_never_worse(inst, rnd):
    """The current plan need not come from the real-time router: any feasible plan is a valid start."""
    net, stock, orders, weights = inst
    left = {k: v.copy() for k, v in stock.items()}
    cap = net.capacity_left.copy()
    current = {}
    for o in orders:
        lines = []
        opened = set()
        for ln in o.lines:
            if rnd.random() < 0.3:
                continue
            options = [j for j in range(len(net)) if left[ln.sku][j] >= ln.qty and net.codes[j] not in
                       o.excluded.get(ln.key, set()) and (j in opened or cap[j] >= 1)]
            if not options:
                continue
            j = rnd.choice(options)
            left[ln.sku][j] -= ln.qty
            if j not in opened:
                cap[j] -= 1
                opened.add(j)
            lines.append((ln.key, net.codes[j], ln.qty))
        current[o.id] = lines
    res = optimise_batch(orders, current, net, stock, weights, time_limit_s=5.0)
    before = evaluate_plan(orders, current, net, weights, stock=stock)
    after = evaluate_plan(orders, res.assignment, net, weights, stock=stock)
    if before.stock_violations == 0 and before.capacity_violations == 0:
        assert after.total_cost <= before.total_cost + 1e-6
    assert after.stock_violations == 0 and after.capacity_violations == 0
    _check_plan(net, stock, orders, res.assignment, res.unfilled)
