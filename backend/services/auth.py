"""Log-in with a PIN (associates, managers) or a password (HQ), with a per-user attempt limit."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, select

from backend.clock import now
from backend.config import get_settings
from backend.errors import DomainError, Unauthorized
from backend.models import LoginAttempt, User
from backend.security import make_token, verify_secret
from shared.auth import Token


def login(session: Session, username: str, secret: str) -> Token:
    settings = get_settings()
    username = username.strip().lower()
    since = now() - timedelta(minutes=1)
    failures = session.exec(select(func.count()).select_from(LoginAttempt).where(
        LoginAttempt.username == username, LoginAttempt.ok == False, LoginAttempt.at >= since)).one()  # noqa: E712
    if failures >= settings.login_attempts_per_minute:
        raise DomainError("too_many_attempts", "too many failed log-ins for this user; wait a minute and try again",
                          {"retry_after_s": 60}, status=429)
    user = session.get(User, username)
    ok = verify_secret(user.secret_hash if user else None, secret) and user is not None and user.active
    session.add(LoginAttempt(username=username, ok=ok))
    if ok:
        session.exec(delete(LoginAttempt).where(LoginAttempt.at < now() - timedelta(hours=1)))
    session.commit()
    if not ok:
        raise Unauthorized("invalid_credentials", "unknown user or wrong PIN/password")
    token, expires = make_token(settings.jwt_secret(), user.username, user.role, user.store, settings.token_minutes)
    return Token(access_token=token, expires_in=expires)
