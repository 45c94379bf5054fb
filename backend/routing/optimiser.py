"""Batch re-optimisation of orders not yet released to a location, as one MIP per window, solved by HiGHS.

The model (see ``/work/shared/research/routing.md``, "Canonical batch model"):

* ``x[l,j]`` binary: line l served from location j (whole line). ``y[o,j]`` binary: order o opens a package at j
  (for a one-line order x and y are the same variable). ``u[l]`` in [0,1]: line l left unfilled.
* minimise  sum C[l,j] x + sum P[o,j] y + U sum u + sum_tiers w_t v[j,t]
* sum_j x[l,j] + u[l] = 1;  x[l,j] <= y[o,j];  sum q_l x[l,j] <= stock[s,j] (only where candidates could exceed it);
  sum_o y[o,j] <= capacity_left[j] (only where they could exceed it);  sum_o y[o,j] - v[j,t] <= slack[j,t] (load).
* eligibility by dropped columns (same rules and prices as real-time routing, :mod:`backend.routing.cost`).

Decomposition: candidate pruning (top-K by cost, the 2 cheapest non-store locations, the best single-location
fills, the current location; widened per SKU until candidate stock covers demand), independent components (orders
sharing no scarce (SKU, location) and no capacity- or load-bound location), and windows of at most ``window_size``
orders solved one after another with the rest of the plan held fixed (a large-neighbourhood search). Each window is
warm-started from the current plan (``setSolution``) and only accepted when strictly cheaper, and the whole result is
compared with the current plan under :func:`backend.routing.cost.evaluate_plan`: the result is never worse.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from backend.routing.cost import (
    TERMS,
    CostModel,
    Network,
    OrderRequest,
    Plan,
    Stock,
    Weights,
    evaluate_plan,
    sku_label,
)

_TOL = 1e-6


@dataclass
class BatchReason:
    """Why the batch changed one order's plan."""

    order_id: str
    delivery_method: str
    before: dict  # {"cost", "terms", "locations", "assignments"}
    after: dict
    freed: list[dict]  # stock this order gave up: {"sku", "location", "units", "taken_by": [{"order_id", "method"}]}
    gained: list[dict]  # stock this order took over: {"sku", "location", "units", "from": [{"order_id", "method"}]}
    text: str

    def to_dict(self) -> dict:
        return {"order_id": self.order_id, "delivery_method": self.delivery_method, "before": self.before,
                "after": self.after, "freed": self.freed, "gained": self.gained, "text": self.text}


@dataclass
class BatchResult:
    assignment: Plan  # order_id -> [(line_key, location_code, qty)]; lines absent are unfilled
    unfilled: dict[str, list[tuple[str, str]]]  # order_id -> [(line_key, reason)]
    cost_before: float
    cost_after: float
    changed: list[str]
    reasons: dict[str, BatchReason]
    seconds: float
    improved: bool
    stats: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The shape of ``POST /api/v1/routing/batch``'s answer."""
        return {"orders": self.stats.get("orders", len(self.assignment)), "changed": len(self.changed),
                "cost_before": round(self.cost_before, 2), "cost_after": round(self.cost_after, 2),
                "seconds": round(self.seconds, 3)}


# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class _Prep:
    """Pruned candidate structure of the whole batch (flat arrays)."""

    n_orders: int
    n_lines: int
    line_order: np.ndarray  # (Lb,)
    line_q: np.ndarray
    line_sku: np.ndarray  # sku id
    order_nlines: np.ndarray
    order_first_line: np.ndarray
    # x entries (line, col)
    e_line: np.ndarray
    e_col: np.ndarray
    e_cost: np.ndarray
    e_y: np.ndarray  # index into y arrays
    # y pairs (order, col)
    y_order: np.ndarray
    y_col: np.ndarray
    y_cost: np.ndarray
    cur_entry: np.ndarray  # (Lb,) entry index of the current assignment, -1 unfilled
    skus: list[str]
    order_key: np.ndarray  # locality key for windows


