"""Plain-English explanations of routing decisions and of the batch's changes, plus JSON-able dicts.

``explain_decision(decision)`` -> ``{"summary", "winner", "candidates", "sentences"}``, e.g.
"Store S12 was 3 km away but lacked SKU X; warehouse W2 could ship all lines in one package for $8.40 vs $11.20 split."
"""
from __future__ import annotations

from backend.routing.cost import sku_label
from backend.routing.optimiser import BatchReason
from backend.routing.realtime import Candidate, Decision

TERM_WORDS = {"package": "package", "transfer": "transfer to the pickup store", "units": "units",
              "handling": "handling", "promise_miss": "missed promise", "load": "store load",
              "opportunity": "store stock held for same-day", "reliability": "rejection risk",
              "unfilled": "backorder penalty"}
METHOD_WORDS = {"same_day": "same-day", "next_day": "next-day", "standard": "standard", "pickup": "pickup"}
TYPE_WORDS = {"store": "Store", "warehouse": "Warehouse", "3pl": "3PL", "supplier": "Supplier"}


def money(x: float) -> str:
    return f"${x:,.2f}"


def _km(d: float) -> str:
    return f"{d:.0f} km" if d >= 10 else f"{d:.1f} km"


def _name(c: Candidate) -> str:
    return f"{TYPE_WORDS.get(c.type, c.type.title())} {c.location}"


def _terms_phrase(terms: dict[str, float], limit: int = 4) -> str:
    items = sorted(((v, k) for k, v in terms.items() if abs(v) >= 0.005), reverse=True)[:limit]
    return ", ".join(f"{TERM_WORDS.get(k, k)} {money(v)}" for v, k in items)


def _verb(reason: str) -> str:
    """Reason labels ("at capacity") as verb phrases ("is at capacity")."""
    if reason.startswith(("outside", "past", "at ", "not ", "too ")):
        return "is " + reason
    if reason.startswith("excluded"):
        return "was " + reason
    return reason


def _loser_sentence(c: Candidate, pickup_store: str | None = None) -> str:
    reasons = [_verb(r) for r in c.reasons]
    if pickup_store and c.location == pickup_store:
        lacks = [r for r in reasons if r.startswith(("lacks ", "has only"))]
        if lacks:
            return f"Pickup store {c.location} {' and '.join(lacks[:2])}, so the goods must come from elsewhere."
        return f"Pickup store {c.location} {'; '.join(reasons[:3])}."
    if not reasons:
        return f"{_name(c)} ({_km(c.distance_km)} away) was not needed."
    lacks = [r for r in reasons if r.startswith(("lacks ", "has only"))]
    other = [r for r in reasons if r not in lacks]
    bits = []
    if lacks:
        bits.append(" and ".join(lacks[:2]) + (f" (and {len(lacks) - 2} more)" if len(lacks) > 2 else ""))
    bits.extend(other[:3])
    joined = "; ".join(bits)
    if joined.startswith("lacks") or joined.startswith("has only"):
        return f"{_name(c)} was {_km(c.distance_km)} away but {joined}."
    if joined.startswith("costs"):
        return f"{_name(c)} ({_km(c.distance_km)} away) could serve every line but {joined}."
    if other and other[-1].startswith("costs") and not lacks:
        return f"{_name(c)} ({_km(c.distance_km)} away) could serve every line but {'; '.join(other[:-1])}, so it " \
               f"{other[-1]}."
    return f"{_name(c)} ({_km(c.distance_km)} away) {joined}."


