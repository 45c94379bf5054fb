"""The first HQ user and the first integration key, without which nobody can load anything else."""
from __future__ import annotations

from sqlmodel import Session, select

from backend.ids import new_id
from backend.models import ApiKey, User
from backend.security import hash_api_key, hash_secret
from shared.enums import Role


def ensure_hq_user(session: Session, username: str, password: str, name: str = "HQ operations") -> None:
    if session.get(User, username) is None:
        session.add(User(username=username, role=Role.hq.value, name=name, secret_hash=hash_secret(password)))


def ensure_api_key(session: Session, key: str, name: str, role: Role = Role.integration,
                   locations: list[str] | None = None, created_by: str | None = None) -> ApiKey:
    found = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_api_key(key))).first()
    if found is not None:
        return found
    row = ApiKey(id=new_id("key"), name=name, prefix=key[:8], key_hash=hash_api_key(key), role=role.value,
                 locations=locations or [], created_by=created_by)
    session.add(row)
    return row
