"""The browser session: an HMAC-signed cookie carrying a browser id, a CSRF token and the login.

The cookie holds no secret of the user's: ``browser_id`` binds pending authorization requests to
this browser, ``csrf`` is echoed by every form (checked in constant time on POST), ``sub`` and
``auth_time`` say who logged in and when.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass, replace
from typing import Any

from athkit.protocol import b64url_decode, b64url_encode

_CONTEXT = b"athkit-oauthserver-session-v1|"
_MAX_COOKIE = 4096


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """What the session cookie says."""

    browser_id: str
    csrf: str
    issued_at: float
    sub: str | None = None
    auth_time: float | None = None

    @classmethod
    def new(cls, now: float) -> BrowserSession:
        """A fresh, anonymous session."""
        return cls(
            browser_id=secrets.token_urlsafe(24), csrf=secrets.token_urlsafe(24), issued_at=now
        )

    def logged_in(self, sub: str, now: float) -> BrowserSession:
        """The same browser after a login: a new CSRF token, the user and the time."""
        return replace(self, csrf=secrets.token_urlsafe(24), sub=sub, auth_time=now, issued_at=now)

    def user(self, now: float, lifetime: int) -> str | None:
        """The logged-in ``sub``, if the login is younger than ``lifetime`` seconds."""
        if self.sub is None or self.auth_time is None or now - self.auth_time > lifetime:
            return None
        return self.sub

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether a form's CSRF token is this session's (constant time)."""
        if not isinstance(presented, str) or not presented:
            return False
        return hmac.compare_digest(presented.encode(), self.csrf.encode())


def _mac(key: bytes, payload: str) -> str:
    return b64url_encode(hmac.new(key, _CONTEXT + payload.encode(), hashlib.sha256).digest())


def encode_session(session: BrowserSession, key: bytes) -> str:
    """The signed cookie value."""
    payload = b64url_encode(json.dumps(asdict(session), separators=(",", ":")).encode())
    return f"{payload}.{_mac(key, payload)}"


def decode_session(
    value: str | None, key: bytes, *, now: float, lifetime: int
) -> BrowserSession | None:
    """The session in a cookie, or ``None`` when absent, tampered, malformed or too old."""
    if not value or len(value) > _MAX_COOKIE or value.count(".") != 1:
        return None
    payload, mac = value.split(".")
    if not hmac.compare_digest(mac.encode(), _mac(key, payload).encode()):
        return None
    try:
        data: Any = json.loads(b64url_decode(payload))
        session = BrowserSession(
            browser_id=str(data["browser_id"]),
            csrf=str(data["csrf"]),
            issued_at=float(data["issued_at"]),
            sub=None if data.get("sub") is None else str(data["sub"]),
            auth_time=None if data.get("auth_time") is None else float(data["auth_time"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    if now - session.issued_at > lifetime or session.issued_at > now + 60:
        return None
    return session
