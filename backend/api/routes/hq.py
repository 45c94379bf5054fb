"""HQ insight: store performance and trends, routing settings, and the what-if replay of past orders."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from backend.api.csv_export import Format, FormatQuery, csv_response
from backend.api.deps import SessionDep, require
from backend.principal import Principal
from backend.services import hq, routing_settings, whatif
from shared.enums import Role
from shared.errors import Problem
from shared.hq import Performance, RoutingSettingsIn, RoutingSettingsOut, Trend, TrendMetric, WhatIfIn, WhatIfOut

router = APIRouter(tags=["hq"])
Reader = Annotated[Principal, require(Role.hq, Role.manager)]
HQ = Annotated[Principal, require(Role.hq)]
CSV = {200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with ?format=csv"}, 422: {"model": Problem}}


@router.get("/hq/stores/performance", response_model=Performance, responses=CSV)
def store_performance(
    session: SessionDep, p: Reader,
    from_: Annotated[str | None, Query(alias="from", description="ISO date or date-time; default 7 days ago")] = None,
    to: Annotated[str | None, Query(description="ISO date (whole day included) or date-time; default now")] = None,
    format: Format = FormatQuery,
) -> Performance | Response:
    """Every active store's figures over the period, and the chain's. A manager sees their store and the chain."""
    perf = hq.performance(session, p, from_, to)
    if format == "csv":
        return csv_response(perf.stores, "store-performance.csv")
    return perf


@router.get("/hq/stores/trends", response_model=Trend, responses=CSV)
def store_trends(
    session: SessionDep, p: Reader, metric: TrendMetric = "orders_fulfilled",
    days: Annotated[int, Query(ge=1, le=366)] = 28,
    store: Annotated[str | None, Query(description="a store code; none: the whole chain")] = None,
    format: Format = FormatQuery,
) -> Trend | Response:
    """A daily series (UTC days) for charts."""
    trend = hq.trends(session, p, metric, days, store or None)
    if format == "csv":
        return csv_response(trend.series, f"trend-{metric}.csv")
    return trend


@router.get("/routing/settings", response_model=RoutingSettingsOut)
def get_routing_settings(session: SessionDep, _: Annotated[Principal, require(Role.hq, Role.manager, Role.integration)]
                         ) -> RoutingSettingsOut:
    """The routing weights in force, with their version, who saved them and when."""
    return routing_settings.get_settings(session)


@router.put("/routing/settings", response_model=RoutingSettingsOut, responses={422: {"model": Problem}})
def put_routing_settings(body: RoutingSettingsIn, session: SessionDep, p: HQ) -> RoutingSettingsOut:
    """Save new routing weights as a new version (weights not given take the published defaults)."""
    return routing_settings.put_settings(session, body, p)


@router.post("/hq/whatif", response_model=WhatIfOut, responses={422: {"model": Problem}})
def run_whatif(body: WhatIfIn, session: SessionDep, p: HQ) -> WhatIfOut:
    """Replay the orders created in a period under changed routing weights, against that period's stock, and compare
    with what really happened."""
    return whatif.run(session, body, p)