def _topk_sorted(score: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k smallest finite scores per row, increasing; -1 where fewer are finite."""
    n = score.shape[1]
    k = min(k, n)
    if k <= 0:
        return np.full((score.shape[0], 0), -1, dtype=np.int64)
    part = np.argpartition(score, k - 1, axis=1)[:, :k] if n > k else np.broadcast_to(np.arange(n), score.shape)
    vals = np.take_along_axis(score, part, axis=1)
    order = np.argsort(vals, axis=1, kind="stable")
    cols = np.take_along_axis(part, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(vals, order, axis=1)
    cols[~np.isfinite(vals)] = -1
    return cols


def _prepare(orders: Sequence[OrderRequest], cur: list[dict[str, int]], model: CostModel, stock: Stock,
             top_k: int, pool_k: int, chunk: int = 1000) -> _Prep:
    """Price every order (vectorised, in chunks), prune candidate columns and build the flat MIP structure."""
    net = model.net
    N = len(net)
    is_store = net.type_idx == 0
    sku_ids: dict[str, int] = {}
    line_sku = []
    cur_col = []
    order_first = np.zeros(len(orders) + 1, dtype=np.int64)
    for oi, o in enumerate(orders):
        order_first[oi + 1] = order_first[oi] + len(o.lines)
        for ln in o.lines:
            line_sku.append(sku_ids.setdefault(ln.sku, len(sku_ids)))
            cur_col.append(cur[oi].get(ln.key, -1))
    n_lines = int(order_first[-1])
    line_sku_a = np.asarray(line_sku, dtype=np.int64)
    cur_col_a = np.asarray(cur_col, dtype=np.int64)
    line_order = np.repeat(np.arange(len(orders)), np.diff(order_first))
    skus = [""] * len(sku_ids)
    for sku, i in sku_ids.items():
        skus[i] = sku

    # pass 1: price, rank
    chunks = []
    ranked_all = []
    for a in range(0, len(orders), chunk):
        part = orders[a:a + chunk]
        mc = model.price_many(part, stock)
        la, lb = int(order_first[a]), int(order_first[a + len(part)])
        F = mc.feasible
        lo = mc.line_order
        cc = cur_col_a[la:lb]
        has = cc >= 0
        rows = np.flatnonzero(has)
        ok = np.zeros(cc.size, dtype=bool)
        ok[rows] = F[rows, cc[rows]]
        cur_col_a[la:lb] = np.where(ok, cc, -1)
        score = np.where(F, mc.line_total + mc.pkg_nl[lo], np.inf)
        ranked = _topk_sorted(score, pool_k)
        ns2 = _topk_sorted(np.where(is_store[None, :], np.inf, score), 2)
        starts = order_first[a:a + len(part)] - la
        full = np.logical_and.reduceat(F, starts, axis=0) if F.shape[0] else np.zeros((0, N), dtype=bool)
        tot = mc.pkg_nl + np.add.reduceat(mc.line_total, starts, axis=0) if F.shape[0] else mc.pkg_nl
        multi = np.diff(np.append(starts, F.shape[0])) >= 2
        full3 = _topk_sorted(np.where(full & multi[:, None], tot, np.inf), 3)
        chunks.append((a, len(part), la, lb, mc.line_total, mc.pkg_nl, F, ns2, full3, starts, lo))
        ranked_all.append(ranked)
    ranked = np.concatenate(ranked_all) if ranked_all else np.zeros((0, 0), dtype=np.int64)

    # per-line K, widened per SKU until candidate stock covers the batch's demand for it
    k_line = np.full(n_lines, top_k, dtype=np.int64)
    n_valid = (ranked >= 0).sum(axis=1) if ranked.size else np.zeros(n_lines, dtype=np.int64)
    demand = np.bincount(line_sku_a, weights=np.fromiter((ln.qty for o in orders for ln in o.lines), dtype=float,
                                                           count=n_lines), minlength=len(skus))
    zeros = np.zeros(N, dtype=np.int64)
    sku_stock = [np.asarray(stock.get(s, zeros)) for s in skus]
    for _ in range(4):
        cols_mask = np.zeros((len(skus), N), dtype=bool)
        kk = int(k_line.max()) if n_lines else 0
        sel = ranked[:, :kk]
        valid = (sel >= 0) & (np.arange(sel.shape[1])[None, :] < k_line[:, None])
        li_, ki_ = np.nonzero(valid)
        cols_mask[line_sku_a[li_], sel[li_, ki_]] = True
        cover = np.array([sku_stock[s][cols_mask[s]].sum() for s in range(len(skus))])
        short = cover < demand
        grow = short[line_sku_a] & (k_line < n_valid)
        if not grow.any():
            break
        k_line[grow] = np.minimum(n_valid[grow], k_line[grow] * 2)

    # pass 2: entries
    e_line, e_col, e_cost, e_y = [], [], [], []
    y_order, y_col, y_cost = [], [], []
    cur_entry = np.full(n_lines, -1, dtype=np.int64)
    n_e = n_y = 0
    for (a, n_o, la, lb, LT, PK, F, ns2, full3, starts, lo) in chunks:
        M = np.zeros((n_o, N), dtype=bool)
        rk = ranked[la:lb]
        kl = k_line[la:lb]
        valid = (rk >= 0) & (np.arange(rk.shape[1])[None, :] < kl[:, None])
        li_, ki_ = np.nonzero(valid)
        M[lo[li_], rk[li_, ki_]] = True
        li_, ki_ = np.nonzero(ns2 >= 0)
        M[lo[li_], ns2[li_, ki_]] = True
        oi_, ki_ = np.nonzero(full3 >= 0)
        M[oi_, full3[oi_, ki_]] = True
        cc = cur_col_a[la:lb]
        hc = np.flatnonzero(cc >= 0)
        M[lo[hc], cc[hc]] = True
        E = M[lo] & F
        Y = np.logical_or.reduceat(E, starts, axis=0) if E.shape[0] else np.zeros((n_o, N), dtype=bool)
        yo, yc = np.nonzero(Y)
        yidx = np.full((n_o, N), -1, dtype=np.int64)
        yidx[yo, yc] = n_y + np.arange(yo.size)
        el, ec = np.nonzero(E)
        eidx = np.full(E.shape, -1, dtype=np.int64)
        eidx[el, ec] = n_e + np.arange(el.size)
        e_line.append(la + el)
        e_col.append(ec)
        e_cost.append(LT[el, ec])
        e_y.append(yidx[lo[el], ec])
        y_order.append(a + yo)
        y_col.append(yc)
        y_cost.append(PK[yo, yc])
        cur_entry[la + hc] = eidx[hc, cc[hc]]
        n_e += el.size
        n_y += yo.size

    def cat(xs, dt):
        return np.concatenate(xs).astype(dt) if xs else np.zeros(0, dtype=dt)

    oa = model._order_attrs(orders)
    return _Prep(len(orders), n_lines, line_order.astype(np.int64),
                 np.fromiter((ln.qty for o in orders for ln in o.lines), dtype=np.int64, count=n_lines), line_sku_a,
                 np.diff(order_first).astype(np.int64), order_first[:-1].copy(),
                 cat(e_line, np.int64), cat(e_col, np.int64), cat(e_cost, float), cat(e_y, np.int64),
                 cat(y_order, np.int64), cat(y_col, np.int64), cat(y_cost, float), cur_entry, skus, oa["lon"])


def _components(prep: _Prep, key_stock: np.ndarray, e_key: np.ndarray, cap: np.ndarray,
                slack_min: np.ndarray) -> np.ndarray:
    """Component label per order: orders linked by a possibly scarce (SKU, location) or a bound location."""
    e_order = prep.line_order[prep.e_line]
    demand = np.bincount(e_key, weights=prep.line_q[prep.e_line], minlength=key_stock.size)
    scarce = demand > key_stock
    count = np.bincount(prep.y_col, minlength=cap.size)
    bound = (count > cap) | (count > slack_min)
    sel_e = scarce[e_key]
    sel_y = bound[prep.y_col]
    # bipartite edges order -- resource (scarce keys first, then bound locations)
    res = np.concatenate([e_key[sel_e], key_stock.size + prep.y_col[sel_y]])
    eo = np.concatenate([e_order[sel_e], prep.y_order[sel_y]])
    labels = np.arange(prep.n_orders)
    if res.size == 0:
        return labels
    n_res = key_stock.size + cap.size
    big = np.iinfo(np.int64).max
    for _ in range(10_000):  # label propagation: min label over each resource, then over each order
        r_min = np.full(n_res, big, dtype=np.int64)
        np.minimum.at(r_min, res, labels[eo])
        new = labels.copy()
        np.minimum.at(new, eo, r_min[res])
        new = new[new]  # pointer jumping
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def _windows(comp: np.ndarray, key: np.ndarray, size: int, offset: int = 0) -> list[np.ndarray]:
    """Pack small components together and cut big ones by locality (``key``) into windows of <= size orders."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, c in enumerate(comp):
        groups[int(c)].append(i)
    small: list[np.ndarray] = []
    out: list[np.ndarray] = []
    for members in groups.values():
        m = np.asarray(members, dtype=np.int64)
        if m.size <= size:
            small.append(m)
            continue
        m = m[np.argsort(key[m], kind="stable")]
        start = offset % size if offset else 0
        cuts = list(range(start, m.size, size))
        if cuts and cuts[0] != 0:
            cuts = [0] + cuts
        for a, b in zip(cuts, cuts[1:] + [m.size], strict=True):
            if b > a:
                out.append(m[a:b])
    small.sort(key=lambda a: -a.size)
    cur: list[np.ndarray] = []
    n = 0
    for m in small:
        if n + m.size > size and cur:
            out.append(np.concatenate(cur))
            cur, n = [], 0
        cur.append(m)
        n += m.size
    if cur:
        out.append(np.concatenate(cur))
    return out


def _solve_window(prep: _Prep, w_orders: np.ndarray, e_key: np.ndarray, key_stock: np.ndarray,
                  usage: np.ndarray, pk_count: np.ndarray, cur_entry: np.ndarray, model: CostModel,
                  cap_total: np.ndarray, time_limit: float, mip_gap: float, threads: int | None) -> tuple[
                      np.ndarray | None, dict]:
    """Solve one window. Returns the new entry per line of the window's lines (or None if not better)."""
    import highspy

    net = model.net
    U = float(model.w.unfilled_per_line)
    in_w = np.zeros(prep.n_orders, dtype=bool)
    in_w[w_orders] = True
    w_lines = np.flatnonzero(in_w[prep.line_order])
    e_in = in_w[prep.line_order[prep.e_line]]
    # what the window's own current plan uses (freed for the window)
    own_cur = cur_entry[w_lines]
    own_cur = own_cur[own_cur >= 0]
    own_usage = np.bincount(e_key[own_cur], weights=prep.line_q[prep.e_line[own_cur]], minlength=key_stock.size)
    own_y = np.unique(prep.e_y[own_cur])
    own_pk = np.bincount(prep.y_col[own_y], minlength=len(net))
    avail_key = key_stock - (usage - own_usage)
    cap_w = cap_total - (pk_count - own_pk)
    # valid entries
    e_idx = np.flatnonzero(e_in)
    e_idx = e_idx[avail_key[e_key[e_idx]] >= prep.line_q[prep.e_line[e_idx]]]
    e_idx = e_idx[cap_w[prep.e_col[e_idx]] >= 1]
    # the current plan's entries must stay (they fit by construction)
    e_idx = np.union1d(e_idx, own_cur)
    lines_g = prep.e_line[e_idx]
    # local line ids
    line_loc = np.full(prep.n_lines, -1, dtype=np.int64)
    line_loc[w_lines] = np.arange(w_lines.size)
    nL = w_lines.size
    single = prep.order_nlines[prep.line_order[lines_g]] == 1
    ys_g = prep.e_y[e_idx]
    # y variables: for multi-line orders only
    y_multi = np.unique(ys_g[~single])
    nx = e_idx.size
    ny = y_multi.size
    y_loc = np.full(prep.y_order.size, -1, dtype=np.int64)
    y_loc[y_multi] = nx + np.arange(ny)
    # package var per entry: x itself (single) or its y
    pkg_var_of_e = np.where(single, np.arange(nx), y_loc[ys_g])
    # package vars list with their columns
    pkg_vars = np.concatenate([np.flatnonzero(single), nx + np.arange(ny)])
    pkg_cols = np.concatenate([prep.e_col[e_idx[single]], prep.y_col[y_multi]])
    u0 = nx + ny
    cost = np.concatenate([prep.e_cost[e_idx] + np.where(single, prep.y_cost[ys_g], 0.0), prep.y_cost[y_multi],
                           np.full(nL, U)])
    # load tiers
    thr = model.load_thresholds(net.daily_capacity)
    used0 = net.daily_capacity - cap_w
    counts = np.bincount(pkg_cols, minlength=len(net))
    v_rows = []  # (col j, slack, weight)
    for t_thr, wt in thr:
        slack = np.maximum(0, t_thr - used0)
        js = np.flatnonzero(counts > slack)
        for j in js:
            v_rows.append((int(j), int(slack[j]), float(wt)))
    nv = len(v_rows)
    ncol = u0 + nL + nv
    cost = np.concatenate([cost, np.array([r[2] for r in v_rows], dtype=float)])

    rows_r, rows_c, rows_v = [], [], []
    lo_r, hi_r = [], []
    # assignment rows 0..nL-1
    rows_r.append(line_loc[lines_g])
    rows_c.append(np.arange(nx))
    rows_v.append(np.ones(nx))
    rows_r.append(np.arange(nL))
    rows_c.append(u0 + np.arange(nL))
    rows_v.append(np.ones(nL))
    lo_r.append(np.ones(nL))
    hi_r.append(np.ones(nL))
    r = nL
    # link rows for multi-line entries
    mx = np.flatnonzero(~single)
    if mx.size:
        rr = r + np.arange(mx.size)
        rows_r += [rr, rr]
        rows_c += [mx, pkg_var_of_e[mx]]
        rows_v += [np.ones(mx.size), -np.ones(mx.size)]
        lo_r.append(np.full(mx.size, -np.inf))
        hi_r.append(np.zeros(mx.size))
        r += mx.size
    # stock rows
    ek = e_key[e_idx]
    q = prep.line_q[lines_g].astype(float)
    dem = np.bincount(ek, weights=q, minlength=key_stock.size)
    scarce_keys = np.flatnonzero(dem > avail_key + _TOL)
    n_stock_rows = scarce_keys.size
    if scarce_keys.size:
        kmap = np.full(key_stock.size, -1, dtype=np.int64)
        kmap[scarce_keys] = r + np.arange(scarce_keys.size)
        sel = kmap[ek] >= 0
        rows_r.append(kmap[ek[sel]])
        rows_c.append(np.flatnonzero(sel))
        rows_v.append(q[sel])
        lo_r.append(np.full(scarce_keys.size, -np.inf))
        hi_r.append(np.maximum(0, avail_key[scarce_keys]).astype(float))
        r += scarce_keys.size
    # capacity rows
    cap_js = np.flatnonzero(counts > cap_w)
    n_cap_rows = cap_js.size
    if cap_js.size:
        cmap = np.full(len(net), -1, dtype=np.int64)
        cmap[cap_js] = r + np.arange(cap_js.size)
        sel = cmap[pkg_cols] >= 0
        rows_r.append(cmap[pkg_cols[sel]])
        rows_c.append(pkg_vars[sel])
        rows_v.append(np.ones(int(sel.sum())))
        lo_r.append(np.full(cap_js.size, -np.inf))
        hi_r.append(np.maximum(0, cap_w[cap_js]).astype(float))
        r += cap_js.size
    # load rows
    for vi, (j, slack, _wt) in enumerate(v_rows):
        sel = np.flatnonzero(pkg_cols == j)
        rows_r.append(np.full(sel.size + 1, r))
        rows_c.append(np.concatenate([pkg_vars[sel], [u0 + nL + vi]]))
        rows_v.append(np.concatenate([np.ones(sel.size), [-1.0]]))
        lo_r.append(np.array([-np.inf]))
        hi_r.append(np.array([float(slack)]))
        r += 1
    nrow = r
    R = np.concatenate(rows_r).astype(np.int64)
    Cidx = np.concatenate(rows_c).astype(np.int64)
    V = np.concatenate(rows_v).astype(float)
    order_ = np.lexsort((R, Cidx))
    R, Cidx, V = R[order_], Cidx[order_], V[order_]
    start = np.zeros(ncol + 1, dtype=np.int32)
    np.cumsum(np.bincount(Cidx, minlength=ncol), out=start[1:])

    # warm start: the current plan of the window
    x0 = np.zeros(ncol)
    pos_in = np.searchsorted(e_idx, own_cur)
    x0[pos_in] = 1.0
    if ny:
        x0[y_loc[np.intersect1d(own_y, y_multi)]] = 1.0
    assigned = np.zeros(nL, dtype=bool)
    assigned[line_loc[prep.e_line[own_cur]]] = True
    x0[u0 + np.arange(nL)] = (~assigned).astype(float)
    pk_now = np.bincount(pkg_cols, weights=x0[pkg_vars], minlength=len(net))
    for vi, (j, slack, _wt) in enumerate(v_rows):
        x0[u0 + nL + vi] = max(0.0, pk_now[j] - slack)
    warm_obj = float(cost @ x0)

    lp = highspy.HighsLp()
    lp.num_col_ = ncol
    lp.num_row_ = nrow
    lp.col_cost_ = cost
    lp.col_lower_ = np.zeros(ncol)
    upper = np.ones(ncol)
    upper[u0 + nL:] = np.inf
    lp.col_upper_ = upper
    lp.row_lower_ = np.concatenate(lo_r) if lo_r else np.zeros(0)
    lp.row_upper_ = np.concatenate(hi_r) if hi_r else np.zeros(0)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = ncol
    lp.a_matrix_.num_row_ = nrow
    lp.a_matrix_.start_ = start
    lp.a_matrix_.index_ = R.astype(np.int32)
    lp.a_matrix_.value_ = V
    lp.integrality_ = [highspy.HighsVarType.kInteger] * (nx + ny) + [highspy.HighsVarType.kContinuous] * (nL + nv)
    t0 = time.perf_counter()
    deadline = t0 + max(0.2, time_limit)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", float(mip_gap))
    h.setOptionValue("mip_abs_gap", 0.01)
    h.setOptionValue("random_seed", 7)
    if threads:
        h.setOptionValue("threads", int(threads))
    h.passModel(lp)
    stats = {"orders": int(w_orders.size), "lines": int(nL), "columns": int(ncol), "rows": int(nrow),
             "stock_rows": int(n_stock_rows), "capacity_rows": int(n_cap_rows), "load_rows": nv,
             "warm_objective": round(warm_obj, 4)}
    n_int = nx + ny
    int_idx = np.arange(n_int, dtype=np.int32)
    kint = [highspy.HighsVarType.kInteger] * n_int
    best_x, best_obj = x0, warm_obj
    lp_obj = -np.inf

    def left() -> float:
        return deadline - time.perf_counter()

    def take(status_ok: bool) -> None:
        nonlocal best_x, best_obj
        info = h.getInfo()
        if not status_ok or info.primal_solution_status != 2:  # kSolutionStatusFeasible
            return
        xs = np.asarray(h.getSolution().col_value)
        xs[:n_int] = np.round(xs[:n_int])
        obj = float(cost @ xs)
        if obj < best_obj - 1e-6:
            best_x, best_obj = xs, obj

    # 1) LP relaxation (within a fraction of a percent of the MIP here), 2) fix what it sets to 1 and solve the
    # small MIP left, 3) if the gap to the LP bound is still above mip_gap, the full MIP from the best start.
    h.changeColsIntegrality(n_int, int_idx, [highspy.HighsVarType.kContinuous] * n_int)
    h.setOptionValue("time_limit", float(max(1.0, left())))  # the LP is the heart of it: give it at least 1 s
    h.run()
    phase = "lp"
    if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
        xlp = np.asarray(h.getSolution().col_value)
        lp_obj = float(h.getInfo().objective_function_value)
        h.changeColsIntegrality(n_int, int_idx, kint)
        ones = np.flatnonzero(xlp[:n_int] >= 1.0 - 1e-6).astype(np.int32)
        if left() > 0.05:
            h.changeColsBounds(ones.size, ones, np.ones(ones.size), np.ones(ones.size))
            h.setOptionValue("time_limit", float(max(0.05, left())))
            h.run()
            take(True)
            phase = "lp+fix"
            h.changeColsBounds(ones.size, ones, np.zeros(ones.size), np.ones(ones.size))
    else:
        h.changeColsIntegrality(n_int, int_idx, kint)
    gap = (best_obj - lp_obj) / max(1.0, abs(best_obj))
    if gap > mip_gap and left() > 0.2:
        sol = highspy.HighsSolution()
        sol.col_value = best_x
        sol.value_valid = True
        h.setSolution(sol)
        h.setOptionValue("time_limit", float(left()))
        h.run()
        take(True)
        phase += "+mip"
        info = h.getInfo()
        if np.isfinite(info.mip_dual_bound):
            lp_obj = max(lp_obj, float(info.mip_dual_bound))
        stats["status"] = h.modelStatusToString(h.getModelStatus())
    else:
        stats["status"] = "within gap of the LP bound" if np.isfinite(lp_obj) else "LP failed"
    stats["phase"] = phase
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    stats["objective"] = round(best_obj, 4)
    stats["bound"] = round(lp_obj, 4) if np.isfinite(lp_obj) else None
    stats["gap"] = round((best_obj - lp_obj) / max(1.0, abs(best_obj)), 6) if np.isfinite(lp_obj) else None
    if not best_obj < warm_obj - 1e-6:
        return None, stats
    xs = best_x
    new = np.full(nL, -1, dtype=np.int64)
    chosen = np.flatnonzero(xs[:nx] > 0.5)
    new[line_loc[lines_g[chosen]]] = e_idx[chosen]
    return new, stats


# ----------------------------------------------------------------------------------------------------------------------
def optimise_batch(orders: Sequence[OrderRequest], current: Mapping[str, Sequence[tuple[str, str, int]]],
                   network: Network, stock: Stock, weights: Weights | None = None, time_limit_s: float = 10.0,
                   mip_gap: float = 5e-3, *, window_size: int = 1500, top_k: int = 6, pool_k: int = 48,
                   passes: int = 2, threads: int | None = None, model: CostModel | None = None,
                   progress: Callable[[str], None] | None = None) -> BatchResult:
    """Re-optimise ``orders`` together. Never returns a plan costlier than ``current``.

    Inputs: ``current`` is the present plan of these orders (order_id -> [(line_key, code, qty)]);
    ``stock`` is ATP PLUS the units currently reserved by these orders (they are freed and re-assigned);
    ``network.capacity_left`` likewise counts these orders' packages as free.
    """
    t_start = time.perf_counter()
    model = model if model is not None else CostModel(network, weights)
    w = model.w
    net = network
    N = len(net)
    orders = [o for o in orders if o.lines]  # an order without lines has nothing to plan
    cur_plan: dict[str, list[tuple[str, str, int]]] = {o.id: list(current.get(o.id, [])) for o in orders}
    cur_idx: list[dict[str, int]] = []
    for o in orders:
        d = {}
        for key, code, _q in cur_plan[o.id]:
            j = net.index.get(code)
            if j is not None:
                d[key] = j
        cur_idx.append(d)
    before = evaluate_plan(orders, cur_plan, net, w, stock=stock, model=model, per_order=False)
    current_ok = before.stock_violations == 0 and before.capacity_violations == 0
    stats: dict = {"orders": len(orders), "windows": [], "current_feasible": current_ok}
    if not orders:
        return BatchResult({}, {}, 0.0, 0.0, [], {}, time.perf_counter() - t_start, False, stats)

    prep = _prepare(orders, cur_idx, model, stock, top_k, pool_k)
    stats["columns"] = int(prep.e_line.size + prep.y_order.size)
    stats["prepare_seconds"] = round(time.perf_counter() - t_start, 3)
    if progress:
        progress(f"batch: {len(orders)} orders, {prep.n_lines} lines, {prep.e_line.size} candidate columns")

    # (sku, location) keys
    e_key_raw = prep.line_sku[prep.e_line] * N + prep.e_col
    uniq, e_key = np.unique(e_key_raw, return_inverse=True)
    e_key = e_key.astype(np.int64)
    key_stock = np.zeros(uniq.size, dtype=np.int64)
    for s_id, sku in enumerate(prep.skus):
        arr = stock.get(sku)
        if arr is None:
            continue
        m0 = np.searchsorted(uniq, s_id * N)
        m1 = np.searchsorted(uniq, (s_id + 1) * N)
        if m1 > m0:
            key_stock[m0:m1] = np.asarray(arr)[uniq[m0:m1] - s_id * N]
    cap_total = np.asarray(net.capacity_left, dtype=np.int64)
    cur_entry = prep.cur_entry.copy()

    def usage_of(ce: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        act = ce[ce >= 0]
        use = np.bincount(e_key[act], weights=prep.line_q[prep.e_line[act]], minlength=uniq.size)
        ys = np.unique(prep.e_y[act])
        pk = np.bincount(prep.y_col[ys], minlength=N)
        return use, pk

    usage, pk_count = usage_of(cur_entry)
    if not current_ok:
        # an infeasible current plan cannot warm-start: start from "everything unfilled" for those orders' windows
        cur_entry[:] = -1
        usage, pk_count = usage_of(cur_entry)
    thr = model.load_thresholds(net.daily_capacity)
    slack_min = np.full(N, np.iinfo(np.int64).max // 4, dtype=np.int64)
    used0 = net.daily_capacity - cap_total
    for t_thr, _wt in thr:
        slack_min = np.minimum(slack_min, np.maximum(0, t_thr - used0))
    comp = _components(prep, key_stock, e_key, cap_total, slack_min)
    stats["components"] = int(np.unique(comp).size)
    deadline = t_start + time_limit_s
    for p in range(max(1, passes)):
        wins = _windows(comp, prep.order_key, window_size, offset=(window_size // 2) * p)
        if p > 0:
            wins = [wn for wn in wins if wn.size > 0 and np.unique(comp[wn]).size == 1 and
                    (comp == comp[wn[0]]).sum() > window_size]
            if not wins:
                break
        total = sum(wn.size for wn in wins) or 1
        for wi, wn in enumerate(wins):
            remaining = deadline - time.perf_counter()
            if remaining <= 0.05:
                break
            share = remaining * wn.size / max(1, sum(x.size for x in wins[wi:]))
            new, st = _solve_window(prep, wn, e_key, key_stock, usage, pk_count, cur_entry, model, cap_total,
                                    share, mip_gap, threads)
            st["pass"] = p
            stats["windows"].append(st)
            if new is not None:
                in_w = np.zeros(prep.n_orders, dtype=bool)
                in_w[wn] = True
                w_lines = np.flatnonzero(in_w[prep.line_order])
                cur_entry[w_lines] = new
                usage, pk_count = usage_of(cur_entry)
            if progress:
                progress(f"batch pass {p + 1} window {wi + 1}/{len(wins)}: {wn.size} orders, {st['status']}, "
                         f"{st['seconds']} s")
        del total
        if time.perf_counter() >= deadline:
            break

    # assemble the new plan
    new_plan: dict[str, list[tuple[str, str, int]]] = {}
    for oi, o in enumerate(orders):
        f0 = prep.order_first_line[oi]
        out = []
        for li, ln in enumerate(o.lines):
            e = cur_entry[f0 + li]
            if e >= 0:
                out.append((ln.key, net.codes[int(prep.e_col[e])], int(ln.qty)))
        new_plan[o.id] = out
    moved = [o.id for o in orders if _norm(new_plan[o.id]) != _norm(cur_plan[o.id])]
    after = evaluate_plan(orders, new_plan, net, w, stock=stock, model=model, per_order=moved)
    new_ok = after.stock_violations == 0 and after.capacity_violations == 0
    improved = new_ok and (after.total_cost < before.total_cost - _TOL or not current_ok)
    final_plan = new_plan if improved else cur_plan
    final_eval = after if improved else before
    changed = moved if improved else []
    if changed:
        before = evaluate_plan(orders, cur_plan, net, w, stock=stock, model=model, per_order=changed)
    reasons = _reasons(orders, cur_plan, final_plan, before, final_eval, changed, net, stock) if improved else {}
    unfilled = {}
    for o in orders:
        have = {k for k, _c, _q in final_plan[o.id]}
        miss = [(ln.key, _batch_unfilled_reason(ln, o, stock, net)) for ln in o.lines if ln.key not in have]
        if miss:
            unfilled[o.id] = miss
    stats["seconds"] = round(time.perf_counter() - t_start, 3)
    return BatchResult(final_plan, unfilled, before.total_cost, final_eval.total_cost, changed, reasons,
                       time.perf_counter() - t_start, improved, stats)


def _norm(lines: Sequence[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    return sorted((str(k), str(c), int(q)) for k, c, q in lines)


def _batch_unfilled_reason(ln, order: OrderRequest, stock: Stock, net: Network) -> str:
    arr = stock.get(ln.sku)
    if arr is None or int(np.asarray(arr).sum()) <= 0:
        return f"no location has {sku_label(ln.sku)} in stock"
    if int(np.asarray(arr).max()) < ln.qty:
        return f"no single location has {ln.qty} units of {sku_label(ln.sku)}"
    return f"the eligible stock of {sku_label(ln.sku)} went to orders that cost more to leave unfilled"


def _money(x: float) -> str:
    return f"${x:,.2f}"


def _reasons(orders, before_plan, after_plan, before, after, changed, net: Network,
             stock: Stock) -> dict[str, BatchReason]:
    by_id = {o.id: o for o in orders}
    sku_of = {o.id: {ln.key: ln.sku for ln in o.lines} for o in orders}

    def holdings(plan, oid):
        out: dict[tuple[str, str], int] = defaultdict(int)
        for key, code, q in plan[oid]:
            out[(sku_of[oid][key], code)] += int(q)
        return out

    hold_b = {oid: holdings(before_plan, oid) for oid in changed}
    hold_a = {oid: holdings(after_plan, oid) for oid in changed}
    gainers: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    losers: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for oid in changed:
        for k in set(hold_b[oid]) | set(hold_a[oid]):
            d = hold_a[oid].get(k, 0) - hold_b[oid].get(k, 0)
            if d > 0:
                gainers[k].append((oid, d))
            elif d < 0:
                losers[k].append((oid, -d))
    used_after: dict[tuple[str, str], int] = defaultdict(int)
    for o in orders:
        for key, code, q in after_plan[o.id]:
            used_after[(sku_of[o.id][key], code)] += int(q)

    def stock_at(k: tuple[str, str]) -> int:
        arr = stock.get(k[0])
        return int(np.asarray(arr)[net.index[k[1]]]) if arr is not None else 0

    def scarce(k: tuple[str, str], units: int) -> bool:
        """Without the freed units the taker could not have been served there."""
        return stock_at(k) - used_after.get(k, 0) < units

    out: dict[str, BatchReason] = {}
    for oid in changed:
        o = by_id[oid]
        eb, ea = before.orders[oid], after.orders[oid]
        freed, gained = [], []
        for k, lst in losers.items():
            for who, units in lst:
                if who == oid:
                    takers = [{"order_id": g, "method": by_id[g].delivery_method, "units": u}
                              for g, u in gainers.get(k, []) if g != oid and scarce(k, u)]
                    freed.append({"sku": k[0], "location": k[1], "units": units, "taken_by": takers,
                                  "stock": stock_at(k)})
        for k, lst in gainers.items():
            for who, units in lst:
                if who == oid:
                    givers = [{"order_id": g, "method": by_id[g].delivery_method, "units": u}
                              for g, u in losers.get(k, []) if g != oid] if scarce(k, units) else []
                    gained.append({"sku": k[0], "location": k[1], "units": units, "from": givers})
        text = _reason_text(o, eb, ea, freed, gained)
        out[oid] = BatchReason(
            oid, o.delivery_method,
            {"cost": round(eb.cost, 2), "terms": {t: round(v, 2) for t, v in eb.terms.items() if v},
             "locations": eb.packages, "assignments": _norm(before_plan[oid]), "promise_kept": eb.promise_kept},
            {"cost": round(ea.cost, 2), "terms": {t: round(v, 2) for t, v in ea.terms.items() if v},
             "locations": ea.packages, "assignments": _norm(after_plan[oid]), "promise_kept": ea.promise_kept},
            freed, gained, text)
    return out


_METHOD_WORDS = {"same_day": "same-day", "next_day": "next-day", "standard": "standard", "pickup": "pickup"}


def _reason_text(o: OrderRequest, eb, ea, freed: list[dict], gained: list[dict]) -> str:
    src = ", ".join(eb.packages) or "nowhere (unfilled)"
    dst = ", ".join(ea.packages) or "nowhere (unfilled)"
    delta = ea.cost - eb.cost
    own = f"this order's cost went from {_money(eb.cost)} to {_money(ea.cost)}"
    parts = []
    beneficiaries = [t for f in freed for t in f["taken_by"]]
    if beneficiaries:
        f = next(f for f in freed if f["taken_by"])
        t = f["taken_by"][0]
        n = int(t["units"])
        what = (f"{f['location']}'s last unit" if n == 1 else f"{f['location']}'s last {n} units") \
            if f["units"] >= f["stock"] else (f"{n} unit" + ("s" if n != 1 else "") + f" at {f['location']}")
        parts.append(f"moved from {src} to {dst} so that {_METHOD_WORDS[t['method']]} order {t['order_id']} could "
                     f"have {what} of {sku_label(f['sku'])}")
    elif gained and any(g["from"] for g in gained):
        g = next(g for g in gained if g["from"])
        giver = g["from"][0]
        kept = " and keeps its promise" if ea.promise_kept and not eb.promise_kept else ""
        parts.append(f"now served from {dst}{kept}, using {g['units']} unit{'s' if g['units'] != 1 else ''} of "
                     f"{sku_label(g['sku'])} at {g['location']} freed by {_METHOD_WORDS[giver['method']]} order "
                     f"{giver['order_id']}")
    elif len(ea.packages) < len(eb.packages) and not ea.unfilled:
        parts.append(f"consolidated from {len(eb.packages)} packages ({src}) to {len(ea.packages)} ({dst})")
    else:
        parts.append(f"moved from {src} to {dst}")
    if delta < -0.005:
        parts.append(f"{own} (saves {_money(-delta)})")
    elif delta > 0.005:
        parts.append(f"{own} (+{_money(delta)}), which the whole batch more than recovers")
    else:
        parts.append(own)
    changed_terms = []
    for t in TERMS:
        d = ea.terms.get(t, 0.0) - eb.terms.get(t, 0.0)
        if abs(d) >= 0.01:
            changed_terms.append(f"{t} {'+' if d > 0 else '-'}{_money(abs(d))}")
    text = "; ".join(parts)
    if changed_terms:
        text += " [" + ", ".join(changed_terms) + "]"
    return text[0].upper() + text[1:]
