"""Opaque tokens and secrets: generation, storage hashes and constant-time comparison."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def generate_secret(prefix: str = "", nbytes: int = 32) -> str:
    """A random URL-safe secret, optionally prefixed (``ath_at_...``) so leaks are recognisable."""
    return f"{prefix}{secrets.token_urlsafe(nbytes)}"


def hash_secret(secret: str) -> str:
    """SHA-256 hex digest: what is stored for high-entropy tokens and client secrets."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Compare a presented secret with a stored hash in constant time."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)
