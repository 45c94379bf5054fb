"""Sales channels and how much of each location's stock they may sell (exposure rules, kept in data).

A rule gives a channel `exposure_pct` of a location's ATP. The most specific rule wins: one naming the location,
then one naming its type, then a channel-wide rule (neither); with no rule the channel sees 100%. A channel's ATP
at a location is floor(ATP x pct / 100), so 0% hides the location from that channel entirely.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete
from sqlmodel import Session, col, select

from backend import events
from backend.clock import now
from backend.models import Channel, ChannelRule, Location
from backend.principal import Principal
from backend.process_cache import ProcessCache
from backend.services.bulk import validate_rows
from shared.errors import RejectedRow
from shared.inventory import ChannelIn, ChannelOut, ChannelRuleIn
from shared.masterdata import BulkResult


@dataclass(frozen=True)
class Exposure:
    """The exposure rules of one channel, resolved per location in memory."""

    by_location: dict[str, float] = field(default_factory=dict)
    by_type: dict[str, float] = field(default_factory=dict)
    default: float = 100.0

    def pct(self, location: str, location_type: str | None = None) -> float:
        if location in self.by_location:
            return self.by_location[location]
        if location_type is not None and location_type in self.by_type:
            return self.by_type[location_type]
        return self.default

    def atp(self, atp: int, location: str, location_type: str | None = None) -> int:
        """The channel's share of `atp` at this location (never below 0)."""
        if atp <= 0:
            return 0
        pct = self.pct(location, location_type)
        return atp if pct >= 100.0 else max(0, math.floor(atp * pct / 100.0 + 1e-9))

    @property
    def is_full(self) -> bool:
        return not self.by_location and not self.by_type and self.default >= 100.0

    def limit(self, stock: dict[str, np.ndarray], codes: Sequence[str], types: Sequence[str]) -> dict[str, np.ndarray]:
        """Per-SKU ATP arrays over a network's locations (`codes`, `types`), cut to this channel's share: what
        routing and promises may use for the channel's orders, as `atp` does for one location."""
        if self.is_full or not stock:
            return stock
        pct = np.array([self.pct(c, t) for c, t in zip(codes, types, strict=True)], dtype=float)
        if (pct >= 100.0).all():
            return stock
        cut = pct < 100.0
        out = {}
        for sku, arr in stock.items():
            shared = arr.copy()
            shared[cut] = np.floor(np.maximum(arr[cut], 0) * pct[cut] / 100.0 + 1e-9).astype(arr.dtype)
            out[sku] = shared
        return out


FULL = Exposure()


# Every routed order and promise reads its channel's rules: kept per process for EXPOSURE_TTL_S seconds.
EXPOSURE_TTL_S = 5.0
_exposures: ProcessCache[Exposure] = ProcessCache(EXPOSURE_TTL_S)


def exposure_for(session: Session, channel: str | None) -> Exposure:
    """The rules of `channel`; an unknown channel (or None) has none, so it sees every unit (100%)."""
    if not channel:
        return FULL
    return _exposures.get(session, channel, lambda: _load_exposure(session, channel))


def _load_exposure(session: Session, channel: str) -> Exposure:
    rules = session.exec(select(ChannelRule).where(ChannelRule.channel == channel)).all()
    if not rules:
        return FULL
    by_location: dict[str, float] = {}
    by_type: dict[str, float] = {}
    default = 100.0
    for r in rules:
        if r.location:
            by_location[r.location] = r.exposure_pct
        elif r.location_type:
            by_type[r.location_type] = r.exposure_pct
        else:
            default = r.exposure_pct
    return Exposure(by_location, by_type, default)


def upsert_channels(session: Session, rows: list[Any], actor: Principal) -> BulkResult:
    """Upsert channels by code; a row carrying `rules` replaces that channel's rules. One transaction."""
    good, bad = validate_rows(ChannelIn, rows, "code")
    named = {r.location for _, item in good for r in item.rules or [] if r.location}
    known = set(session.exec(select(Location.code).where(col(Location.code).in_(named))).all()) if named else set()
    existing = {c.code: c for c in session.exec(select(Channel).where(
        col(Channel.code).in_([item.code for _, item in good])))} if good else {}
    applied = 0
    for i, item in good:
        missing = sorted({r.location for r in item.rules or [] if r.location and r.location not in known})
        if missing:
            bad.append(RejectedRow(row=i, code="unknown_location", key=item.code,
                                   message=f"rule names location {missing[0]}, which is not a known location"))
            continue
        ch = existing.get(item.code)
        if ch is None:
            ch = Channel(code=item.code, name=item.name or item.code, active=item.active)
        else:
            ch.name, ch.active = item.name or ch.name, item.active
        session.add(ch)
        session.flush()
        if item.rules is not None:
            session.exec(delete(ChannelRule).where(col(ChannelRule.channel) == item.code))
            session.add_all([ChannelRule(channel=item.code, location=r.location,
                                         location_type=r.location_type.value if r.location_type else None,
                                         exposure_pct=r.exposure_pct, updated_at=now()) for r in item.rules])
        events.record(session, "channel.upserted", "channel", item.code, actor=actor.username,
                      data={"active": item.active, "rules": None if item.rules is None else
                            [r.model_dump(mode="json", exclude_none=True) for r in item.rules]})
        applied += 1
    session.commit()
    _exposures.forget()
    bad.sort(key=lambda r: r.row)
    return BulkResult(upserted=applied, rejected=bad)


def list_channels(session: Session) -> list[ChannelOut]:
    rules: dict[str, list[ChannelRuleIn]] = {}
    for r in session.exec(select(ChannelRule).order_by(ChannelRule.channel, ChannelRule.id)):
        rules.setdefault(r.channel, []).append(
            ChannelRuleIn(location=r.location, location_type=r.location_type, exposure_pct=r.exposure_pct))
    return [ChannelOut(code=c.code, name=c.name, active=c.active, rules=rules.get(c.code, []))
            for c in session.exec(select(Channel).order_by(Channel.code))]
