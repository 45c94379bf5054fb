"""Log in, and who am I."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from backend.api.deps import CurrentPrincipal, SessionDep
from backend.models import User
from backend.services import auth
from shared.auth import Me, Token

router = APIRouter(tags=["auth"])


@router.post("/auth/token", response_model=Token, summary="Log in (associates and managers: the password is the PIN)")
def token(session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> Token:
    return auth.login(session, form.username, form.password)


@router.get("/me", response_model=Me)
def me(session: SessionDep, p: CurrentPrincipal) -> Me:
    user = session.get(User, p.username)
    return Me(username=p.username, role=p.role, store=p.store, name=user.name if user else None,
              locations=sorted(p.locations) or None)
