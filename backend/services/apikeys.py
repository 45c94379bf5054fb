"""API keys for integrations and nodes (warehouses, 3PLs, suppliers). The secret is shown once and kept hashed.

Every integration request names its key, so each process keeps the caller a key stands for for KEY_CACHE_TTL_S
seconds (keyed by the key's SHA-256, per database): a revocation takes effect at once in the process that made it
and within KEY_CACHE_TTL_S everywhere else. Unknown and revoked keys are never cached.
"""
from __future__ import annotations

from sqlmodel import Session, col, select

from backend import events
from backend.errors import DomainError, NotFound, Unauthorized
from backend.ids import new_id
from backend.models import ApiKey, Location
from backend.principal import Principal
from backend.process_cache import ProcessCache
from backend.security import hash_api_key, new_api_key
from shared.enums import LocationType, Role
from shared.nodes import ApiKeyCreate, ApiKeyCreated, ApiKeyOut

KEY_CACHE_TTL_S = 5.0
_principals: ProcessCache[Principal] = ProcessCache(KEY_CACHE_TTL_S)


def cached_principal_for_key(session: Session, key: str) -> Principal | None:
    """The caller an API key stands for, if this process looked it up less than KEY_CACHE_TTL_S ago (no I/O)."""
    return _principals.peek(session, hash_api_key(key))


def principal_for_key(session: Session, key: str) -> Principal:
    """The caller an API key stands for; 401 for an unknown or revoked key."""
    digest = hash_api_key(key)

    def load() -> Principal:
        row = session.exec(select(ApiKey).where(ApiKey.prefix == key[:8], ApiKey.key_hash == digest)).first()
        if row is None or row.revoked:
            raise Unauthorized("invalid_api_key", "the API key is unknown or revoked")
        return Principal(username=f"key:{row.name}", role=Role(row.role), locations=frozenset(row.locations or []))

    return _principals.get(session, digest, load)


def forget_keys() -> None:
    """Drop the cached callers (a key was revoked here)."""
    _principals.forget()


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
