"""Passwords of people (OAuth server users, console operators): scrypt, memory-hard, with a
per-user salt, encoded as ``scrypt$n$r$p$salt$hash``."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from athkit.protocol import b64url_decode, b64url_encode

_N, _R, _P = 2**14, 8, 1
_DKLEN = 32
_MAXMEM = 64 * 1024 * 1024


@functools.cache
def _dummy_hash() -> str:
    # Verified when the user name is unknown, so a wrong name costs as long as a wrong password.
    return hash_password("not-a-real-password")


def hash_password(password: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    """Hash ``password`` for a config file (a fresh random salt each call)."""
    if not password:
        raise ValueError("the password is empty")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_DKLEN, maxmem=_MAXMEM
    )
    return f"scrypt${n}${r}${p}${b64url_encode(salt)}${b64url_encode(digest)}"


def check_password_hash_format(encoded: str) -> None:
    """Raise ``ValueError`` unless ``encoded`` is a well-formed scrypt hash with sane costs."""
    _parse(encoded)


def _parse(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError(
            "a password hash looks like scrypt$n$r$p$salt$hash (ath oauth hash-password)"
        )
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = b64url_decode(parts[4]), b64url_decode(parts[5])
    except ValueError:
        raise ValueError("the password hash has a malformed number or base64url field") from None
    if n < 2**10 or n > 2**20 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise ValueError("the password hash has scrypt costs outside the accepted range")
    if len(salt) < 8 or len(digest) < 16:
        raise ValueError("the password hash has a too short salt or digest")
    return n, r, p, salt, digest


def verify_password(password: str, encoded: str | None) -> bool:
    """Whether ``password`` matches ``encoded``; ``None`` (no such user) costs as much, fails."""
    if encoded is None:
        encoded, known = _dummy_hash(), False
    else:
        known = True
    try:
        n, r, p, salt, digest = _parse(encoded)
    except ValueError:
        return False
    candidate = hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        dklen=len(digest),
        maxmem=_MAXMEM,
    )
    return hmac.compare_digest(candidate, digest) and known
