"""Unpadded base64url (RFC 7515 §2), the encoding of JOSE and PKCE."""

from __future__ import annotations

import base64
import binascii


def b64url_encode(data: bytes) -> str:
    """Encode without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str | bytes) -> bytes:
    """Decode unpadded base64url strictly; raise ``ValueError`` on any stray character."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    if len(raw) % 4 == 1:
        raise ValueError("impossible base64url length")
    try:
        return base64.b64decode(raw + b"=" * (-len(raw) % 4), altchars=b"-_", validate=True)
    except binascii.Error as exc:
        raise ValueError(f"bad base64url: {exc}") from None
