"""Checks that the settings of every athkit component make alike (the engine's, the shop's, the
agent's configuration): an http(s) base URL, a secret long enough to derive keys from."""

from __future__ import annotations

MIN_SECRET_LENGTH = 32


def http_base_url(value: str, problem: str = "must be an http(s) URL") -> str:
    """``value`` without trailing slashes; ``ValueError(problem)`` unless it is http(s)."""
    if not value.startswith(("http://", "https://")):
        raise ValueError(problem)
    return value.rstrip("/")


def require_long_secret(secret: str, name: str) -> None:
    """``ValueError`` unless ``secret`` (called ``name`` in the message) has at least
    :data:`MIN_SECRET_LENGTH` characters."""
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"{name} must be at least {MIN_SECRET_LENGTH} characters")
