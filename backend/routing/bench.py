"""Routing benchmark: replay one seeded arrival sequence under four policies and price every final plan alike.

``storeline bench routing --scenario S1|S2|S3 --json FILE`` calls :func:`main`.

Policies (all reserve stock and respect capacity; none may oversell):

* ``greedy_cheapest_line``: line by line, each to its cheapest eligible location, a package being charged only when
  the location is not already used by an earlier line of the order (a ranked-rule engine's view of cost: package +
  units + handling + transfer + missed promise; no opportunity, reliability or load terms).
* ``greedy_single_first``: the cheapest location that holds every line, else cheapest per line (Shopify's default).
* ``realtime``: Storeline's real-time router (:func:`backend.routing.realtime.route_order`) with the full model.
* ``realtime_batch``: the same, plus :func:`backend.routing.optimiser.optimise_batch` every ``batch_every`` arrivals
  over the orders not yet released. Release model: an order is released (frozen) after the batch run that ends its
  hold: same-day and pickup after the first batch after arrival, next-day after 2, standard after 4.

Every final plan is priced by :func:`backend.routing.cost.evaluate_plan` against the morning's stock and capacity.
``total_cost`` is the published cost model WITHOUT the opportunity term: that term is a shadow price the Storeline
policies use to decide, and its real consequence (later same-day orders missed) is already in the replay.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from backend.routing.cost import SHADOW_TERMS, CostModel, Network, OrderRequest, Weights, evaluate_plan
from backend.routing.optimiser import optimise_batch
from backend.routing.realtime import route_order
from backend.routing.scenario import Scenario, make_scenario

POLICIES: tuple[str, ...] = ("greedy_cheapest_line", "greedy_single_first", "realtime", "realtime_batch")
COLUMNS: tuple[str, ...] = ("total_cost", "shipping_cost", "packages", "split_rate", "same_day_kept", "next_day_kept",
                            "unfilled_lines", "capacity_violations", "seconds")
HOLD_BATCHES = {"same_day": 1, "pickup": 1, "next_day": 2, "standard": 4}


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _greedy_weights(w: Weights) -> Weights:
    """What a ranked-rule engine prices: shipping and missed promises only."""
    return w.replace(opportunity_per_unit=0.0, reroute_cost=0.0, load_tiers=[])


def greedy_route(order: OrderRequest, model: CostModel, atp, single_first: bool) -> list[tuple[str, str, int]]:
    """Baseline policies. Respects stock, eligibility and capacity like the real-time router."""
    oc = model.order_costs(order, atp)
    F = oc.feasible
    if F.size == 0:
        return []
    C = np.where(F, oc.line_total + oc.pkg_total[None, :], np.inf)
    codes = model.net.codes
    if single_first and F.shape[0] >= 1:
        full = F.all(axis=0)
        if full.any():
            tot = np.where(full, oc.pkg_total + oc.line_total.sum(axis=0), np.inf)
            j = int(np.argmin(tot))
            skus = [ln.sku for ln in order.lines]
            if len(set(skus)) == len(skus) or _fits_together(order, atp, j):
                return [(ln.key, codes[j], ln.qty) for ln in order.lines]
    out = []
    used: dict[tuple[str, int], int] = {}
    opened: list[int] = []
    for li, ln in enumerate(order.lines):
        row = C[li].copy()
        if opened:  # an already opened package costs nothing more
            row[opened] = np.where(F[li, opened], oc.line_total[li, opened], np.inf)
        for (sku, j), q in used.items():
            if sku == ln.sku and atp[sku][j] - q < ln.qty:
                row[j] = np.inf
        j = int(np.argmin(row))
        if not np.isfinite(row[j]):
            continue
        used[(ln.sku, j)] = used.get((ln.sku, j), 0) + ln.qty
        if j not in opened:
            opened.append(j)
        out.append((ln.key, codes[j], ln.qty))
    return out


def _fits_together(order: OrderRequest, atp, j: int) -> bool:
    need: dict[str, int] = {}
    for ln in order.lines:
        need[ln.sku] = need.get(ln.sku, 0) + ln.qty
    return all(int(atp[s][j]) >= q if s in atp else False for s, q in need.items())


class _Ledger:
    """Running ATP and capacity of one replay (the policies reserve here, as the service would)."""

    def __init__(self, sc: Scenario):
        self.atp = {k: v.copy() for k, v in sc.stock.items()}
        n = sc.network
        self.net = Network(n.codes, n.type_idx, n.lat, n.lon, n.ships, n.pickup, n.same_day_radius_km,
                           n.same_day_open, n.capacity_left.copy(), n.daily_capacity, n.reliability)
        self.sku_of = {o.id: {ln.key: ln.sku for ln in o.lines} for o in sc.orders}

    def apply(self, oid: str, lines: Sequence[tuple[str, str, int]], sign: int) -> None:
        idx = self.net.index
        seen = set()
        for key, code, q in lines:
            j = idx[code]
            sku = self.sku_of[oid][key]
            arr = self.atp.get(sku)
            if arr is None:
                arr = self.atp[sku] = np.zeros(len(self.net.codes), dtype=np.int64)
            arr[j] -= sign * int(q)
            seen.add(j)
        for j in seen:
            self.net.capacity_left[j] -= sign


def replay(sc: Scenario, policy: str, weights: Weights | None = None, *, batch_every: int | None = None,
           batch_time_limit_s: float = 10.0, quiet: bool = False) -> dict:
    """Replay the scenario's arrivals under one policy. Returns the final plan, latencies and timings."""
    w = weights or sc.weights
    led = _Ledger(sc)
    plan: dict[str, list[tuple[str, str, int]]] = {}
    latencies: list[float] = []
    cpu_lat: list[float] = []
    batch_stats: list[dict] = []
    n = len(sc.orders)
    batch_every = batch_every or max(50, n // 20)
    t0, c0 = time.perf_counter(), time.process_time()
    if policy.startswith("greedy"):
        model = CostModel(led.net, _greedy_weights(w))
        single = policy == "greedy_single_first"
        for o in sc.orders:
            t, c = time.perf_counter(), time.process_time()
            lines = greedy_route(o, model, led.atp, single)
            latencies.append(time.perf_counter() - t)
            cpu_lat.append(time.process_time() - c)
            plan[o.id] = lines
            led.apply(o.id, lines, +1)
    else:
        model = CostModel(led.net, w)
        pending: dict[str, int] = {}  # order id -> batches seen since arrival
        by_id = {o.id: o for o in sc.orders}
        step = max(1, n // 10)
        for i, o in enumerate(sc.orders):
            t, c = time.perf_counter(), time.process_time()
            dec = route_order(o, led.net, led.atp, w, model=model)
            latencies.append(time.perf_counter() - t)
            cpu_lat.append(time.process_time() - c)
            plan[o.id] = dec.assignments
            led.apply(o.id, dec.assignments, +1)
            if policy == "realtime_batch":
                pending[o.id] = 0
                last = i == n - 1
                if (i + 1) % batch_every == 0 or last:
                    bs = _run_batch(led, plan, pending, by_id, w, batch_time_limit_s, final=last)
                    batch_stats.append(bs)
            if (i + 1) % step == 0:
                _say(f"  {policy}: {i + 1}/{n} orders routed ({time.perf_counter() - t0:.1f} s)", quiet)
    seconds = time.perf_counter() - t0
    return {"plan": plan, "latencies": np.asarray(latencies), "cpu_latencies": np.asarray(cpu_lat), "seconds": seconds,
            "cpu_seconds": time.process_time() - c0, "batches": batch_stats}


def _run_batch(led: _Ledger, plan, pending: dict[str, int], by_id, w: Weights, time_limit_s: float,
               final: bool) -> dict:
    ids = list(pending)
    orders = [by_id[i] for i in ids]
    current = {i: plan[i] for i in ids}
    for i in ids:  # free what these orders hold: the batch re-assigns it
        led.apply(i, plan[i], -1)
    stock = {}
    for o in orders:
        for ln in o.lines:
            if ln.sku not in stock:
                stock[ln.sku] = led.atp.get(ln.sku, np.zeros(len(led.net.codes), dtype=np.int64))
    c0 = time.process_time()
    res = optimise_batch(orders, current, led.net, stock, w, time_limit_s=time_limit_s)
    cpu = time.process_time() - c0
    for i in ids:
        plan[i] = res.assignment[i]
        led.apply(i, plan[i], +1)
    released = 0
    for i in ids:
        pending[i] += 1
        if final or pending[i] >= HOLD_BATCHES[by_id[i].delivery_method]:
            del pending[i]
            released += 1
    return {"orders": len(ids), "changed": len(res.changed), "cost_before": res.cost_before,
            "cost_after": res.cost_after, "seconds": res.seconds, "cpu_seconds": cpu, "released": released}


def measure_realtime_latency(n_locations: int = 1000, n_orders: int = 2000, seed: int = 11) -> dict:
    """p50/p99 of one real-time decision (with its explanation) over an ``n_locations`` network."""
    sc = make_scenario("custom", seed, n_orders=n_orders, n_locations=n_locations)
    model = CostModel(sc.network, sc.weights)
    lat, cpu = [], []
    for o in sc.orders[:50]:  # warm up
        route_order(o, sc.network, sc.stock, sc.weights, model=model)
    for o in sc.orders:
        t, c = time.perf_counter(), time.process_time()
        route_order(o, sc.network, sc.stock, sc.weights, model=model)
        lat.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    a = np.asarray(lat) * 1000.0
    b = np.asarray(cpu) * 1000.0
    return {"locations": n_locations, "orders": n_orders, "p50_ms": round(float(np.percentile(a, 50)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3), "max_ms": round(float(a.max()), 3),
            "cpu_p50_ms": round(float(np.percentile(b, 50)), 3), "cpu_p99_ms": round(float(np.percentile(b, 99)), 3)}


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_routing_bench(scenario: str, json_path: str | None, seed: int = 7, *,
                      policies: Sequence[str] = POLICIES, batch_every: int | None = None,
                      batch_time_limit_s: float = 10.0, latency_1000: bool = True, quiet: bool = False,
                      n_orders: int | None = None, n_locations: int | None = None,
                      batch_all_open: bool | None = None) -> dict:
    """Run the benchmark, print the table on stdout, write the JSON (if asked) and return it.

    ``n_orders``/``n_locations`` override the scenario's size (for quick checks). ``batch_all_open`` (default: on
    for S1 and S2) also times one batch over every order of the day at once, from the real-time plan: the
    "5,000 open orders x 200 locations" target on S2."""
    if batch_all_open is None:
        batch_all_open = scenario in ("S1", "S2")
    _quiet_highs_banner()
    t = time.perf_counter()
    sc = make_scenario(scenario, seed, n_orders=n_orders, n_locations=n_locations)
    summ = sc.summary()
    _say(f"scenario {scenario}: {summ['orders']} orders, {summ['lines']} lines, {summ['locations']} locations "
         f"({summ['stores']} stores, {summ['warehouses']} warehouses), methods {summ['methods']} "
         f"[{time.perf_counter() - t:.1f} s]", quiet)
    results: dict[str, dict] = {}
    latency: dict[str, dict] = {}
    cpu_seconds: dict[str, float] = {}
    batch_info: dict = {}
    plans: dict[str, dict] = {}
    base_net = sc.network
    for pol in policies:
        _say(f"policy {pol} ...", quiet)
        r = replay(sc, pol, batch_every=batch_every, batch_time_limit_s=batch_time_limit_s, quiet=quiet)
        plans[pol] = r["plan"]
        ev = evaluate_plan(sc.orders, r["plan"], base_net, sc.weights, stock=sc.stock)
        if ev.stock_violations:
            raise AssertionError(f"{pol} oversold {ev.stock_violations} units")
        results[pol] = {
            "total_cost": round(ev.cost_without(SHADOW_TERMS), 2),
            "shipping_cost": round(ev.shipping_cost, 2),
            "packages": ev.packages,
            "split_rate": round(ev.split_rate, 4),
            "same_day_kept": round(ev.same_day_kept, 4),
            "next_day_kept": round(ev.next_day_kept, 4),
            "unfilled_lines": ev.unfilled_lines,
            "capacity_violations": ev.capacity_violations,
            "seconds": round(r["seconds"], 2),
        }
        lat_ms = r["latencies"] * 1000.0
        cpu_ms = r["cpu_latencies"] * 1000.0
        latency[pol] = {"p50_ms": round(float(np.percentile(lat_ms, 50)), 3),
                        "p99_ms": round(float(np.percentile(lat_ms, 99)), 3),
                        "cpu_p50_ms": round(float(np.percentile(cpu_ms, 50)), 3),
                        "cpu_p99_ms": round(float(np.percentile(cpu_ms, 99)), 3)}
        cpu_seconds[pol] = round(r["cpu_seconds"], 2)
        if r["batches"]:
            bs = r["batches"]
            batch_info = {"runs": len(bs), "batch_every": batch_every or max(50, len(sc.orders) // 20),
                          "max_orders": max(b["orders"] for b in bs),
                          "max_seconds": round(max(b["seconds"] for b in bs), 3),
                          "total_seconds": round(sum(b["seconds"] for b in bs), 2),
                          "max_cpu_seconds": round(max(b["cpu_seconds"] for b in bs), 3),
                          "total_cpu_seconds": round(sum(b["cpu_seconds"] for b in bs), 2),
                          "changed": sum(b["changed"] for b in bs),
                          "saved": round(sum(b["cost_before"] - b["cost_after"] for b in bs), 2)}
        _say(f"  {pol}: total {results[pol]['total_cost']:.2f} in {r['seconds']:.1f} s", quiet)
    batch_all = None
    if batch_all_open and "realtime" in plans:
        _say(f"batch over all {len(sc.orders)} orders at once (the real-time plan as the start) ...", quiet)
        c0 = time.process_time()
        res = optimise_batch(sc.orders, plans["realtime"], base_net, sc.stock, sc.weights,
                             time_limit_s=batch_time_limit_s)
        ev = evaluate_plan(sc.orders, res.assignment, base_net, sc.weights, stock=sc.stock, per_order=False)
        batch_all = {"orders": len(sc.orders), "locations": len(base_net), "seconds": round(res.seconds, 2),
                     "cpu_seconds": round(time.process_time() - c0, 2), "cost_before": round(res.cost_before, 2),
                     "cost_after": round(res.cost_after, 2), "changed": len(res.changed),
                     "total_cost": round(ev.cost_without(SHADOW_TERMS), 2),
                     "same_day_kept": round(ev.same_day_kept, 4),
                     "windows": len(res.stats.get("windows", [])),
                     "max_gap": max((w.get("gap") or 0.0 for w in res.stats.get("windows", [])), default=None)}
    out = {"scenario": scenario, "seed": seed, "summary": summ, "weights": sc.weights.to_dict(),
           "policies": results, "realtime_latency_ms": latency, "cpu_seconds": cpu_seconds, "batch": batch_info,
           "batch_all_open": batch_all, "load_average": _loadavg()}
    if latency_1000:
        _say("measuring real-time latency over 1,000 locations ...", quiet)
        out["realtime_latency_1000_locations"] = measure_realtime_latency(1000)
    print(format_table(out))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(out, f, indent=2)
    return out


def format_table(out: dict) -> str:
    res = out["policies"]
    base = res.get("greedy_cheapest_line", {}).get("total_cost")
    head = f"{'policy':<22}" + "".join(f"{c:>20}" for c in COLUMNS) + f"{'vs cheapest/line':>18}"
    rows = [f"routing bench {out['scenario']} (seed {out['seed']}): {out['summary']['orders']} orders, "
            f"{out['summary']['locations']} locations", head, "-" * len(head)]
    for pol, r in res.items():
        cells = []
        for c in COLUMNS:
            v = r[c]
            if c in ("split_rate", "same_day_kept", "next_day_kept"):
                cells.append(f"{v * 100:>19.1f}%")
            elif isinstance(v, float):
                cells.append(f"{v:>20,.2f}")
            else:
                cells.append(f"{v:>20,}")
        rel = f"{(r['total_cost'] / base - 1) * 100:+.1f}%" if base else ""
        rows.append(f"{pol:<22}" + "".join(cells) + f"{rel:>18}")
    lat = out.get("realtime_latency_ms", {})
    for pol in ("realtime", "realtime_batch"):
        if pol in lat:
            x = lat[pol]
            rows.append(f"real-time decision latency ({pol}, {out['summary']['locations']} locations): "
                        f"p50 {x['p50_ms']:.3f} ms, p99 {x['p99_ms']:.3f} ms wall; "
                        f"p50 {x['cpu_p50_ms']:.3f} ms, p99 {x['cpu_p99_ms']:.3f} ms CPU")
            break
    l1k = out.get("realtime_latency_1000_locations")
    if l1k:
        rows.append(f"real-time decision latency (1,000 locations): p50 {l1k['p50_ms']:.3f} ms, "
                    f"p99 {l1k['p99_ms']:.3f} ms wall; p50 {l1k['cpu_p50_ms']:.3f} ms, "
                    f"p99 {l1k['cpu_p99_ms']:.3f} ms CPU")
    b = out.get("batch")
    if b:
        rows.append(f"batch: {b['runs']} runs every {b['batch_every']} arrivals, up to {b['max_orders']} open orders, "
                    f"slowest {b['max_seconds']:.2f} s wall / {b['max_cpu_seconds']:.2f} s CPU, {b['changed']} order "
                    f"changes, saved {b['saved']:.2f}")
    ba = out.get("batch_all_open")
    if ba:
        rows.append(f"one batch over all {ba['orders']:,} orders x {ba['locations']} locations: {ba['seconds']:.2f} s "
                    f"wall / {ba['cpu_seconds']:.2f} s CPU, {ba['windows']} windows, objective "
                    f"{ba['cost_before']:,.2f} -> {ba['cost_after']:,.2f}, {ba['changed']} orders changed; as a "
                    f"clairvoyant bound: total_cost "
                    f"{ba['total_cost']:,.2f}, same-day kept {ba['same_day_kept'] * 100:.1f}%")
    if out.get("load_average"):
        rows.append(f"machine load average (1/5/15 min) at the end: {out['load_average']}")
    return "\n".join(rows)


def _quiet_highs_banner() -> None:
    """highspy prints a banner on stdout when the first solver is made: make that happen with stdout on stderr."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
        try:
            import highspy

            highspy.Highs()
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
    except (OSError, ImportError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="storeline bench routing", description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default="S1", choices=["S1", "S2", "S3"])
    ap.add_argument("--json", dest="json_path", default=None, help="write the results as JSON to this file")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--policies", default=",".join(POLICIES), help="comma-separated subset of " + ", ".join(POLICIES))
    ap.add_argument("--batch-every", type=int, default=None, help="arrivals between batch runs (default n/20)")
    ap.add_argument("--batch-time-limit", type=float, default=10.0)
    ap.add_argument("--no-latency-1000", action="store_true", help="skip the 1,000-location latency measurement")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(list(argv) if argv is not None else None)
    pols = [p.strip() for p in a.policies.split(",") if p.strip()]
    bad = [p for p in pols if p not in POLICIES]
    if bad:
        ap.error(f"unknown policy: {', '.join(bad)}")
    run_routing_bench(a.scenario, a.json_path, a.seed, policies=pols, batch_every=a.batch_every,
                      batch_time_limit_s=a.batch_time_limit, latency_1000=not a.no_latency_1000, quiet=a.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
