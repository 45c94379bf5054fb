"""Routing settings: versioned weights. The newest RoutingSetting row is in force; none means the published defaults."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, col, select

from backend import events
from backend.clock import now
from backend.errors import DomainError
from backend.models import RoutingSetting
from backend.principal import Principal
from backend.process_cache import ProcessCache
from backend.routing.cost import Weights
from shared.enums import Role
from shared.hq import RoutingSettingsIn, RoutingSettingsOut


def latest(session: Session) -> RoutingSetting | None:
    return session.exec(select(RoutingSetting).order_by(col(RoutingSetting.version).desc()).limit(1)).first()


def weights_of(row: RoutingSetting | None) -> Weights:
    return Weights.from_dict(row.weights) if row is not None else Weights()


# Every routed order needs the weights in force, so each process keeps them for WEIGHTS_TTL_S seconds (per
# database): a saved setting applies at once in the process that saved it, within WEIGHTS_TTL_S in the others.
WEIGHTS_TTL_S = 5.0
_weights: ProcessCache[Weights] = ProcessCache(WEIGHTS_TTL_S)


def current_weights(session: Session) -> Weights:
    """The weights routing uses now (the published defaults until HQ saves a setting)."""
    return _weights.get(session, "weights", lambda: weights_of(latest(session)))


def forget_weights() -> None:
    _weights.forget()


def parse_weights(data: Mapping[str, Any], base: Weights | None = None) -> Weights:
    """`data` over `base` (default: the published weights); a bad name or value is a 422 the caller can act on."""
    try:
        given = {k: _typed(k, v) for k, v in dict(data).items()}
        return Weights.from_dict({**(base.to_dict() if base is not None else {}), **given})
    except (ValueError, TypeError) as e:
        raise DomainError("invalid_weights", f"the routing weights are not valid: {e}", {"weights": dict(data)},
                          status=422) from e


_DEFAULTS = Weights().to_dict()


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _typed(name: str, value: Any) -> Any:
    """Check a value has the published default's type (the weights themselves only check ranges); ints become
    floats where the default is a float."""
    default = _DEFAULTS.get(name)
    if name == "schema" or default is None:
        return value  # from_dict names unknown keys and schemas
    ok = {bool: lambda v: isinstance(v, bool), float: _is_number, int: _is_number,
          dict: lambda v: isinstance(v, dict) and all(_is_number(x) for x in v.values()),
          list: lambda v: isinstance(v, list | tuple)}[type(default)](value)
    if not ok:
        raise ValueError(f"{name} must be like {default!r}")
    return float(value) if isinstance(default, float) else value


def settings_out(row: RoutingSetting | None) -> RoutingSettingsOut:
    if row is None:
        return RoutingSettingsOut(version=0, weights=Weights().to_dict(), note="published defaults")
    return RoutingSettingsOut(version=row.version or 0, weights=weights_of(row).to_dict(),
                              note=row.note, created_by=row.created_by, created_at=row.created_at)


def get_settings(session: Session) -> RoutingSettingsOut:
    return settings_out(latest(session))


def put_settings(session: Session, body: RoutingSettingsIn, p: Principal) -> RoutingSettingsOut:
    """Save a new version (the weights given; absent ones take the published defaults). Earlier versions stay."""
    p.check_role(Role.hq)
    weights = parse_weights(body.weights)
    row = RoutingSetting(weights=weights.to_dict(), note=body.note, created_by=p.username, created_at=now())
    session.add(row)
    session.flush()
    events.record(session, "routing.settings_changed", "routing_setting", str(row.version), actor=p.username,
                  data={"version": row.version, "weights": dict(body.weights), "note": body.note})
    session.commit()
    forget_weights()
    return settings_out(row)
