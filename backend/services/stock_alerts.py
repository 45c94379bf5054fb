"""Low stock across the chain: the `stock.low` event (and webhook) for a SKU whose total ATP falls to the threshold.

A scheduled job, not a hook in the reservation path: routing and feeds stay as fast as they are, and a SKU that
hovers around the threshold raises one event per fall, not one per order (the `stock_alert` row is the memory).
ATP here is the plain one (all channels, active locations, blocked positions at 0); channel exposure rules only
narrow it further.
"""
from __future__ import annotations

from sqlalchemy import delete, text
from sqlmodel import Session, select

from backend import events
from backend.clock import now
from backend.config import get_settings
from backend.models import StockAlert
from backend.services.reservations import ATP_SQL

_NETWORK_ATP = text(
    f"SELECT i.sku, SUM(CASE WHEN {ATP_SQL} > 0 THEN {ATP_SQL} ELSE 0 END) AS atp"
    " FROM inventory i JOIN location l ON l.code = i.location WHERE l.active GROUP BY i.sku"
)


def scan(session: Session, threshold: int | None = None) -> int:
    """Raise `stock.low` for each SKU newly at or under the threshold; forget SKUs that recovered. Commits.
    Returns how many events were raised."""
    limit = get_settings().stock_low_units if threshold is None else threshold
    atp = {sku: int(v or 0) for sku, v in session.execute(_NETWORK_ATP)}
    known = {a.sku: a for a in session.exec(select(StockAlert))}
    raised = 0
    for sku, units in sorted(atp.items()):
        if units <= limit and sku not in known:
            session.add(StockAlert(sku=sku, atp=units, low_since=now()))
            events.record(session, "stock.low", "product", sku,
                          data={"sku": sku, "atp": units, "threshold": limit})
            raised += 1
    recovered = [sku for sku in known if atp.get(sku, 0) > limit]
    if recovered:
        session.execute(delete(StockAlert).where(StockAlert.sku.in_(recovered)))  # type: ignore[attr-defined]
    session.commit()
    return raised
