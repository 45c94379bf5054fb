"""Real-time routing of one order: choose the location(s) for its lines at the lowest total cost.

``route_order`` never mutates stock or capacity: the caller reserves what the :class:`Decision` assigns.

Search (all vectorised over locations): every location's single-location fill (partial fills price the missing
lines as unfilled), then exact two-location covers over a pool of the best candidates, then a line-by-line greedy
that charges a package for each new location (for orders that need three or more locations); the cheapest wins.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from backend.routing.cost import (
    TERMS,
    CostModel,
    Network,
    OrderCosts,
    OrderRequest,
    Stock,
    Weights,
    sku_label,
)

_EPS = 1e-9
_SOFT_REASONS = ("outside same-day radius", "past cut-off", "does not offer same-day", "too far for next-day",
                 "not the pickup store")


@dataclass
class Candidate:
    """A location considered for an order, with what it could do and why it won or lost."""

    location: str
    type: str
    distance_km: float
    lines_covered: list[str]
    lines_missing: list[str]
    cost: float  # serving the covered lines from here as one package (no unfilled penalty)
    terms: dict[str, float]
    reasons: list[str]
    chosen: bool = False
    promise_kept: bool = True

    def to_dict(self) -> dict:
        return {"location": self.location, "type": self.type, "distance_km": round(self.distance_km, 1),
                "lines_covered": self.lines_covered, "lines_missing": self.lines_missing,
                "cost": round(self.cost, 2), "terms": {k: round(v, 2) for k, v in self.terms.items() if v},
                "reasons": self.reasons, "chosen": self.chosen, "promise_kept": self.promise_kept}


@dataclass
class Decision:
    order_id: str
    delivery_method: str
    assignments: list[tuple[str, str, int]]  # (line_key, location_code, qty)
    unfilled: list[tuple[str, str]]  # (line_key, reason)
    total_cost: float
    terms: dict[str, float]
    packages: list[str]
    promise_kept: bool
    candidates: list[Candidate] = field(default_factory=list)
    best_single: tuple[str, float] | None = None  # cheapest location that fills every line alone
    best_split: tuple[list[str], float] | None = None  # cheapest plan using 2+ locations
    strategy: str = "single"
    pickup_location: str | None = None

    @property
    def locations(self) -> list[str]:
        return self.packages

    def to_dict(self) -> dict:
        return {
            "order_id": self.order_id, "delivery_method": self.delivery_method,
            "assignments": [{"line_key": k, "location": c, "quantity": q} for k, c, q in self.assignments],
            "unfilled": [{"line_key": k, "reason": r} for k, r in self.unfilled],
            "total_cost": round(self.total_cost, 2), "terms": {k: round(v, 2) for k, v in self.terms.items()},
            "packages": self.packages, "promise_kept": self.promise_kept, "strategy": self.strategy,
            "pickup_location": self.pickup_location,
            "best_single": None if self.best_single is None else
            {"location": self.best_single[0], "cost": round(self.best_single[1], 2)},
            "best_split": None if self.best_split is None else
            {"locations": self.best_split[0], "cost": round(self.best_split[1], 2)},
            "candidates": [c.to_dict() for c in self.candidates],
        }


# ----------------------------------------------------------------------------------------------------------------------
def _plan_cost(cols_open: Sequence[int], Cc: np.ndarray, Pc: np.ndarray, U: float) -> tuple[float, np.ndarray]:
    """Cost of opening ``cols_open`` (candidate positions) and serving each line from its cheapest open one."""
    if not cols_open:
        return U * Cc.shape[0], np.full(Cc.shape[0], -1)
    sub = Cc[:, cols_open]
    pick = np.argmin(sub, axis=1)
    best = sub[np.arange(sub.shape[0]), pick]
    assign = np.where(best < U, np.asarray(cols_open)[pick], -1)
    used = set(int(a) for a in assign if a >= 0)
    cost = float(np.minimum(best, U).sum() + sum(Pc[j] for j in used))
    return cost, assign


def _greedy_cover(Cc: np.ndarray, Pc: np.ndarray, U: float) -> tuple[float, np.ndarray]:
    """Line by line (most constrained first), charging the package when a location is opened; then drop packages
    whose lines fit elsewhere more cheaply."""
    order = np.argsort(np.isfinite(Cc).sum(axis=1), kind="stable")
    opened: list[int] = []
    extra = Pc.copy()
    for li in order:
        row = Cc[li] + extra
        j = int(np.argmin(row))
        if row[j] < U and j not in opened:
            opened.append(j)
            extra[j] = 0.0
    cost, assign = _plan_cost(opened, Cc, Pc, U)
    improved = True
    while improved and len(opened) > 1:
        improved = False
        for j in list(opened):
            trial = [k for k in opened if k != j]
            c2, a2 = _plan_cost(trial, Cc, Pc, U)
            if c2 < cost - _EPS:
                opened, cost, assign, improved = trial, c2, a2, True
                break
    return cost, assign


def _forced_pair(Cf: np.ndarray, Pp: np.ndarray) -> tuple[int, int, float] | None:
    """Cheapest pair (a, b) with every line served (inf = cannot) and both locations serving at least one line."""
    A = Cf[:, :, None]
    B = Cf[:, None, :]
    both = np.minimum(A, B).sum(axis=0)
    a_le = (A <= B).sum(axis=0)  # lines that go to a
    L = Cf.shape[0]
    # if every line prefers a, move the line that costs least to move to b (and vice versa)
    with np.errstate(invalid="ignore"):
        to_b = np.min(np.where(np.isfinite(B), B - A, np.inf), axis=0)
        to_a = np.min(np.where(np.isfinite(A), A - B, np.inf), axis=0)
    extra = np.where(a_le == L, to_b, np.where(a_le == 0, to_a, 0.0))
    cost = Pp[:, None] + Pp[None, :] + both + extra
    np.fill_diagonal(cost, np.inf)
    k = int(np.argmin(cost))
    a, b = divmod(k, cost.shape[1])
    if not np.isfinite(cost[a, b]):
        return None
    return a, b, float(cost[a, b])


def _fmt_sku_short(have: int, qty: int, sku: str) -> str:
    if have <= 0:
        return f"lacks {sku_label(sku)}"
    return f"has only {have} of {sku_label(sku)} (needs {qty})"


def _location_reasons(oc: OrderCosts, net: Network, j: int, capacity_left: np.ndarray) -> list[str]:
    """Plain reasons why location j (a full-network index) could not serve (all of) the order."""
    order = oc.order
    reasons: list[str] = []
    if (order.delivery_method != "pickup" or j != oc.pickup_col) and not net.ships[j]:
        reasons.append("does not ship")
    if capacity_left[j] < 1:
        reasons.append("at capacity")
    m = order.delivery_method
    if m == "same_day":
        if net.same_day_radius_km[j] <= 0:
            reasons.append("does not offer same-day")
        else:
            if oc.dist[j] > net.same_day_radius_km[j]:
                reasons.append(f"outside same-day radius ({oc.dist[j]:.0f} km > {net.same_day_radius_km[j]:.0f} km)")
            if not net.same_day_open[j]:
                reasons.append("past cut-off")
    elif m == "next_day" and not oc.kept[j]:
        reasons.append(f"too far for next-day ({oc.dist[j]:.0f} km)")
    elif m == "pickup" and j != oc.pickup_col:
        reasons.append(f"not the pickup store (needs a transfer to {order.pickup_location})")
    for li, ln in enumerate(order.lines):
        if oc.excluded is not None and oc.excluded[li, j]:
            reasons.append(f"excluded after rejection (line {ln.key})")
        elif not oc.has_stock[li, j]:
            have = int(oc.stock_units[li, j]) if oc.stock_units is not None else 0
            reasons.append(_fmt_sku_short(have, int(ln.qty), ln.sku))
    return reasons


def _unfilled_reason(oc: OrderCosts, net: Network, li: int, capacity_left: np.ndarray) -> str:
    ln = oc.order.lines[li]
    if oc.stock_units is None:
        return "no eligible location"
    holders = np.flatnonzero(oc.has_stock[li])
    if holders.size == 0:
        total = int(oc.stock_units[li].sum())
        if total <= 0:
            return f"no location has {sku_label(ln.sku)} in stock"
        return f"no single location has {ln.qty} units of {sku_label(ln.sku)}"
    causes = []
    if oc.excluded is not None and oc.excluded[li, holders].all():
        return f"only locations excluded after rejection hold {sku_label(ln.sku)}"
    if (capacity_left[holders] < 1).all():
        return f"every location holding {sku_label(ln.sku)} is at capacity"
    if oc.excluded is not None and oc.excluded[li, holders].any():
        causes.append("excluded after rejection")
    if (capacity_left[holders] < 1).any():
        causes.append("at capacity")
    if (~net.ships[holders]).any():
        causes.append("does not ship")
    if oc.order.delivery_method == "same_day" and not (oc.kept[holders]).any():
        causes.append("no same-day location in range")
    tail = ", ".join(causes) if causes else "not eligible"
    if oc.feasible[li].any():
        return "serving it would cost more than the backorder penalty"
    return f"locations holding {sku_label(ln.sku)} are not eligible ({tail})"


def route_order(order: OrderRequest, network: Network, stock: Stock, weights: Weights | None = None, *,
                model: CostModel | None = None, explain: bool = True, max_candidates: int = 6,
                pair_pool: int = 16) -> Decision:
    """Route one order. Pure: reads ``stock`` and ``network.capacity_left``, changes neither.

    ``model`` may be passed to reuse a :class:`CostModel` built for this network and weights (saves ~20 µs).
    ``explain=False`` skips building the candidate list (used by the benchmark's inner loop).
    """
    model = model if model is not None else CostModel(network, weights)
    w = model.w
    net = network
    U = float(w.unfilled_per_line)
    oc = model.order_costs(order, stock)
    F = oc.feasible
    L = F.shape[0]
    any_col = F.any(axis=0)
    cand = np.flatnonzero(any_col)
    assign_col = np.full(L, -1, dtype=np.int64)
    best_single = None
    best_split = None
    strategy = "none"
    if cand.size and L:
        Fc = F[:, cand]
        Cc = np.where(Fc, oc.line_total[:, cand], np.inf)
        Pc = oc.pkg_total[cand]
        Ccap = np.minimum(Cc, U)
        partial = Pc + Ccap.sum(axis=0)
        i = int(np.argmin(partial))
        best_cost = float(partial[i])
        best_assign = np.where(Fc[:, i] & (Cc[:, i] < U), i, -1)
        strategy = "single"
        full = Fc.all(axis=0)
        if full.any():
            fi = np.flatnonzero(full)
            k = fi[int(np.argmin(partial[fi]))]
            best_single = (net.codes[cand[k]], float(partial[k]))
        if L >= 2 and cand.size >= 2:
            npool = min(cand.size, pair_pool)
            pool = np.argpartition(partial, npool - 1)[:npool] if cand.size > npool else np.arange(cand.size)
            kk = min(3, cand.size - 1)
            per_line = np.argpartition(Cc + Pc[None, :], kk, axis=1)[:, :kk + 1]
            pool = np.unique(np.concatenate([pool, per_line.ravel()]))
            Cp = Ccap[:, pool]
            Pp = Pc[pool]
            pair = Pp[:, None] + Pp[None, :] + np.minimum(Cp[:, :, None], Cp[:, None, :]).sum(axis=0)
            np.fill_diagonal(pair, np.inf)
            ab = int(np.argmin(pair))
            a, b = divmod(ab, pair.shape[1])
            pc, pa = _plan_cost([int(pool[a]), int(pool[b])], Cc, Pc, U)
            if len({int(x) for x in pa if x >= 0}) >= 2:
                best_split = ([net.codes[cand[int(pool[a])]], net.codes[cand[int(pool[b])]]], pc)
            if pc < best_cost - _EPS:
                best_cost, best_assign, strategy = pc, pa, "split"
            if L >= 3:
                gc, ga = _greedy_cover(Cc, Pc, U)
                used = {int(x) for x in ga if x >= 0}
                if len(used) >= 2 and (best_split is None or gc < best_split[1] - _EPS):
                    best_split = ([net.codes[cand[j]] for j in sorted(used)], gc)
                if gc < best_cost - _EPS:
                    best_cost, best_assign, strategy = gc, ga, ("split" if len(used) >= 2 else "single")
            if best_split is None and explain:  # for the explanation: the cheapest plan really using two locations
                fs = _forced_pair(Cc[:, pool], Pp)
                if fs is not None:
                    a2, b2, cost2 = fs
                    best_split = ([net.codes[cand[int(pool[a2])]], net.codes[cand[int(pool[b2])]]], cost2)
        assign_col = np.where(best_assign >= 0, cand[np.maximum(best_assign, 0)], -1)
        assign_col = _repair_duplicate_skus(order, oc, assign_col, stock)

    # totals
    terms = dict.fromkeys(TERMS, 0.0)
    packages = sorted({int(j) for j in assign_col if j >= 0})
    kept = True
    for j in packages:
        for t, v in oc.package_terms(j).items():
            terms[t] += v
        kept &= bool(oc.kept[j])
    assignments = []
    unfilled = []
    for li, ln in enumerate(order.lines):
        j = int(assign_col[li])
        if j >= 0:
            for t, v in oc.line_terms(li, j).items():
                terms[t] += v
            assignments.append((ln.key, net.codes[j], int(ln.qty)))
        else:
            unfilled.append((ln.key, _unfilled_reason(oc, net, li, net.capacity_left)))
            kept = False
    terms["unfilled"] = U * len(unfilled)
    total = float(sum(terms.values()))
    dec = Decision(order.id, order.delivery_method, assignments, unfilled, total, terms,
                   [net.codes[j] for j in packages], kept, [], best_single, best_split,
                   strategy if assignments else "none", order.pickup_location)
    if explain:
        dec.candidates = _candidates(oc, net, packages, assign_col, U, max_candidates)
    return dec


def _repair_duplicate_skus(order: OrderRequest, oc: OrderCosts, assign_col: np.ndarray, stock: Stock) -> np.ndarray:
    """Two lines of one SKU may each fit a location's stock but not together: move the later one elsewhere."""
    skus = [ln.sku for ln in order.lines]
    if len(set(skus)) == len(skus):
        return assign_col
    used: dict[tuple[str, int], int] = {}
    out = assign_col.copy()
    opened = {int(j) for j in out if j >= 0}
    for li, ln in enumerate(order.lines):
        j = int(out[li])
        if j < 0:
            continue
        have = int(stock.get(ln.sku, np.zeros(len(oc.dist), dtype=np.int64))[j])
        if used.get((ln.sku, j), 0) + ln.qty <= have:
            used[(ln.sku, j)] = used.get((ln.sku, j), 0) + ln.qty
            continue
        arr = stock.get(ln.sku)
        rem = arr.astype(np.int64) - np.array([used.get((ln.sku, k), 0) for k in range(len(arr))]) if arr is not None \
            else np.zeros(len(oc.dist), dtype=np.int64)
        ok = oc.feasible[li] & (rem >= ln.qty)
        if not ok.any():
            out[li] = -1
            continue
        cost = np.where(ok, oc.line_total[li] + np.where(np.isin(np.arange(len(ok)), list(opened)), 0.0,
                                                          oc.pkg_total), np.inf)
        k = int(np.argmin(cost))
        out[li] = k
        opened.add(k)
        used[(ln.sku, k)] = used.get((ln.sku, k), 0) + ln.qty
    return out


def _smallest(a: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k smallest values, in increasing order."""
    if k >= a.size:
        return np.argsort(a, kind="stable")
    idx = np.argpartition(a, k - 1)[:k]
    return idx[np.argsort(a[idx], kind="stable")]


def _candidates(oc: OrderCosts, net: Network, packages: list[int], assign_col: np.ndarray, U: float,
                limit: int, partial: np.ndarray | None = None) -> list[Candidate]:
    """The chosen locations, the cheapest alternatives and the nearest locations (with why they lost)."""
    order = oc.order
    F = oc.feasible
    if partial is None:
        partial = oc.pkg_total + np.where(F, oc.line_total, U).sum(axis=0)
        partial = np.where(F.any(axis=0), partial, np.inf)
    picks: list[int] = list(packages)
    for j in _smallest(partial, limit + len(packages)).tolist():
        if partial[j] < np.inf and j not in picks:
            picks.append(j)
        if len(picks) >= len(packages) + limit - 2:
            break
    n_near = 3
    for j in _smallest(oc.dist, n_near + len(picks)).tolist():
        if j not in picks:
            picks.append(j)
            n_near -= 1
        if n_near <= 0:
            break
    rows = np.arange(len(order.lines))
    served = assign_col >= 0
    chosen_total = float(oc.pkg_total[packages].sum() + oc.line_total[rows[served], assign_col[served]].sum())
    P = np.asarray(picks, dtype=np.int64)
    cov = F[:, P]
    qcov = (oc.qty[:, None] * cov).sum(axis=0)
    ncov = cov.sum(axis=0)
    cols = {
        "package": oc.pkg_terms["package"][P], "transfer": oc.pkg_terms["transfer"][P],
        "promise_miss": oc.pkg_terms["promise_miss"][P], "load": oc.pkg_terms["load"][P],
        "units": (oc.units[:, P] * cov).sum(axis=0), "handling": oc.handling[P] * ncov,
        "opportunity": oc.opp_unit[P] * qcov, "reliability": oc.reliability[P] * ncov,
    }
    cols_l = {t: v.tolist() for t, v in cols.items()}
    cov_l = cov.T.tolist()
    dist_l = oc.dist[P].tolist()
    kept_l = oc.kept[P].tolist()
    keys = [ln.key for ln in order.lines]
    n_lines = len(keys)
    chosen = set(packages)
    out = []
    for k, j in enumerate(picks):
        terms = {t: 0.0 for t in TERMS}
        for t, v in cols_l.items():
            terms[t] = v[k]
        cost = sum(terms.values())
        covered = [keys[li] for li in range(n_lines) if cov_l[k][li]]
        missing = [keys[li] for li in range(n_lines) if not cov_l[k][li]]
        is_chosen = j in chosen
        reasons = [] if is_chosen else _location_reasons(oc, net, j, net.capacity_left)
        soft = all(r.startswith(_SOFT_REASONS) for r in reasons)  # priced in, not a bar
        if not is_chosen and not missing and soft:
            diff = cost - chosen_total
            if diff > 0:
                reasons.append(f"costs ${diff:.2f} more than the chosen plan")
        if not is_chosen and not reasons:
            reasons.append("not needed by the cheapest plan")
        out.append(Candidate(net.codes[j], str(net.types[j]), dist_l[k], covered, missing, cost, terms, reasons,
                             is_chosen, kept_l[k]))
    return out
