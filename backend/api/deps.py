"""Request dependencies: database session and the authenticated caller."""
from __future__ import annotations

from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from backend.config import get_settings
from backend.db import get_session
from backend.errors import Unauthorized
from backend.models import User
from backend.principal import Principal
from backend.security import read_token
from backend.services.apikeys import cached_principal_for_key, principal_for_key
from shared.enums import Role

SessionDep = Annotated[Session, Depends(get_session)]

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def principal_from_api_key(session: Session, key: str) -> Principal:
    """Cached for a few seconds per process (backend/services/apikeys.py, KEY_CACHE_TTL_S)."""
    return principal_for_key(session, key)


def principal_from_token(session: Session, token: str) -> Principal:
    try:
        claims = read_token(get_settings().jwt_secret(), token)
    except jwt.ExpiredSignatureError as e:
        raise Unauthorized("token_expired", "your session has expired; log in again") from e
    except jwt.PyJWTError as e:
        raise Unauthorized("invalid_token", "the bearer token is not valid") from e
    user = session.get(User, claims["sub"])
    if user is None or not user.active:
        raise Unauthorized("inactive_user", "this user no longer exists or was deactivated")
    return Principal(username=user.username, role=Role(user.role), store=user.store)


async def current_principal(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> Principal:
    # Async so that a cached API key costs no trip to the thread pool; database reads go there.
    if api_key:
        p = cached_principal_for_key(session, api_key) or await run_in_threadpool(principal_from_api_key, session,
                                                                                   api_key)
    elif token:
        p = await run_in_threadpool(principal_from_token, session, token)
    else:
        raise Unauthorized("not_authenticated", "log in (Bearer token) or send an X-API-Key header")
    request.state.principal = p
    return p


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(*roles: Role):  # noqa: ANN201
    """Dependency factory: the caller must have one of these roles."""

    async def dep(p: CurrentPrincipal) -> Principal:  # no I/O: runs on the event loop, no thread pool trip
        p.check_role(*roles)
        return p

    return Depends(dep)
