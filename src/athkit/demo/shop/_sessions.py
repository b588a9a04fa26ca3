"""Server-side storefront sessions, keyed by the SHA-256 of a random cookie value.

Logging out deletes the row, so a stolen cookie dies with the session; logging in issues a
new cookie value (no session fixation). Each session carries its CSRF token.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from athkit.demo.shop._tables import web_sessions
from athkit.protocol import hash_secret


@dataclass(frozen=True)
class WebSession:
    """One browser's session with the storefront."""

    id_hash: str
    csrf_token: str
    user_id: str | None
    user_name: str | None
    login_state: str | None
    login_verifier: str | None
    login_next: str | None
    expires_at: datetime


class LoginSessionStore:
    """Create, read, change and end storefront sessions."""

    def __init__(self, db: AsyncEngine, lifetime: timedelta) -> None:
        self._engine = db
        self._lifetime = lifetime

    async def create(self, **fields: Any) -> tuple[str, WebSession]:
        """A new session; returns the cookie value (only ever held by the browser) and it."""
        cookie = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        row: dict[str, Any] = {
            "id_hash": hash_secret(cookie),
            "csrf_token": secrets.token_urlsafe(32),
            "user_id": None,
            "user_name": None,
            "login_state": None,
            "login_verifier": None,
            "login_next": None,
            "expires_at": now + self._lifetime,
        }
        row.update(fields)
        async with self._engine.begin() as conn:
            # Sweep expired sessions while we are writing anyway.
            await conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
            await conn.execute(insert(web_sessions).values(**row))
        return cookie, WebSession(**row)

    async def load(self, cookie: str | None) -> WebSession | None:
        """The live session behind a cookie value, or None."""
        if not cookie or len(cookie) > 128:
            return None
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(web_sessions).where(web_sessions.c.id_hash == hash_secret(cookie))
                )
            ).one_or_none()
        if row is None:
            return None
        found = dict(row._mapping)
        expires = found["expires_at"]
        if expires.tzinfo is None:
            found["expires_at"] = expires = expires.replace(tzinfo=UTC)
        if expires <= datetime.now(UTC):
            return None
        return WebSession(**found)

    async def update(self, session: WebSession, **fields: Any) -> None:
        """Change some fields of a session."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(web_sessions)
                .where(web_sessions.c.id_hash == session.id_hash)
                .values(**fields)
            )

    async def end(self, session: WebSession) -> None:
        """Delete a session (logout, or replaced at login)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(web_sessions).where(web_sessions.c.id_hash == session.id_hash)
            )
