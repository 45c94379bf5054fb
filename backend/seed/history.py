"""Past weeks of store activity for the demo retailer, so the HQ and manager screens have something to show.

Written straight into the tables (bulk inserts, one transaction), not replayed through routing: it is history, as a
retailer would import it. Each store gets a profile (how often its stock proves wrong, how fast it picks, how
accurate its counts are), so the league table has leaders and laggards. Orders are shipped or collected, some lines
were rejected at the store and shipped from a warehouse instead, counts carry variances, and store reliability is
built from the same outcomes. The generator is deterministic for a seed.
"""
from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlmodel import Session, select

from backend.clock import now
from backend.ids import new_id
from backend.models import Allocation, Location, Order, OrderLine, Product, Rejection, StockCount, StoreReliability
from backend.services import reliability

METHODS = (("same_day", 15), ("next_day", 25), ("standard", 50), ("pickup", 10))
REASONS = (("not_found", 60), ("damaged", 25), ("wrong_item", 10), ("other", 5))
STOCK_REASONS = {"not_found", "damaged", "wrong_item"}


@dataclass(frozen=True)
class Profile:
    reject_p: float  # chance a line is given back
    pick_median_min: float  # release -> picked
    late_p: float  # chance the handover slips past the promise
    count_error_p: float  # chance a count finds a variance


def _profile(rng: random.Random) -> Profile:
    grade = rng.random()
    if grade < 0.15:  # a store whose stock keeps proving wrong
        return Profile(rng.uniform(0.08, 0.16), rng.uniform(50, 110), rng.uniform(0.10, 0.25), rng.uniform(0.3, 0.5))
    if grade < 0.45:
        return Profile(rng.uniform(0.03, 0.07), rng.uniform(30, 60), rng.uniform(0.04, 0.10), rng.uniform(0.1, 0.3))
    return Profile(rng.uniform(0.005, 0.025), rng.uniform(12, 35), rng.uniform(0.0, 0.04), rng.uniform(0.02, 0.1))


