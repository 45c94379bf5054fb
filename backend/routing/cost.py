"""Storeline's routing cost model: the published weights, the data routing needs, and the cost of a plan.

Everything the real-time router, the batch optimiser, the benchmark and the what-if replay compare is priced here, by
one function, as a breakdown by named term (all amounts in USD):

=============  =========================================================================================
term           what it prices
=============  =========================================================================================
package        one package (parcel or pick task) opened at a location: carrier base + per km + zone band
transfer       a pickup order served from another location: fee for moving the goods to the pickup store
units          per unit shipped: flat pick/pack material + per unit per km (a weight proxy)
handling       per line, by location type (a store pick costs more labour than a warehouse pick)
promise_miss   per package that cannot meet the order's promise, by delivery method, x (1 + priority)
load           per package beyond load tiers of a location's daily capacity (convex, piecewise linear)
opportunity    per store unit used by a non-urgent order (shadow price of stock a same-day order may need)
reliability    per line, (1 - reliability of the location) x cost of re-routing a rejected line
unfilled       per line nobody fills (backorder)
=============  =========================================================================================

Capacity (packages a location can still take today) is a HARD limit, never priced. Stock is a hard limit too.

A plan is ``dict[order_id, list[(line_key, location_code, qty)]]``; a line absent from its order's list is unfilled.
Lines are served whole from one location (no partial-quantity splits of one line).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

import numpy as np

from backend.routing.geo import EARTH_RADIUS_KM

LOCATION_TYPES: tuple[str, ...] = ("store", "warehouse", "3pl", "supplier")
METHODS: tuple[str, ...] = ("same_day", "next_day", "standard", "pickup")
SHIPPED_METHODS: frozenset[str] = frozenset({"same_day", "next_day", "standard"})
PACKAGE_TERMS: tuple[str, ...] = ("package", "transfer", "promise_miss", "load")
LINE_TERMS: tuple[str, ...] = ("units", "handling", "opportunity", "reliability")
TERMS: tuple[str, ...] = ("package", "transfer", "units", "handling", "promise_miss", "load", "opportunity",
                          "reliability", "unfilled")
SHIPPING_TERMS: tuple[str, ...] = ("package", "transfer", "units", "handling")
SHADOW_TERMS: tuple[str, ...] = ("opportunity",)
SCHEMA_VERSION = 1

Plan = dict[str, list[tuple[str, str, int]]]


# ----------------------------------------------------------------------------------------------------------------------
# Weights
# ----------------------------------------------------------------------------------------------------------------------
def _default_handling() -> dict[str, float]:
    return {"store": 2.50, "warehouse": 0.75, "3pl": 1.25, "supplier": 2.00}


def _default_miss() -> dict[str, float]:
    return {"same_day": 40.0, "next_day": 15.0, "standard": 5.0, "pickup": 10.0}


@dataclass(frozen=True)
class Weights:
    """Routing weights. Published defaults (USD), version ``schema`` 1:

    * ``package_base`` 6.00 per package + ``package_per_km`` 0.004 per km + a zone surcharge: 0 up to 150 km,
      1.00 up to 600 km, 2.00 up to 1,500 km, 3.50 beyond (``zone_band_km`` / ``zone_surcharge``).
    * ``pickup_package`` 0.50: bagging an order collected at the store that holds it (no carrier).
    * ``transfer_fee`` 3.00 per package moved to a pickup store from elsewhere (its carriage is priced as a package
      from the source to the pickup store), and the pickup promise counts as missed (collection is later).
    * ``unit_cost`` 0.50 per unit + ``unit_per_km`` 0.0005 per unit per km.
    * ``handling`` per line: store 2.50, warehouse 0.75, 3pl 1.25, supplier 2.00.
    * ``promise_miss`` per package that cannot meet the promise, multiplied by (1 + order priority): same_day 40,
      next_day 15, standard 5, pickup 10. Same-day is met only by a location with a same-day radius covering the
      ship-to and still before its cut-off; next-day within ``next_day_max_km`` 800 km; standard within
      ``standard_max_km`` 4,000 km; pickup only at the pickup store itself.
    * ``same_day_fallback`` true: a same-day order no same-day location can serve ships by the next best means and
      pays the miss penalty; false: such locations are ineligible and the line is left unfilled.
    * ``unfilled_per_line`` 200 per line left as a backorder.
    * ``load_tiers`` ((0.80, 1.00), (0.95, 3.00)): each package beyond 80% of a location's daily capacity costs 1.00,
      beyond 95% another 3.00. Capacity itself is a hard limit.
    * ``opportunity_per_unit`` 3.00 per store unit taken by an order whose method is in ``opportunity_methods``
      (standard): the shadow price of store stock a later same-day order may need.
    * ``reroute_cost`` 25.00: a line sent to a location of reliability r costs (1 - r) x 25 expected re-routing.
    """

    package_base: float = 6.00
    package_per_km: float = 0.004
    zone_band_km: tuple[float, ...] = (150.0, 600.0, 1500.0)
    zone_surcharge: tuple[float, ...] = (0.0, 1.0, 2.0, 3.5)
    pickup_package: float = 0.50
    transfer_fee: float = 3.00
    allow_pickup_transfer: bool = True
    unit_cost: float = 0.50
    unit_per_km: float = 0.0005
    handling: Mapping[str, float] = field(default_factory=_default_handling)
    promise_miss: Mapping[str, float] = field(default_factory=_default_miss)
    same_day_fallback: bool = True
    next_day_max_km: float = 800.0
    standard_max_km: float = 4000.0
    unfilled_per_line: float = 200.0
    load_tiers: tuple[tuple[float, float], ...] = ((0.80, 1.00), (0.95, 3.00))
    opportunity_per_unit: float = 3.00
    opportunity_methods: tuple[str, ...] = ("standard",)
    reroute_cost: float = 25.00

    def __post_init__(self) -> None:
        object.__setattr__(self, "handling", {**_default_handling(), **dict(self.handling)})
        object.__setattr__(self, "promise_miss", {**_default_miss(), **dict(self.promise_miss)})
        object.__setattr__(self, "zone_band_km", tuple(float(x) for x in self.zone_band_km))
        object.__setattr__(self, "zone_surcharge", tuple(float(x) for x in self.zone_surcharge))
        object.__setattr__(self, "load_tiers", tuple((float(a), float(b)) for a, b in self.load_tiers))
        object.__setattr__(self, "opportunity_methods", tuple(str(m) for m in self.opportunity_methods))
        problems = []
        if len(self.zone_surcharge) != len(self.zone_band_km) + 1:
            problems.append("zone_surcharge needs one more entry than zone_band_km")
        if list(self.zone_band_km) != sorted(self.zone_band_km):
            problems.append("zone_band_km must be increasing")
        for k in self.handling:
            if k not in LOCATION_TYPES:
                problems.append(f"handling: unknown location type {k!r}")
        for k in self.promise_miss:
            if k not in METHODS:
                problems.append(f"promise_miss: unknown delivery method {k!r}")
        for m in self.opportunity_methods:
            if m not in METHODS:
                problems.append(f"opportunity_methods: unknown delivery method {m!r}")
        for frac, _ in self.load_tiers:
            if not 0.0 <= frac <= 1.0:
                problems.append("load_tiers fractions must be within 0..1")
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and (v < 0 or math.isnan(v)):
                problems.append(f"{f.name} must be a number >= 0")
        for name, table in (("handling", self.handling), ("promise_miss", self.promise_miss)):
            for k, v in table.items():
                if not isinstance(v, int | float) or v < 0:
                    problems.append(f"{name}.{k} must be a number >= 0")
        if problems:
            raise ValueError("; ".join(problems))

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def to_dict(self) -> dict:
        """JSON-able dict (tuples become lists), with ``schema`` for versioned storage."""
        out: dict = {"schema": SCHEMA_VERSION}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Mapping):
                v = dict(v)
            elif isinstance(v, tuple):
                v = [list(x) if isinstance(x, tuple) else x for x in v]
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data: Mapping | None) -> Weights:
        """Build from a (possibly partial) dict; absent keys keep the published defaults; unknown keys raise."""
        data = dict(data or {})
        schema = data.pop("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION:
            raise ValueError(f"unsupported weights schema {schema!r}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown routing weight(s): {', '.join(unknown)}")
        if "load_tiers" in data:
            data["load_tiers"] = tuple(tuple(x) for x in data["load_tiers"])
        for k in ("zone_band_km", "zone_surcharge", "opportunity_methods"):
            if k in data:
                data[k] = tuple(data[k])
        return cls(**data)

    def replace(self, **changes) -> Weights:
        d = self.to_dict()
        d.update(changes)
        return Weights.from_dict(d)


# ----------------------------------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------------------------------
def same_day_open_now(cutoff_min: np.ndarray, utc_offset_min: np.ndarray, now_utc: datetime) -> np.ndarray:
    """True where local time (UTC + offset) is still before the same-day cut-off (minutes since local midnight)."""
    if now_utc.tzinfo is None:
        now_utc = now_utc.replace(tzinfo=UTC)
    now_utc = now_utc.astimezone(UTC)
    minute = now_utc.hour * 60 + now_utc.minute + now_utc.second / 60.0
    local = np.mod(minute + np.asarray(utc_offset_min, dtype=float), 1440.0)
    return local < np.asarray(cutoff_min, dtype=float)


@dataclass
class Network:
    """The locations routing may use, as parallel numpy arrays (index i is location ``codes[i]``).

    ``capacity_left``: packages (orders) the location can still take today. ``daily_capacity``: the full day's
    capacity, used by the load penalty (defaults to ``capacity_left``). ``same_day_open``: same-day still possible
    there now (before its cut-off); build it with :func:`same_day_open_now` or :meth:`from_records`.
    ``reliability``: 0..1, the share of its lines a location has confirmed (1 = always).
    """

    codes: list[str]
    types: Sequence[str] | np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    ships: np.ndarray
    pickup: np.ndarray
    same_day_radius_km: np.ndarray
    same_day_open: np.ndarray
    capacity_left: np.ndarray
    daily_capacity: np.ndarray | None = None
    reliability: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.codes = [str(c) for c in self.codes]
        n = len(self.codes)
        tarr = np.asarray(self.types)
        if tarr.dtype.kind in "iu":
            self.type_idx = tarr.astype(np.int8)
            self.types = np.array([LOCATION_TYPES[i] for i in self.type_idx], dtype=object)
        else:
            lookup = {t: i for i, t in enumerate(LOCATION_TYPES)}
            try:
                self.type_idx = np.array([lookup[str(t)] for t in tarr], dtype=np.int8)
            except KeyError as e:
                raise ValueError(f"unknown location type {e.args[0]!r}") from None
            self.types = np.array([str(t) for t in tarr], dtype=object)
        self.lat = np.asarray(self.lat, dtype=float)
        self.lon = np.asarray(self.lon, dtype=float)
        self.ships = np.asarray(self.ships, dtype=bool)
        self.pickup = np.asarray(self.pickup, dtype=bool)
        self.same_day_radius_km = np.asarray(self.same_day_radius_km, dtype=float)
        self.same_day_open = np.broadcast_to(np.asarray(self.same_day_open, dtype=bool), (n,)).copy()
        self.capacity_left = np.asarray(self.capacity_left, dtype=np.int64).copy()
        if self.daily_capacity is None:
            self.daily_capacity = self.capacity_left.copy()
        self.daily_capacity = np.maximum(np.asarray(self.daily_capacity, dtype=np.int64), self.capacity_left)
        if self.reliability is None:
            self.reliability = np.ones(n)
        self.reliability = np.clip(np.asarray(self.reliability, dtype=float), 0.0, 1.0)
        for name in ("lat", "lon", "ships", "pickup", "same_day_radius_km", "capacity_left", "daily_capacity",
                     "reliability"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"Network.{name} must have one entry per location ({n})")
        self.index: dict[str, int] = {c: i for i, c in enumerate(self.codes)}
        if len(self.index) != n:
            raise ValueError("location codes must be unique")
        self.lat_rad = np.radians(self.lat)
        self.lon_rad = np.radians(self.lon)
        self.cos_lat = np.cos(self.lat_rad)

    def __len__(self) -> int:
        return len(self.codes)

    def with_capacity(self, capacity_left: np.ndarray) -> Network:
        """A copy with another ``capacity_left`` (daily capacity kept)."""
        return Network(self.codes, self.type_idx, self.lat, self.lon, self.ships, self.pickup, self.same_day_radius_km,
                       self.same_day_open, capacity_left, self.daily_capacity, self.reliability)

    @classmethod
    def from_records(cls, records: Iterable[Mapping], now_utc: datetime | None = None) -> Network:
        """Build from location dicts shaped like the API's (``code, type, lat, lon, timezone, ships, pickup,
        same_day_radius_km, same_day_cutoff "HH:MM", daily_capacity``) plus optional ``capacity_left`` (default:
        daily_capacity), ``reliability`` (default 1) and ``same_day_open`` (default: from cut-off, timezone, now)."""
        from zoneinfo import ZoneInfo

        recs = list(records)
        now = (now_utc or datetime.now(UTC)).astimezone(UTC)
        opened = []
        for r in recs:
            if r.get("same_day_open") is not None:
                opened.append(bool(r["same_day_open"]))
                continue
            cutoff = r.get("same_day_cutoff")
            if not cutoff:
                opened.append(True)
                continue
            hh, mm = str(cutoff).split(":")[:2]
            tz = ZoneInfo(r.get("timezone") or "UTC")
            local = now.astimezone(tz)
            opened.append(local.hour * 60 + local.minute < int(hh) * 60 + int(mm))
        big = 10**9
        daily = [int(r["daily_capacity"]) if r.get("daily_capacity") is not None else big for r in recs]
        return cls(
            codes=[r["code"] for r in recs],
            types=[r.get("type", "store") for r in recs],
            lat=[float(r["lat"]) for r in recs],
            lon=[float(r["lon"]) for r in recs],
            ships=[bool(r.get("ships", True)) for r in recs],
            pickup=[bool(r.get("pickup", False)) for r in recs],
            same_day_radius_km=[float(r.get("same_day_radius_km") or 0.0) for r in recs],
            same_day_open=opened,
            capacity_left=[int(r["capacity_left"]) if r.get("capacity_left") is not None else d
                           for r, d in zip(recs, daily, strict=True)],
            daily_capacity=daily,
            reliability=[float(r.get("reliability", 1.0)) for r in recs],
        )


def sku_label(sku: str) -> str:
    """How explanations name a SKU: "SKU A" for "A", but "SKU-00042" as it is."""
    return sku if sku[:3].upper() == "SKU" else f"SKU {sku}"


Stock = Mapping[str, np.ndarray]
"""ATP per SKU: ``stock[sku][i]`` = units location ``i`` can promise. A SKU absent from the mapping has none."""


def stock_from_rows(rows: Iterable[tuple[str, str, int]], network: Network) -> dict[str, np.ndarray]:
    """Build the stock mapping from ``(sku, location_code, atp)`` rows (unknown locations are ignored)."""
    out: dict[str, np.ndarray] = {}
    n = len(network)
    for sku, code, atp in rows:
        i = network.index.get(code)
        if i is None:
            continue
        arr = out.get(sku)
        if arr is None:
            arr = out[sku] = np.zeros(n, dtype=np.int64)
        arr[i] += max(0, int(atp))
    return out


@dataclass
class OrderLine:
    key: str
    sku: str
    qty: int


@dataclass
class OrderRequest:
    """One order to route. ``lat``/``lon`` is the ship-to (ignored for pickup, which uses the pickup store).
    ``excluded``: line_key -> location codes that line must never go to (e.g. the store that rejected it)."""

    id: str
    delivery_method: str
    lines: list[OrderLine]
    priority: float = 0.0
    lat: float | None = None
    lon: float | None = None
    pickup_location: str | None = None
    excluded: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.id = str(self.id)
        if self.delivery_method not in METHODS:
            raise ValueError(f"unknown delivery method {self.delivery_method!r}")
        self.lines = [ln if isinstance(ln, OrderLine) else OrderLine(str(ln[0]), str(ln[1]), int(ln[2]))
                      for ln in self.lines]
        keys = [ln.key for ln in self.lines]
        if len(set(keys)) != len(keys):
            raise ValueError(f"order {self.id}: duplicate line keys")
        for ln in self.lines:
            if ln.qty <= 0:
                raise ValueError(f"order {self.id} line {ln.key}: quantity must be positive")
        if self.delivery_method == "pickup":
            if not self.pickup_location:
                raise ValueError(f"order {self.id}: pickup needs a pickup_location")
        elif self.lat is None or self.lon is None:
            raise ValueError(f"order {self.id}: a shipped order needs ship-to lat/lon")
        self.excluded = {str(k): {str(c) for c in v} for k, v in (self.excluded or {}).items()}


# ----------------------------------------------------------------------------------------------------------------------
# Pricing: one vectorised core shared by the real-time router, the batch optimiser and plan evaluation
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class OrderCosts:
    """Costs of one order at every location (columns = location indices).

    ``pkg_terms[t]`` (N,) per package opened at a location; ``pkg_total`` their sum (``load`` included).
    ``units`` (L, N); ``handling``/``reliability`` (N,) per line; ``opp_unit`` (N,) opportunity per unit.
    ``line_total`` (L, N). ``feasible`` (L, N): eligible, not excluded, stock >= qty (stock unchecked without stock).
    """

    order: OrderRequest
    dist: np.ndarray
    pkg_terms: dict[str, np.ndarray]
    pkg_total: np.ndarray
    units: np.ndarray
    handling: np.ndarray
    reliability: np.ndarray
    opp_unit: np.ndarray
    qty: np.ndarray
    line_total: np.ndarray
    feasible: np.ndarray
    eligible: np.ndarray
    has_stock: np.ndarray
    stock_units: np.ndarray | None
    kept: np.ndarray
    excluded: np.ndarray | None
    pickup_col: int  # index of the pickup store, -1 if none

    def line_terms(self, li: int, c: int) -> dict[str, float]:
        q = float(self.qty[li])
        return {"units": float(self.units[li, c]), "handling": float(self.handling[c]),
                "opportunity": q * float(self.opp_unit[c]), "reliability": float(self.reliability[c])}

    def package_terms(self, c: int, with_load: bool = True) -> dict[str, float]:
        out = {t: float(v[c]) for t, v in self.pkg_terms.items()}
        if not with_load:
            out["load"] = 0.0
        return out

    def serve_terms(self, c: int, line_idx: Iterable[int], with_load: bool = True) -> dict[str, float]:
        """Breakdown of serving the given lines from location c as one package."""
        out = dict.fromkeys(TERMS, 0.0)
        for t, v in self.package_terms(c, with_load).items():
            out[t] += v
        for li in line_idx:
            for t, v in self.line_terms(li, c).items():
                out[t] += v
        return out


@dataclass
class ManyCosts:
    """Costs of many orders at every location: order rows (O, N), line rows (Lb, N)."""

    orders: list[OrderRequest]
    line_order: np.ndarray  # (Lb,) order row of each line
    qty: np.ndarray  # (Lb,)
    dist: np.ndarray  # (O, N)
    package: np.ndarray
    transfer: np.ndarray
    promise_miss: np.ndarray
    load: np.ndarray  # (N,) marginal load cost of one more package
    kept: np.ndarray  # (O, N)
    eligible: np.ndarray  # (O, N)
    pkg_nl: np.ndarray  # (O, N) package + transfer + promise_miss (no load)
    line_total: np.ndarray  # (Lb, N)
    feasible: np.ndarray  # (Lb, N)
    pickup_idx: np.ndarray  # (O,)


_METHOD_CODE = {m: i for i, m in enumerate(METHODS)}


class CostModel:
    """Prices orders over a :class:`Network` with :class:`Weights`. Cheap to build; reuse it while the network's
    static fields stay the same (``capacity_left`` and ``same_day_open`` are read at each call)."""

    def __init__(self, network: Network, weights: Weights | None = None):
        self.net = network
        self.w = weights or Weights()
        w = self.w
        self.handling_loc = np.array([float(w.handling[t]) for t in LOCATION_TYPES])[network.type_idx]
        self.reliability_loc = (1.0 - network.reliability) * w.reroute_cost
        self.per_line_loc = self.handling_loc + self.reliability_loc
        self.is_store = network.type_idx == 0
        self.opp_loc = np.where(self.is_store, w.opportunity_per_unit, 0.0)
        self.zone_km = np.asarray(w.zone_band_km, dtype=float)
        self.zone_sur = np.asarray(w.zone_surcharge, dtype=float)
        self._zeros_n = np.zeros(len(network), dtype=np.int64)
        self._miss_by_method = np.array([float(w.promise_miss[m]) for m in METHODS])
        self._opp_method = np.array([m in w.opportunity_methods for m in METHODS])
        self._unit_km = float(w.unit_per_km)
        self._unit = float(w.unit_cost)

    # -- pieces -------------------------------------------------------------------------------------------------------
    def package_ship_cost(self, dist: np.ndarray) -> np.ndarray:
        w = self.w
        out = w.package_base + w.package_per_km * dist
        if self.zone_sur.any():
            out += self.zone_sur[np.searchsorted(self.zone_km, dist, side="left")]
        return out

    def load_thresholds(self, daily: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Per tier: (package count per location above which each package pays the tier weight, weight)."""
        return [(np.floor(frac * daily.astype(float)).astype(np.int64), wt) for frac, wt in self.w.load_tiers if wt > 0]

    def load_marginal(self, capacity_left: np.ndarray) -> np.ndarray:
        """Load cost of one more package at each location given what it can still take."""
        daily = self.net.daily_capacity
        used_after = daily - capacity_left + 1
        out = np.zeros(used_after.shape)
        for thr, wt in self.load_thresholds(daily):
            out += wt * (used_after > thr)
        return out

    def load_cost(self, packages: np.ndarray, capacity_left: np.ndarray | None = None) -> np.ndarray:
        """Load cost per location of adding ``packages`` to what it already carries (daily - capacity_left)."""
        left = self.net.capacity_left if capacity_left is None else capacity_left
        daily = self.net.daily_capacity
        used = daily - left + packages
        out = np.zeros(len(daily))
        for thr, wt in self.load_thresholds(daily):
            out += wt * np.maximum(0, np.minimum(used - thr, packages))
        return out

    # -- the core -----------------------------------------------------------------------------------------------------
    def _order_attrs(self, orders: Sequence[OrderRequest]) -> dict[str, np.ndarray]:
        net = self.net
        n = len(orders)
        lat = np.empty(n)
        lon = np.empty(n)
        method = np.empty(n, dtype=np.int64)
        prio = np.empty(n)
        pick = np.full(n, -1, dtype=np.int64)
        for i, o in enumerate(orders):
            method[i] = _METHOD_CODE[o.delivery_method]
            prio[i] = o.priority
            if o.delivery_method == "pickup":
                j = net.index.get(o.pickup_location or "", -1)
                pick[i] = j
                if j >= 0:
                    lat[i], lon[i] = net.lat[j], net.lon[j]
                else:
                    lat[i], lon[i] = (o.lat or 0.0), (o.lon or 0.0)
            else:
                lat[i], lon[i] = o.lat, o.lon
        return {"lat": lat, "lon": lon, "method": method, "prio": prio, "pickup": pick}

    def _price(self, oa: dict[str, np.ndarray], rows, cols, cap: np.ndarray) -> dict[str, np.ndarray]:
        """Elementwise package-level pricing. ``rows`` indexes order attributes, ``cols`` locations; both broadcast:
        full mode rows (O, 1) with cols None (every location), pair mode rows (P,) with cols (P,)."""
        net, w = self.net, self.w

        def loc(a):
            return a if cols is None else a[cols]

        colidx = np.arange(len(net)) if cols is None else cols
        lat_r = np.radians(oa["lat"][rows])
        a = (np.sin((loc(net.lat_rad) - lat_r) * 0.5) ** 2
             + np.cos(lat_r) * loc(net.cos_lat) * np.sin((loc(net.lon_rad) - np.radians(oa["lon"][rows])) * 0.5) ** 2)
        np.clip(a, 0.0, 1.0, out=a)
        dist = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))
        method = oa["method"][rows]
        pick = oa["pickup"][rows]
        is_pickup = method == _METHOD_CODE["pickup"]
        at_store = is_pickup & (colidx == pick) & (pick >= 0)
        if at_store.ndim < dist.ndim or at_store.shape != dist.shape:
            at_store = np.broadcast_to(at_store, dist.shape)
        store_ok = np.zeros_like(pick, dtype=bool)
        valid = pick >= 0
        store_ok[valid] = net.pickup[pick[valid]]
        at_store = at_store & store_ok
        pkg = self.package_ship_cost(dist)
        pkg = np.where(at_store, w.pickup_package, pkg)
        transfer = np.where(is_pickup & ~at_store, w.transfer_fee, 0.0) * np.ones_like(dist)
        ships = loc(net.ships)
        capok = loc(cap) >= 1
        radius = loc(net.same_day_radius_km)
        kept_sd = (dist <= radius) & loc(net.same_day_open) & (radius > 0)
        kept = np.where(method == 0, kept_sd,
                        np.where(method == 1, dist <= w.next_day_max_km,
                                 np.where(method == 2, dist <= w.standard_max_km, at_store)))
        elig_pick = at_store | (ships & w.allow_pickup_transfer & store_ok & (pick >= 0)) if is_pickup.any() else False
        eligible = np.where(is_pickup, elig_pick, ships) & capok
        if not w.same_day_fallback:
            eligible &= (method != 0) | kept_sd
        miss_w = self._miss_by_method[method] * (1.0 + oa["prio"][rows])
        miss = np.where(kept, 0.0, miss_w)
        opp = np.where(self._opp_method[method] & ~at_store, loc(self.opp_loc), 0.0)
        return {"dist": dist, "package": pkg, "transfer": transfer, "promise_miss": miss, "kept": kept,
                "eligible": eligible, "opp_unit": opp}

    def price_many(self, orders: Sequence[OrderRequest], stock: Stock | None = None,
                   capacity_left: np.ndarray | None = None) -> ManyCosts:
        """Price many orders at every location at once (vectorised)."""
        net = self.net
        cap = net.capacity_left if capacity_left is None else capacity_left
        orders = list(orders)
        oa = self._order_attrs(orders)
        n_o = len(orders)
        pr = self._price(oa, np.arange(n_o)[:, None], None, cap)
        line_order = np.fromiter((i for i, o in enumerate(orders) for _ in o.lines), dtype=np.int64)
        qty = np.fromiter((ln.qty for o in orders for ln in o.lines), dtype=np.int64, count=line_order.size)
        d_line = pr["dist"][line_order]
        line_total = qty[:, None] * (self._unit + self._unit_km * d_line + pr["opp_unit"][line_order]) \
            + self.per_line_loc[None, :]
        feasible = pr["eligible"][line_order]
        if stock is not None:
            zeros = self._zeros_n
            su = np.stack([stock.get(ln.sku, zeros) for o in orders for ln in o.lines]) if qty.size else \
                np.zeros((0, len(net)), dtype=np.int64)
            feasible = feasible & (su >= qty[:, None])
        else:
            feasible = feasible.copy()
        li = 0
        for o in orders:
            if o.excluded:
                for k, ln in enumerate(o.lines):
                    for code in o.excluded.get(ln.key, ()):
                        j = net.index.get(code)
                        if j is not None:
                            feasible[li + k, j] = False
            li += len(o.lines)
        load = self.load_marginal(cap)
        pkg_nl = pr["package"] + pr["transfer"] + pr["promise_miss"]
        return ManyCosts(orders, line_order, qty, pr["dist"], pr["package"], pr["transfer"], pr["promise_miss"], load,
                         pr["kept"], pr["eligible"], pkg_nl, line_total, feasible, oa["pickup"])

    def order_costs(self, order: OrderRequest, stock: Stock | None = None,
                    capacity_left: np.ndarray | None = None) -> OrderCosts:
        """Price one order at every location, with the diagnostics explanations need."""
        net = self.net
        cap = net.capacity_left if capacity_left is None else capacity_left
        oa = self._order_attrs([order])
        pr = self._price(oa, 0, None, cap)
        dist = pr["dist"]
        N = dist.shape[0]
        load = self.load_marginal(cap)
        pkg_terms = {"package": pr["package"], "transfer": pr["transfer"], "promise_miss": pr["promise_miss"],
                     "load": load}
        pkg_total = pr["package"] + pr["transfer"] + pr["promise_miss"] + load
        qty = np.fromiter((ln.qty for ln in order.lines), dtype=np.int64, count=len(order.lines))
        units = qty[:, None] * (self._unit + self._unit_km * dist)[None, :]
        opp_unit = pr["opp_unit"]
        line_total = units + qty[:, None] * opp_unit[None, :] + self.per_line_loc[None, :]
        eligible = pr["eligible"]
        if stock is None:
            stock_units = None
            has_stock = np.ones((len(qty), N), dtype=bool)
        else:
            zeros = self._zeros_n
            stock_units = np.stack([stock.get(ln.sku, zeros) for ln in order.lines]) if len(qty) else \
                np.zeros((0, N), dtype=np.int64)
            has_stock = stock_units >= qty[:, None]
        feasible = has_stock & eligible[None, :]
        excluded = None
        if order.excluded:
            excluded = np.zeros((len(qty), N), dtype=bool)
            for li, ln in enumerate(order.lines):
                for code in order.excluded.get(ln.key, ()):
                    j = net.index.get(code)
                    if j is not None:
                        excluded[li, j] = True
            feasible &= ~excluded
        return OrderCosts(order, dist, pkg_terms, pkg_total, units, self.handling_loc, self.reliability_loc, opp_unit,
                          qty, line_total, feasible, eligible, has_stock, stock_units, pr["kept"], excluded,
                          int(oa["pickup"][0]))


