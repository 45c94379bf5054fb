"""API keys for integrations and nodes (warehouses, 3PLs, suppliers). The secret is shown once and kept hashed."""
from __future__ import annotations

from sqlmodel import Session, col, select

from backend import events
from backend.errors import DomainError, NotFound
from backend.ids import new_id
from backend.models import ApiKey, Location
from backend.principal import Principal
from backend.security import hash_api_key, new_api_key
from shared.enums import LocationType
from shared.nodes import ApiKeyCreate, ApiKeyCreated, ApiKeyOut


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
    return key_out(row)
