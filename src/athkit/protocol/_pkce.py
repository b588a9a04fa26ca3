"""PKCE with S256 (RFC 7636)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from athkit.protocol._b64 import b64url_encode

# RFC 7636 §4.1: code_verifier = 43*128unreserved
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def generate_code_verifier(nbytes: int = 32) -> str:
    """A high-entropy verifier: ``nbytes`` random bytes, base64url (43 chars for 32 bytes)."""
    if not 32 <= nbytes <= 96:
        raise ValueError("nbytes must be between 32 and 96")
    return b64url_encode(secrets.token_bytes(nbytes))


def is_valid_code_verifier(verifier: str) -> bool:
    """Whether ``verifier`` has the length and characters RFC 7636 §4.1 requires."""
    return isinstance(verifier, str) and _VERIFIER.fullmatch(verifier) is not None


def code_challenge_s256(verifier: str) -> str:
    """RFC 7636 §4.2: ``BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))``."""
    return b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())


def verify_code_challenge(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6, S256 only, compared in constant time; a malformed verifier fails."""
    if not is_valid_code_verifier(verifier) or not isinstance(challenge, str):
        return False
    # BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge
    return hmac.compare_digest(code_challenge_s256(verifier), challenge)
