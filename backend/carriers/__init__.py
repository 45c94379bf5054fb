"""Carrier adapters by name. Unknown names fall back to the manual carrier (Storeline's own numbers)."""
from __future__ import annotations

from backend.carriers.base import Carrier
from backend.carriers.manual import ManualCarrier

_REGISTRY: dict[str, Carrier] = {"manual": ManualCarrier()}
DEFAULT = "manual"


def register(carrier: Carrier) -> None:
    _REGISTRY[carrier.name.lower()] = carrier


def get_carrier(name: str | None = None) -> Carrier:
    return _REGISTRY.get((name or DEFAULT).lower(), _REGISTRY[DEFAULT])


def known(name: str | None) -> bool:
    return bool(name) and name.lower() in _REGISTRY  # type: ignore[union-attr]
