"""Where a ZIP code or a `lat,lon` string is (US ZIP centroids ship inside the `zipcodes` package)."""
from __future__ import annotations

import re
from functools import lru_cache

from backend.errors import DomainError

_LATLON = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$")


@lru_cache(maxsize=50_000)
def zip_point(zip_code: str) -> tuple[float, float, str] | None:
    """(lat, lon, timezone) of a US ZIP centroid, or None when unknown."""
    import zipcodes

    z = zip_code.strip()[:5]
    if not re.fullmatch(r"\d{5}", z):
        return None
    try:
        hits = zipcodes.matching(z)
    except (ValueError, TypeError):
        return None
    if not hits or not hits[0].get("lat"):
        return None
    h = hits[0]
    return float(h["lat"]), float(h["long"]), h.get("timezone") or "America/New_York"


def resolve_point(near: str) -> tuple[float, float]:
    """A ZIP or `lat,lon` as (lat, lon); a clear 422 otherwise."""
    m = _LATLON.match(near)
    if m:
        lat, lon = float(m.group(1)), float(m.group(2))
        if -90 <= lat <= 90 and -180 <= lon <= 180:
            return lat, lon
        raise DomainError("invalid_point", f"{near!r} is not a valid lat,lon", status=422)
    p = zip_point(near)
    if p is None:
        raise DomainError("unknown_zip", f"ZIP code {near!r} is not a known US ZIP", {"near": near}, status=422)
    return p[0], p[1]
