"""Password/PIN hashes, API key hashes and signed tokens."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.clock import now

# Argon2id with modest cost: PINs are short, so rate limits do the real protection; hashing must not be the
# bottleneck of a shift change when forty associates log in.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
_DUMMY = _hasher.hash("not-a-real-secret")
ALGORITHM = "HS256"


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(hashed: str | None, secret: str) -> bool:
    try:
        return _hasher.verify(hashed or _DUMMY, secret) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False


def make_token(secret: str, subject: str, role: str, store: str | None, minutes: int) -> tuple[str, int]:
    issued = now()
    claims: dict[str, Any] = {
        "sub": subject, "role": role, "store": store, "iat": issued, "exp": issued + timedelta(minutes=minutes),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), minutes * 60


def read_token(secret: str, token: str) -> dict[str, Any]:
    """Raises jwt.PyJWTError when the token is forged, malformed or expired."""
    return jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "role"]})


def new_api_key() -> str:
    return "sl_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
