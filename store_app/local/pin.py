"""PIN hashes kept on the tablet for offline sign-in (PBKDF2-HMAC-SHA256).

Pyodide's hashlib has no ``pbkdf2_hmac`` (it is built without OpenSSL), so the same RFC 8018 function is
computed with ``hmac`` there; both give identical bytes, which the unit tests check.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

ITERATIONS = 20_000


def _pbkdf2_sha256(password: bytes, salt: bytes, iterations: int) -> bytes:
    inner = hashlib.sha256()
    outer = hashlib.sha256()
    key = password if len(password) <= 64 else hashlib.sha256(password).digest()
    key = key.ljust(64, b"\0")
    inner.update(bytes(b ^ 0x36 for b in key))
    outer.update(bytes(b ^ 0x5C for b in key))

    def prf(data: bytes) -> bytes:
        i = inner.copy()
        i.update(data)
        o = outer.copy()
        o.update(i.digest())
        return o.digest()

    u = prf(salt + (1).to_bytes(4, "big"))  # one 32-byte block is all we need
    acc = int.from_bytes(u, "big")
    for _ in range(iterations - 1):
        u = prf(u)
        acc ^= int.from_bytes(u, "big")
    return acc.to_bytes(32, "big")


def pbkdf2(pin: str, salt: bytes, iterations: int = ITERATIONS) -> bytes:
    fn = getattr(hashlib, "pbkdf2_hmac", None)
    if fn is not None:
        return fn("sha256", pin.encode(), salt, iterations)
    return _pbkdf2_sha256(pin.encode(), salt, iterations)


def hash_pin(pin: str, iterations: int = ITERATIONS) -> tuple[str, str, int]:
    salt = secrets.token_bytes(16)
    return pbkdf2(pin, salt, iterations).hex(), salt.hex(), iterations


def check_pin(pin: str, pin_hash: str | None, salt_hex: str | None, iterations: int | None) -> bool:
    if not pin_hash or not salt_hex or not iterations:
        return False
    return hmac.compare_digest(pbkdf2(pin, bytes.fromhex(salt_hex), iterations).hex(), pin_hash)


def pickup_code_matches(task_id: str, code: str, expected_sha256: str | None) -> bool:
    """Offline pickup check: the task carries sha256 hex of f"{task_id}:{code}"."""
    if not expected_sha256:
        return False
    digest = hashlib.sha256(f"{task_id}:{code.strip()}".encode()).hexdigest()
    return hmac.compare_digest(digest, expected_sha256.lower())
