"""API keys for integrations and nodes (warehouses, 3PLs, suppliers). The secret is shown once and kept hashed.

Every integration request names its key, so each process keeps the caller a key stands for for KEY_CACHE_TTL_S
seconds (keyed by the key's SHA-256, per database): a revocation takes effect at once in the process that made it
and within KEY_CACHE_TTL_S everywhere else. Unknown and revoked keys are never cached.
"""
from __future__ import annotations

import threading
import time

from sqlmodel import Session, col, select

from backend import events
from backend.errors import DomainError, NotFound, Unauthorized
from backend.ids import new_id
from backend.models import ApiKey, Location
from backend.principal import Principal
from backend.security import hash_api_key, new_api_key
from shared.enums import LocationType, Role
from shared.nodes import ApiKeyCreate, ApiKeyCreated, ApiKeyOut

KEY_CACHE_TTL_S = 5.0
_principals: dict[tuple[str, str], tuple[float, Principal]] = {}
_principals_lock = threading.Lock()


def cached_principal_for_key(session: Session, key: str) -> Principal | None:
    """The caller an API key stands for, if this process looked it up less than KEY_CACHE_TTL_S ago (no I/O)."""
    hit = _principals.get((str(session.get_bind().url), hash_api_key(key)))
    if hit is not None and time.monotonic() < hit[0]:
        return hit[1]
    return None


def principal_for_key(session: Session, key: str) -> Principal:
    """The caller an API key stands for; 401 for an unknown or revoked key."""
    cached = cached_principal_for_key(session, key)
    if cached is not None:
        return cached
    digest = hash_api_key(key)
    slot = (str(session.get_bind().url), digest)
    row = session.exec(select(ApiKey).where(ApiKey.prefix == key[:8], ApiKey.key_hash == digest)).first()
    if row is None or row.revoked:
        with _principals_lock:
            _principals.pop(slot, None)
        raise Unauthorized("invalid_api_key", "the API key is unknown or revoked")
    p = Principal(username=f"key:{row.name}", role=Role(row.role), locations=frozenset(row.locations or []))
    with _principals_lock:
        if len(_principals) > 10_000:  # many distinct keys: start over rather than grow without bound
            _principals.clear()
        _principals[slot] = (time.monotonic() + KEY_CACHE_TTL_S, p)
    return p


def forget_keys() -> None:
    """Drop the cached callers (a key was revoked here, or a test starts over)."""
    with _principals_lock:
        _principals.clear()


def key_out(row: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(id=row.id, name=row.name, role=row.role, locations=list(row.locations or []), prefix=row.prefix,
                     revoked=row.revoked, created_by=row.created_by, created_at=row.created_at)


def create_key(session: Session, body: ApiKeyCreate, actor: Principal) -> ApiKeyCreated:
    codes = sorted(set(body.locations))
    if codes:
        found = {loc.code: loc for loc in session.exec(select(Location).where(col(Location.code).in_(codes)))}
        missing = [c for c in codes if c not in found]
        if missing:
            raise DomainError("unknown_location", f"location {missing[0]} does not exist", {"locations": missing},
                              status=422)
        stores = [c for c in codes if found[c].type == LocationType.store.value]
        if stores:
            raise DomainError("not_a_node", f"{stores[0]} is a store; stores work through the store app, node keys "
                              "are for warehouses, 3PLs and suppliers", {"locations": stores}, status=422)
    key = new_api_key()
    row = ApiKey(id=new_id("key"), name=body.name.strip(), prefix=key[:8], key_hash=hash_api_key(key),
                 role=body.role, locations=codes, created_by=actor.username)
    session.add(row)
    events.record(session, "api_key.created", "api_key", row.id, actor=actor.username,
                  data={"name": row.name, "role": row.role, "locations": codes})
    session.commit()
    return ApiKeyCreated(**key_out(row).model_dump(), key=key)


def list_keys(session: Session) -> list[ApiKeyOut]:
    rows = session.exec(select(ApiKey).order_by(col(ApiKey.created_at).desc(), ApiKey.id)).all()
    return [key_out(r) for r in rows]


def revoke_key(session: Session, key_id: str, actor: Principal) -> ApiKeyOut:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound("unknown_api_key", f"API key {key_id} does not exist", {"id": key_id})
    if not row.revoked:
        row.revoked = True
        session.add(row)
        events.record(session, "api_key.revoked", "api_key", row.id, actor=actor.username, data={"name": row.name})
        session.commit()
        forget_keys()
    return key_out(row)
