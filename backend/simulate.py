"""The order stream: posts orders through the HTTP API at a chosen rate with a realistic mix.

About 15% same-day, 25% next-day, 50% standard, 10% store pickup; 1-4 lines (mostly 1-2); popular SKUs more
often (Zipf); customers at real ZIP centroids near the retailer's stores.
"""
from __future__ import annotations

import math
import random
import sys
import time

import httpx
import numpy as np

METHODS = (("same_day", 0.15), ("next_day", 0.25), ("standard", 0.50), ("pickup", 0.10))


def customer_zips(stores: list[dict], radius_km: float = 30.0, per_store: int = 40, seed: int = 7) -> list[str]:
    """ZIP codes whose centroid lies within `radius_km` of a store (up to `per_store` each)."""
    import zipcodes

    rng = random.Random(seed)
    all_zips = [z for z in zipcodes.list_all() if z.get("lat") and z.get("zip_code_type") == "STANDARD"]
    lat = np.radians([float(z["lat"]) for z in all_zips])
    lon = np.radians([float(z["long"]) for z in all_zips])
    out: list[str] = []
    for s in stores:
        slat, slon = math.radians(s["lat"]), math.radians(s["lon"])
        d = 6371.0 * 2 * np.arcsin(np.sqrt(np.sin((lat - slat) / 2) ** 2
                                           + np.cos(slat) * np.cos(lat) * np.sin((lon - slon) / 2) ** 2))
        near = [all_zips[i]["zip_code"] for i in np.flatnonzero(d <= radius_km)]
        rng.shuffle(near)
        out.extend(near[:per_store])
    return out


class OrderMaker:
    def __init__(self, stores: list[dict], skus: list[str], seed: int = 7):
        self.rng = random.Random(seed)
        self.stores = [s for s in stores if s.get("type") == "store"]
        self.pickup_stores = [s["code"] for s in self.stores if s.get("pickup")]
        self.zips = customer_zips(self.stores, seed=seed)
        self.skus = skus
        weights = [1.0 / (i + 1) ** 1.1 for i in range(len(skus))]
        total = sum(weights)
        self.cum = np.cumsum([w / total for w in weights])
        self.n = 0
        self.tag = f"{int(time.time())}-{seed}"

    def sku(self) -> str:
        return self.skus[min(int(np.searchsorted(self.cum, self.rng.random())), len(self.skus) - 1)]

    def order(self) -> dict:
        self.n += 1
        method = self.rng.choices([m for m, _ in METHODS], weights=[w for _, w in METHODS])[0]
        n_lines = min(4, 1 + int(self.rng.expovariate(1.3)))
        skus: list[str] = []
        while len(skus) < n_lines:
            s = self.sku()
            if s not in skus:
                skus.append(s)
        body = {"channel": self.rng.choice(["web", "web", "app", "marketplace"]),
                "external_id": f"SIM-{self.tag}-{self.n}", "delivery_method": method,
                "priority": 1 if self.rng.random() < 0.1 else 0,
                "lines": [{"line_id": str(i + 1), "sku": s, "quantity": 1 if self.rng.random() < 0.85 else 2}
                          for i, s in enumerate(skus)]}
        if method == "pickup":
            body["pickup_location"] = self.rng.choice(self.pickup_stores)
        else:
            body["ship_to"] = {"zip": self.rng.choice(self.zips)}
        return body


def fetch_all(client: httpx.Client, path: str) -> list[dict]:
    items: list[dict] = []
    offset = 0
    while True:
        page = client.get(path, params={"offset": offset, "limit": 5000}).raise_for_status().json()
        items += page["items"]
        offset += len(page["items"])
        if offset >= page["total"] or not page["items"]:
            return items


def run(url: str, rate: float, count: int, seed: int, api_key: str = "demo-integration-key") -> int:
    client = httpx.Client(base_url=url.rstrip("/"), headers={"X-API-Key": api_key}, timeout=30)
    stores = fetch_all(client, "/api/v1/locations")
    skus = [p["sku"] for p in fetch_all(client, "/api/v1/products")]
    if not stores or not skus:
        print("simulate: the retailer has no locations or products yet (run `storeline seed demo`)", file=sys.stderr)
        return 1
    maker = OrderMaker(stores, skus, seed)
    sent = ok = 0
    statuses: dict[str, int] = {}
    start = time.monotonic()
    try:
        while count == 0 or sent < count:
            body = maker.order()
            r = client.post("/api/v1/orders", json=body)
            sent += 1
            ok += r.status_code in (200, 201)
            if r.status_code in (200, 201):
                st = r.json()["status"]
                statuses[st] = statuses.get(st, 0) + 1
            elif r.status_code >= 500:
                print(f"simulate: server error {r.status_code}: {r.text[:200]}", file=sys.stderr)
            if sent % 25 == 0:
                print(f"simulate: {sent} orders sent, {ok} accepted, statuses {statuses}", file=sys.stderr)
            next_at = start + sent / rate
            time.sleep(max(0.0, next_at - time.monotonic()))
    except KeyboardInterrupt:
        pass
    print(f"simulate: done, {sent} orders sent, {ok} accepted, statuses {statuses}", file=sys.stderr)
    return 0
