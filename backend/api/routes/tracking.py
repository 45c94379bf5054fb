"""The customer's tracking page `GET /track/{token}` (plain HTML, no login) and revoking a tracking link.

Rate limit: a token bucket per client IP, kept in this process's memory. Why not the database: the page is public
and read-only, and a counter row per view would turn every page view (and every attack) into a database write
that all backend processes contend for. Tokens are 192-bit random strings, so the limit is not what stops
guessing; it stops one client from hammering the page. With N processes behind a load balancer a client may get
up to N x the limit, which is acceptable for that purpose. The client IP is what uvicorn reports (it honours
X-Forwarded-For only from trusted proxies: `--forwarded-allow-ips`).
"""
from __future__ import annotations

import html
import threading
import time
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from backend.api.deps import SessionDep, require
from backend.principal import Principal
from backend.services import tracking
from backend.services.tracking import TrackingSettings, TrackingView
from shared.enums import Role
from shared.errors import Problem
from shared.promise import TrackingRevokeIn, TrackingRevokeOut

router = APIRouter()

HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never hand it to another site
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
}


class IpRateLimiter:
    """Token bucket per client IP: `per_minute` requests a minute, with bursts up to `per_minute`."""

    def __init__(self, per_minute: int, max_clients: int = 50_000) -> None:
        self.capacity = float(max(1, per_minute))
        self.rate = self.capacity / 60.0
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, ip: str) -> tuple[bool, float]:
        """(allowed, seconds until the next request would be allowed)."""
        t = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(ip, (self.capacity, t))
            tokens = min(self.capacity, tokens + (t - last) * self.rate)
            if len(self._buckets) >= self.max_clients and ip not in self._buckets:
                self._prune(t)
            if tokens >= 1.0:
                self._buckets[ip] = (tokens - 1.0, t)
                return True, 0.0
            self._buckets[ip] = (tokens, t)
            return False, (1.0 - tokens) / self.rate

    def _prune(self, t: float) -> None:
        full = [ip for ip, (tok, last) in self._buckets.items() if tok + (t - last) * self.rate >= self.capacity]
        for ip in full:
            del self._buckets[ip]
        if len(self._buckets) >= self.max_clients:  # still full (an attack from many addresses): start over
            self._buckets.clear()


def _limiter(request: Request) -> IpRateLimiter:
    lim = getattr(request.app.state, "tracking_limiter", None)
    if lim is None:
        lim = request.app.state.tracking_limiter = IpRateLimiter(TrackingSettings().requests_per_minute)
    return lim


@router.get("/track/{token}", response_class=HTMLResponse, include_in_schema=False)
def tracking_page(token: str, request: Request, session: SessionDep) -> HTMLResponse:
    ok, wait = _limiter(request).allow(request.client.host if request.client else "unknown")
    if not ok:
        retry = str(max(1, int(wait + 0.999)))
        return HTMLResponse(_message("Too many requests", "Please wait a moment and reload this page."),
                            status_code=429, headers={**HEADERS, "Retry-After": retry})
    v = tracking.view(session, token)
    if v is None:
        return HTMLResponse(_message("Order not found", "This tracking link is not valid or no longer works. Please "
                                     "use the latest link from your order confirmation, or contact us."),
                            status_code=404, headers=HEADERS)
    return HTMLResponse(_render(v), headers=HEADERS)


@router.post("/api/v1/orders/{order_id}/tracking/revoke", tags=["tracking"], response_model=TrackingRevokeOut,
             responses={404: {"model": Problem}})
def revoke_tracking(order_id: str, session: SessionDep, p: Annotated[Principal, require(Role.hq, Role.integration)],
                    body: TrackingRevokeIn | None = None) -> TrackingRevokeOut:
    """The order's tracking link stops working at once; by default the order gets a new link (`reissue`)."""
    return tracking.revoke(session, order_id, (body or TrackingRevokeIn()).reissue, p)


# --------------------------------------------------------------------------------------------------- rendering
_METHOD = {"same_day": "Same-day delivery", "next_day": "Next-day delivery", "standard": "Standard delivery",
           "pickup": "Store pickup"}
_STEPS = {"shipped": ["Received", "Prepared", "Packed", "On its way"],
          "pickup": ["Received", "Prepared", "Ready to collect", "Collected"]}
