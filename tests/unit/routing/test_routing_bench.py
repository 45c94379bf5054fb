"""The benchmark and the scenario generator on a small instance (the full S1-S3 runs are a command, not a test)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from backend.routing.bench import COLUMNS, POLICIES, greedy_route, main, run_routing_bench
from backend.routing.cost import CostModel
from backend.routing.scenario import make_scenario


def test_scenario_is_deterministic_and_realistic():
    a = make_scenario("S1", 3, n_orders=300, n_locations=30)
    b = make_scenario("S1", 3, n_orders=300, n_locations=30)
    assert a.summary() == b.summary()
    assert [(o.id, o.delivery_method, o.lat, [(ln.sku, ln.qty) for ln in o.lines]) for o in a.orders] == \
        [(o.id, o.delivery_method, o.lat, [(ln.sku, ln.qty) for ln in o.lines]) for o in b.orders]
    assert all(np.array_equal(a.stock[s], b.stock[s]) for s in a.skus)
    s = a.summary()
    assert s["stores"] >= 20 and s["warehouses"] >= 3
    assert 1.5 <= s["lines"] / s["orders"] <= 2.1
    assert set(s["methods"]) <= {"same_day", "next_day", "standard", "pickup"}
    lat, lon = a.network.lat, a.network.lon
    assert ((lat > 18) & (lat < 72) & (lon > -170) & (lon < -60)).all()  # US geography
    c = make_scenario("S1", 4, n_orders=300, n_locations=30)
    assert [o.lat for o in c.orders] != [o.lat for o in a.orders]


def test_greedy_baselines_respect_stock():
    sc = make_scenario("S1", 5, n_orders=50, n_locations=20)
    model = CostModel(sc.network, sc.weights)
    for o in sc.orders:
        for single in (True, False):
            for key, code, q in greedy_route(o, model, sc.stock, single):
                sku = next(ln.sku for ln in o.lines if ln.key == key)
                assert sc.stock[sku][sc.network.index[code]] >= q


def test_bench_runs_and_writes_exactly_the_columns(tmp_path, capsys):
    path = tmp_path / "bench.json"
    out = run_routing_bench("S1", str(path), seed=7, n_orders=160, n_locations=24, latency_1000=False, quiet=True,
                            batch_every=40)
    data = json.loads(path.read_text())
    assert set(data["policies"]) == set(POLICIES)
    for row in data["policies"].values():
        assert set(row) == set(COLUMNS)
        assert row["capacity_violations"] == 0
    assert data["realtime_latency_ms"]["realtime"]["p99_ms"] > 0
    assert out["policies"] == data["policies"]
    printed = capsys.readouterr().out
    assert "greedy_cheapest_line" in printed and "total_cost" in printed


def test_cli_rejects_unknown_scenario():
    with pytest.raises(SystemExit):
        main(["--scenario", "S9"])