# ----------------------------------------------------------------------------------------------------------------------
# Plan evaluation (the one cost function every policy is compared with)
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class OrderEval:
    order_id: str
    cost: float
    terms: dict[str, float]
    packages: list[str]
    unfilled: list[str]
    promise_kept: bool


@dataclass
class PlanEval:
    total_cost: float
    terms: dict[str, float]
    orders: dict[str, OrderEval]
    packages: int
    split_rate: float
    same_day_kept: float
    next_day_kept: float
    unfilled_lines: int
    capacity_violations: int
    stock_violations: int
    packages_by_location: np.ndarray

    @property
    def shipping_cost(self) -> float:
        return float(sum(self.terms[t] for t in SHIPPING_TERMS))

    def cost_without(self, terms: Iterable[str]) -> float:
        return float(self.total_cost - sum(self.terms[t] for t in terms))


def evaluate_plan(orders: Sequence[OrderRequest], plan: Mapping[str, Sequence[tuple[str, str, int]]],
                  network: Network, weights: Weights | None = None, stock: Stock | None = None,
                  model: CostModel | None = None, per_order: bool | Iterable[str] = True) -> PlanEval:
    """Price a whole plan with the published cost model (vectorised over the assignments).

    ``network.capacity_left`` is the capacity before the plan's packages (load and capacity violations are counted
    against it); ``stock``, if given, is checked for overuse. Lines are priced at the quantity of the order line.
    ``per_order``: True for every order's breakdown in ``PlanEval.orders``, False for none, or the order ids wanted.
    """
    model = model or CostModel(network, weights)
    net = network
    orders = list(orders)
    n_o = len(orders)
    # flatten the plan
    a_order, a_line, a_col, a_qty, a_sku = [], [], [], [], []
    line_base = np.zeros(n_o + 1, dtype=np.int64)
    n_unf = np.zeros(n_o, dtype=np.int64)
    sku_list: list[str] = []
    sku_id: dict[str, int] = {}
    for oi, o in enumerate(orders):
        line_base[oi + 1] = line_base[oi] + len(o.lines)
        pos = {ln.key: k for k, ln in enumerate(o.lines)}
        got = set()
        for key, code, _q in plan.get(o.id, ()):
            k = pos.get(key)
            j = net.index.get(code)
            if k is None or j is None or key in got:
                continue
            got.add(key)
            ln = o.lines[k]
            a_order.append(oi)
            a_line.append(k)
            a_col.append(j)
            a_qty.append(ln.qty)
            a_sku.append(sku_id.setdefault(ln.sku, len(sku_id)))
            if len(sku_id) > len(sku_list):
                sku_list.append(ln.sku)
        n_unf[oi] = len(o.lines) - len(got)
    a_order = np.asarray(a_order, dtype=np.int64)
    a_col = np.asarray(a_col, dtype=np.int64)
    a_qty = np.asarray(a_qty, dtype=np.int64)
    a_sku = np.asarray(a_sku, dtype=np.int64)
    N = len(net)
    # packages = unique (order, col)
    pair_key = np.unique(a_order * N + a_col) if a_order.size else np.zeros(0, dtype=np.int64)
    p_order, p_col = pair_key // N, pair_key % N
    oa = model._order_attrs(orders)
    cap = net.capacity_left
    pp = model._price(oa, p_order, p_col, cap)
    lp = model._price(oa, a_order, a_col, cap)
    t_order: dict[str, np.ndarray] = {}
    t_order["package"] = np.bincount(p_order, weights=pp["package"], minlength=n_o)
    t_order["transfer"] = np.bincount(p_order, weights=pp["transfer"], minlength=n_o)
    t_order["promise_miss"] = np.bincount(p_order, weights=pp["promise_miss"], minlength=n_o)
    t_order["units"] = np.bincount(a_order, weights=a_qty * (model._unit + model._unit_km * lp["dist"]), minlength=n_o)
    t_order["handling"] = np.bincount(a_order, weights=model.handling_loc[a_col], minlength=n_o)
    t_order["opportunity"] = np.bincount(a_order, weights=a_qty * lp["opp_unit"], minlength=n_o)
    t_order["reliability"] = np.bincount(a_order, weights=model.reliability_loc[a_col], minlength=n_o)
    t_order["unfilled"] = n_unf * float(model.w.unfilled_per_line)
    n_pk = np.bincount(p_order, minlength=n_o)
    missed = np.bincount(p_order, weights=(~pp["kept"]).astype(float), minlength=n_o)
    kept = (missed == 0) & (n_unf == 0)
    pk = np.bincount(p_col, minlength=N)
    totals = {t: float(t_order[t].sum()) if t in t_order else 0.0 for t in TERMS}
    totals["load"] = float(model.load_cost(pk).sum())
    cap_viol = int(np.maximum(0, pk - net.capacity_left).sum())
    stock_viol = 0
    if stock is not None and a_order.size:
        key = a_sku * N + a_col
        uk, inv = np.unique(key, return_inverse=True)
        used = np.bincount(inv, weights=a_qty)
        for k, u in zip(uk.tolist(), used.tolist(), strict=True):
            arr = stock.get(sku_list[k // N])
            have = int(arr[k % N]) if arr is not None else 0
            stock_viol += max(0, int(u) - have)
    nlines = np.diff(line_base)
    multi = nlines >= 2
    methods = oa["method"]
    sd = methods == _METHOD_CODE["same_day"]
    nd = methods == _METHOD_CODE["next_day"]
    per: dict[str, OrderEval] = {}
    if per_order:
        wanted = None if per_order is True else set(per_order)
        mat = np.stack([t_order.get(t, np.zeros(n_o)) for t in TERMS], axis=1)
        pk_codes: dict[int, list[str]] = {}
        for o_, c_ in zip(p_order.tolist(), p_col.tolist(), strict=True):
            pk_codes.setdefault(o_, []).append(net.codes[c_])
        for oi, o in enumerate(orders):
            if wanted is not None and o.id not in wanted:
                continue
            if n_unf[oi]:
                got = {k for k, _c, _q in plan.get(o.id, ())}
                unf = [ln.key for ln in o.lines if ln.key not in got]
            else:
                unf = []
            row = mat[oi]
            per[o.id] = OrderEval(o.id, float(row.sum()), dict(zip(TERMS, row.tolist(), strict=True)),
                                  pk_codes.get(oi, []), unf, bool(kept[oi]))
    return PlanEval(
        total_cost=float(sum(totals.values())), terms=totals, orders=per, packages=int(pk.sum()),
        split_rate=float((multi & (n_pk >= 2)).sum() / multi.sum()) if multi.any() else 0.0,
        same_day_kept=float(kept[sd].mean()) if sd.any() else 1.0,
        next_day_kept=float(kept[nd].mean()) if nd.any() else 1.0,
        unfilled_lines=int(n_unf.sum()), capacity_violations=cap_viol, stock_violations=stock_viol,
        packages_by_location=pk)