_REACHED = {"created": 1, "routed": 1, "backordered": 1, "released": 1, "picked": 2, "packed": 3, "ready": 3,
            "shipped": 4, "collected": 4}

_CSS = """
body{margin:0;font:17px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1c1c1e;background:#f4f4f6}
main{max-width:36rem;margin:0 auto;padding:1rem}
.card{background:#fff;border-radius:12px;padding:1rem 1.1rem;margin:0 0 .8rem;box-shadow:0 1px 2px #0001}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1rem;margin:0 0 .4rem;color:#555;font-weight:600}
.muted{color:#666;font-size:.92rem}.big{font-size:1.15rem;font-weight:600}
.code{font:700 2.2rem/1.2 ui-monospace,Menlo,monospace;letter-spacing:.25em;text-align:center;padding:.5rem;
border:2px dashed #1a7f37;border-radius:10px;color:#1a7f37;margin:.5rem 0}
ol.steps{display:flex;list-style:none;padding:0;margin:.6rem 0 0;gap:4px}
ol.steps li{flex:1;font-size:.78rem;text-align:center;padding-top:8px;border-top:5px solid #ddd;color:#888}
ol.steps li.done{border-color:#1a7f37;color:#1a7f37}
ul{padding-left:1.1rem;margin:.2rem 0}
"""


def _when(v: TrackingView, t) -> str:  # noqa: ANN001
    local = t.astimezone(v.tz)
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M} ({local.tzname()})"


def _render(v: TrackingView) -> str:
    e = html.escape
    parts = [f'<div class="card"><div class="muted">Order {e(v.order_number)} · {e(_METHOD.get(v.delivery_method, ""))}'
             f'</div><h1>{e(v.headline)}</h1><p>{e(v.detail)}</p>']
    if v.status != "cancelled":
        steps = _STEPS["pickup" if v.delivery_method == "pickup" else "shipped"]
        reached = _REACHED.get(v.status, 1)
        parts.append('<ol class="steps">' + "".join(
            f'<li class="{"done" if i < reached else ""}">{e(s)}</li>' for i, s in enumerate(steps)) + "</ol>")
    parts.append("</div>")
    if v.pickup and v.pickup.ready and v.pickup.code:
        parts.append(f'<div class="card"><h2>Your pickup code</h2><div class="code">{e(v.pickup.code)}</div>'
                     '<div class="muted">Show this code at the counter to collect your order.</div></div>')
    if v.promise_by and v.status not in ("ready", "collected", "cancelled"):
        label = "Ready for pickup by" if v.delivery_method == "pickup" else "Arrives by"
        parts.append(f'<div class="card"><h2>{label}</h2><div class="big">{e(_when(v, v.promise_by))}</div></div>')
    if v.pickup:
        p = v.pickup
        rows = [f'<div class="big">{e(p.store)}</div>']
        if p.address:
            rows.append(f"<div>{e(p.address)}</div>")
        if p.hours:
            rows.append(f'<div class="muted">Opening hours: {e(p.hours)}</div>')
        parts.append('<div class="card"><h2>Pickup store</h2>' + "".join(rows) + "</div>")
    if v.packages:
        items = []
        for i, pk in enumerate(v.packages, 1):
            bits = [f"Package {i}"]
            if pk.carrier:
                bits.append(e(pk.carrier))
            bits.append(f"tracking number <b>{e(pk.tracking)}</b>" if pk.tracking else "no tracking number")
            if pk.shipped_at:
                bits.append(f'<span class="muted">shipped {e(_when(v, pk.shipped_at))}</span>')
            items.append("<li>" + " · ".join(bits) + "</li>")
        parts.append('<div class="card"><h2>Packages</h2><ul>' + "".join(items) + "</ul></div>")
    if v.items:
        parts.append('<div class="card"><h2>Items</h2><ul>' + "".join(
            f"<li>{q} × {e(name)}</li>" for name, q in v.items) + "</ul></div>")
    if v.updated_at:
        parts.append(f'<p class="muted">Last update {e(_when(v, v.updated_at))}</p>')
    return _page(f"Order {v.order_number}: {v.headline}", "".join(parts))


def _page(title: str, body: str) -> str:
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta name=\"robots\" content=\"noindex\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body><main>{body}</main></body></html>")


def _message(title: str, text: str) -> str:
    return _page(title, f'<div class="card"><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></div>')