def _pick(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


def _promise(method: str, created: datetime) -> datetime:
    day_end = created.replace(hour=23, minute=59, second=0, microsecond=0)
    return {"same_day": created + timedelta(hours=6), "pickup": created + timedelta(hours=4),
            "next_day": day_end + timedelta(days=1), "standard": day_end + timedelta(days=4)}[method]


def seed_history(session: Session, days: int = 28, seed: int = 7) -> dict[str, int]:
    """Write `days` whole past days of fulfilled orders, rejections and counts for every active store. Commits.
    Returns how many rows of each kind."""
    rng = random.Random(seed)
    stores = list(session.exec(select(Location).where(Location.type == "store", Location.active == True)  # noqa: E712
                               .order_by(Location.code)))
    warehouses = [w.code for w in session.exec(select(Location).where(Location.type == "warehouse"))]
    products = [(p.sku, p.sku_class) for p in session.exec(select(Product).order_by(Product.sku).limit(400))]
    if not stores or not products or days <= 0:
        return {"orders": 0}
    if session.exec(select(Order.id).where(Order.channel == "web", Order.external_id == "H-000001")).first():
        return {"orders": 0}  # seeded before: history is written once
    sku_class = dict(products)
    today = now().replace(hour=0, minute=0, second=0, microsecond=0)
    orders, lines, allocs, rejections, counts = [], [], [], [], []
    outcomes: dict[tuple[str, str], list[tuple[datetime, bool]]] = defaultdict(list)
    n = 0
    for store in stores:
        prof = _profile(rng)
        per_day = max(2, round((store.daily_capacity or 60) / 15))
        for d in range(days, 0, -1):
            day = today - timedelta(days=d)
            for _ in range(rng.randint(per_day // 2, per_day)):
                n += 1
                method = _pick(rng, METHODS)
                created = day + timedelta(hours=rng.uniform(12, 23))  # 7:00-18:00 on the US east coast
                promise = _promise(method, created)
                oid = new_id("ord")
                done_at = created
                for li in range(1 if rng.random() < 0.7 else 2):
                    sku, qty = rng.choice(products)[0], 1 if rng.random() < 0.8 else 2
                    lpk = new_id("lin")
                    released = created + timedelta(minutes=rng.uniform(2, 45 if method in ("same_day", "pickup")
                                                                       else 90))
                    aid = new_id("alc")
                    base = dict(order_id=oid, line_pk=lpk, sku=sku, quantity=qty, cost=round(rng.uniform(6, 14), 2),
                                decided_by="realtime", created_at=created, released_at=None, picked_at=None,
                                packed_at=None, fulfilled_at=None, ended_at=None, end_reason=None, picked=0,
                                rejected=0, held=False, task_id=None, node_seq=None)
                    if rng.random() < prof.reject_p:
                        reason = _pick(rng, REASONS)
                        at = released + timedelta(minutes=rng.uniform(5, 60))
                        allocs.append({**base, "id": aid, "location": store.code, "state": "rejected",
                                       "released_at": released, "rejected": qty, "ended_at": at,
                                       "end_reason": f"rejected at {store.code}: {reason}"})
                        rejections.append(dict(id=new_id("rej"), allocation_id=aid, order_id=oid, line_id=str(li + 1),
                                               location=store.code, sku=sku, quantity=qty, reason=reason,
                                               note="shelf empty, box crushed" if reason == "other" else None,
                                               actor=f"{store.code.lower()}-ana", at=at))
                        if reason in STOCK_REASONS:
                            outcomes[(store.code, sku_class[sku])].append((at, False))
                        loc, released = rng.choice(warehouses or [store.code]), at + timedelta(minutes=5)
                        picked = released + timedelta(hours=rng.uniform(2, 10))
                        aid = new_id("alc")
                        base["decided_by"] = "reroute"
                    else:
                        loc = store.code
                        picked = released + timedelta(minutes=rng.lognormvariate(math.log(prof.pick_median_min), 0.5))
                    packed = None if method == "pickup" else picked + timedelta(minutes=rng.uniform(3, 20))
                    ready = packed or picked
                    if rng.random() < prof.late_p:
                        fulfilled = max(promise + timedelta(minutes=rng.uniform(10, 600)), ready)
                    else:  # a customer collects 10-90 min after the text; a carrier calls 20-180 min after packing
                        fulfilled = ready + timedelta(minutes=rng.uniform(10, 90) if packed is None
                                                      else rng.uniform(20, 180))
                        fulfilled = min(fulfilled, max(promise - timedelta(minutes=5), ready))
                    allocs.append({**base, "id": aid, "location": loc, "state": "fulfilled", "released_at": released,
                                   "picked": qty, "picked_at": picked, "packed_at": packed, "fulfilled_at": fulfilled})
                    if loc == store.code:
                        outcomes[(store.code, sku_class[sku])].append((fulfilled, True))
                    done_at = max(done_at, fulfilled)
                    status = "collected" if method == "pickup" else "shipped"
                    lines.append(dict(id=lpk, order_id=oid, line_id=str(li + 1), sku=sku, quantity=qty, status=status,
                                      backorder_reason=None, excluded_locations=[]))
                ships = method != "pickup"
                orders.append(dict(
                    id=oid, channel="web", external_id=f"H-{n:06d}", status=status, delivery_method=method,
                    pickup_location=None if ships else store.code, priority=0, customer_tier=None,
                    promise_by=promise, ship_to={"lat": store.lat, "lon": store.lon} if ships else None,
                    ship_lat=store.lat if ships else None, ship_lon=store.lon if ships else None,
                    explanation={"summary": "imported history"}, tracking_token=None, override=False,
                    created_at=created, updated_at=done_at, closed_at=done_at))
            for _ in range(rng.randint(0, 3)):
                expected = rng.randint(0, 20)
                variance = rng.choice([-3, -2, -1, 1, 2]) if rng.random() < prof.count_error_p else 0
                at = day + timedelta(hours=rng.uniform(13, 22))
                counts.append(dict(id=new_id("cnt"), location=store.code, sku=rng.choice(products)[0],
                                   expected=expected, counted=max(0, expected + variance),
                                   variance=max(0, expected + variance) - expected, status="applied",
                                   counted_by=f"{store.code.lower()}-ben", decided_by=None, at=at, decided_at=None))
    for table, rows in ((Order, orders), (OrderLine, lines), (Allocation, allocs), (Rejection, rejections),
                        (StockCount, counts)):
        for i in range(0, len(rows), 5000):
            session.execute(insert(table), rows[i:i + 5000])
    moment = now()
    for (code, cls), seen in outcomes.items():
        good = sum(reliability.decay(at, moment) for at, ok in seen if ok)
        bad = sum(reliability.decay(at, moment) for at, ok in seen if not ok)
        row = session.get(StoreReliability, (code, cls)) or StoreReliability(location=code, sku_class=cls)
        row.good, row.bad, row.updated_at = (row.good or 0) + good, (row.bad or 0) + bad, moment
        row.detail = {**(row.detail or {}), "history": len(seen)}
        session.add(row)
    from backend.services import hq_rollup

    hq_rollup.invalidate(session, (today - timedelta(days=days)).date(), today.date())  # days it may have closed
    session.commit()
    return {"orders": len(orders), "lines": len(lines), "allocations": len(allocs), "rejections": len(rejections),
            "counts": len(counts)}