def explain_decision(decision: Decision, pickup_location: str | None = None) -> dict:
    """A JSON-able explanation of a real-time decision (``pickup_location``: the pickup store, if known; else it is
    taken from the decision)."""
    pickup_location = pickup_location or decision.pickup_location
    d = decision
    method = METHOD_WORDS.get(d.delivery_method, d.delivery_method)
    sentences: list[str] = []
    n_pk = len(d.packages)
    pickup_store = pickup_location if d.delivery_method == "pickup" else None
    cost_served = money(d.total_cost - d.terms.get("unfilled", 0.0))
    which = "all lines" if not d.unfilled else "the lines in stock"
    if not d.assignments:
        summary = f"No location could fill this {method} order; every line waits as a backorder."
    elif n_pk == 1 and pickup_store and d.packages[0] != pickup_store:
        where = next((c for c in d.candidates if c.location == d.packages[0]), None)
        label = _name(where) if where else d.packages[0]
        summary = (f"{label} sends {which} of this pickup order to pickup store {pickup_store} (a transfer) for "
                   f"{cost_served}.")
    elif n_pk == 1 and pickup_store:
        summary = f"Pickup store {pickup_store} holds {which} of this pickup order: ready to collect, {cost_served}."
    elif n_pk == 1:
        where = next((c for c in d.candidates if c.location == d.packages[0]), None)
        label = _name(where) if where else d.packages[0]
        summary = f"{label} serves {which} of this {method} order in one package for {cost_served}."
    else:
        summary = (f"This {method} order is split across {', '.join(d.packages)} ({n_pk} packages) for "
                   f"{money(d.total_cost - d.terms.get('unfilled', 0.0))}.")
    sentences.append(summary)
    if d.terms:
        sentences.append(f"Cost by term: {_terms_phrase(d.terms, limit=6)}.")
    if not d.promise_kept and d.assignments:
        sentences.append(f"The {method} promise cannot be met by the chosen plan; its penalty is included.")
    # single vs split
    if d.best_single and d.best_split:
        s_loc, s_cost = d.best_single
        sp_locs, sp_cost = d.best_split
        if n_pk == 1 and d.packages[0] == s_loc:
            sentences.append(f"{s_loc} could ship all lines in one package for {money(s_cost)} vs {money(sp_cost)} "
                             f"split across {' and '.join(sp_locs)}.")
        elif n_pk >= 2:
            sentences.append(f"Splitting across {' and '.join(d.packages)} ({money(d.total_cost)}) beat the best "
                             f"single location, {s_loc} ({money(s_cost)}).")
    elif d.best_split and n_pk >= 2:
        sentences.append("No single location held every line, so the order is split.")
    for c in d.candidates:
        if not c.chosen:
            sentences.append(_loser_sentence(c, pickup_store))
    for key, reason in d.unfilled:
        sentences.append(f"Line {key} is backordered: {reason}.")
    winner = {"locations": d.packages, "total_cost": round(d.total_cost, 2),
              "terms": {k: round(v, 2) for k, v in d.terms.items() if abs(v) >= 0.005},
              "assignments": [{"line_key": k, "location": c, "quantity": q} for k, c, q in d.assignments],
              "promise_kept": d.promise_kept, "strategy": d.strategy}
    return {"summary": summary, "winner": winner, "candidates": [c.to_dict() for c in d.candidates],
            "sentences": sentences}


def explain_batch_change(reason: BatchReason) -> dict:
    """A JSON-able explanation of why the batch moved one order."""
    r = reason
    sentences = [r.text]
    if r.before.get("terms") or r.after.get("terms"):
        sentences.append(f"Before: {money(r.before['cost'])} ({_terms_phrase(r.before.get('terms', {}))}). "
                         f"After: {money(r.after['cost'])} ({_terms_phrase(r.after.get('terms', {}))}).")
    for f in r.freed:
        for t in f["taken_by"]:
            sentences.append(f"It gave up {f['units']} unit(s) of {sku_label(f['sku'])} at {f['location']}, now used "
                             f"by {METHOD_WORDS.get(t['method'], t['method'])} order {t['order_id']}.")
    for g in r.gained:
        for giver in g["from"]:
            sentences.append(f"It took {g['units']} unit(s) of {sku_label(g['sku'])} at {g['location']} released by "
                             f"{METHOD_WORDS.get(giver['method'], giver['method'])} order {giver['order_id']}.")
    return {"summary": r.text, "winner": {"locations": r.after.get("locations", []), "total_cost": r.after["cost"],
                                          "terms": r.after.get("terms", {})},
            "before": r.before, "freed": r.freed, "gained": r.gained,
            "candidates": [], "sentences": sentences}
