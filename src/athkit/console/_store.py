"""The console's records in SQL: operator accounts, sessions, sign-in failures, user sign-ins.

Every method takes the deployment it acts for; nothing crosses from one deployment to another.
Session cookies are looked up by their SHA-256 only; the cookie itself lives in the browser.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import Delete

from athkit.console._tables import (
    MIGRATIONS,
    VERSION_TABLE,
    login_failures,
    operators,
    sessions,
    user_logins,
)
from athkit.protocol import hash_password, hash_secret, verify_password
from athkit.storage import FailedSignIns, check_schema, run_migrations

USERNAME = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")
MIN_PASSWORD = 12


class OperatorExists(Exception):
    """``create_operator`` for a name this deployment already has."""


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in browser: an operator, or a user of one provider."""

    id_hash: str
    deployment: str
    kind: str
    subject: str
    provider_id: str | None
    display_name: str | None
    csrf_token: str
    expires_at: float


def _failure_key(deployment: str, username: str) -> dict[str, str]:
    """The row of ``console_login_failures`` that counts this name's failed sign-ins."""
    return {"deployment": deployment, "username": username[:64]}


def _end_operator_sessions(deployment: str, username: str) -> Delete:
    """The statement that signs an operator out everywhere (every session row goes)."""
    return delete(sessions).where(
        sessions.c.deployment == deployment,
        sessions.c.kind == "operator",
        sessions.c.subject == username,
    )


@dataclass(frozen=True, slots=True)
class Throttle:
    """Sign-in throttling: after ``max_failures`` wrong passwords for one name within
    ``window`` seconds, that name is refused (even with the right password) until the window
    that began with the first failure has passed."""

    max_failures: int = 5
    window: float = 900.0


class ConsoleStore:
    """Accounts, sessions and sign-in bookkeeping of the console, in one SQL database."""

    def __init__(
        self, db: AsyncEngine, clock: Callable[[], float], *, migrate: bool = True
    ) -> None:
        self.db = db
        self._now = clock
        self._auto_migrate = migrate
        self._migrated = False
        self._lock = asyncio.Lock()
        self._failures = FailedSignIns(db, login_failures)

    async def migrate(self) -> None:
        """Create or upgrade the console's tables, under a database lock (once per process).

        With ``migrate=False`` (the engine's ``migrate_on_start = false``) only check that the
        schema is at this release's head, and raise ``SchemaError`` if not: run
        ``ath gateway migrate`` (or ``ath console migrate``) first.
        """
        if self._migrated:
            return
        async with self._lock:
            if not self._migrated:
                if self._auto_migrate:
                    # Safe against another process (a second worker) migrating at the same time.
                    await run_migrations(self.db, MIGRATIONS, VERSION_TABLE)
                else:
                    await check_schema(self.db, MIGRATIONS, VERSION_TABLE)
                self._migrated = True

    # --- operators ------------------------------------------------------------------------

    async def create_operator(self, deployment: str, username: str, password: str) -> None:
        """Add an operator account; raise ``ValueError`` for a bad name or a short password,
        :class:`OperatorExists` if the name is taken."""
        check_new_operator(username, password)
        await self.migrate()
        # scrypt is deliberately slow: keep it off the event loop.
        digest = await asyncio.to_thread(hash_password, password)
        try:
            async with self.db.begin() as conn:
                await conn.execute(
                    insert(operators).values(
                        deployment=deployment,
                        username=username,
                        password_hash=digest,
                        created_at=self._now(),
                    )
                )
        except IntegrityError:
            raise OperatorExists(username) from None

    async def set_password(self, deployment: str, username: str, password: str) -> bool:
        """Change an operator's password and end their sessions; ``False`` if unknown."""
        check_new_operator(username, password)
        await self.migrate()
        digest = await asyncio.to_thread(hash_password, password)
        async with self.db.begin() as conn:
            changed = await conn.execute(
                update(operators)
                .where(operators.c.deployment == deployment, operators.c.username == username)
                .values(password_hash=digest)
            )
            await conn.execute(_end_operator_sessions(deployment, username))
        return bool(changed.rowcount)

    async def delete_operator(self, deployment: str, username: str) -> bool:
        """Remove an operator and end their sessions; ``False`` if unknown."""
        await self.migrate()
        async with self.db.begin() as conn:
            gone = await conn.execute(
                delete(operators).where(
                    operators.c.deployment == deployment, operators.c.username == username
                )
            )
            await conn.execute(_end_operator_sessions(deployment, username))
        return bool(gone.rowcount)

    async def list_operators(self, deployment: str) -> list[str]:
        """The operator names of a deployment, sorted."""
        await self.migrate()
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(operators.c.username)
                .where(operators.c.deployment == deployment)
                .order_by(operators.c.username)
            )
            return [r.username for r in rows]

    async def check_password(self, deployment: str, username: str, password: str) -> bool:
        """Whether the deployment has this operator with this password (constant cost)."""
        await self.migrate()
        stored = None
        if USERNAME.match(username):
            async with self.db.connect() as conn:
                stored = (
                    await conn.execute(
                        select(operators.c.password_hash).where(
                            operators.c.deployment == deployment, operators.c.username == username
                        )
                    )
                ).scalar_one_or_none()
        return await asyncio.to_thread(verify_password, password, stored)

    # --- throttling -----------------------------------------------------------------------

    async def recent_failures(self, deployment: str, username: str, window: float) -> int:
        """Failed sign-ins for ``username`` in the current window."""
        key = _failure_key(deployment, username)
        return await self._failures.count(key, now=self._now(), window=window)

    async def record_failure(self, deployment: str, username: str, window: float) -> None:
        """Count one failed sign-in (a new window starts once the old one has passed)."""
        key = _failure_key(deployment, username)
        await self._failures.record(key, now=self._now(), window=window)

    async def clear_failures(self, deployment: str, username: str) -> None:
        """Forget the failures of an operator who just signed in."""
        await self._failures.clear(_failure_key(deployment, username))

    # --- sessions -------------------------------------------------------------------------

    async def start_session(
        self,
        deployment: str,
        kind: str,
        subject: str,
        lifetime: float,
        *,
        provider_id: str | None = None,
        display_name: str | None = None,
    ) -> tuple[str, ConsoleSession]:
        """A new session; returns the cookie value (held only by the browser) and the record."""
        await self.migrate()
        cookie = secrets.token_urlsafe(32)
        now = self._now()
        record = ConsoleSession(
            id_hash=hash_secret(cookie),
            deployment=deployment,
            kind=kind,
            subject=subject,
            provider_id=provider_id,
            display_name=display_name[:256] if display_name else None,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=now + lifetime,
        )
        async with self.db.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.expires_at < now))
            await conn.execute(insert(sessions).values(**asdict(record), created_at=now))
        return cookie, record

    async def load_session(
        self, deployment: str, kind: str, cookie: str | None
    ) -> ConsoleSession | None:
        """The live session of this deployment and kind behind a cookie value, or ``None``."""
        if not cookie or len(cookie) > 128:
            return None
        await self.migrate()
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(sessions).where(
                        sessions.c.id_hash == hash_secret(cookie),
                        sessions.c.deployment == deployment,
                        sessions.c.kind == kind,
                    )
                )
            ).one_or_none()
        if row is None or row.expires_at <= self._now():
            return None
        return ConsoleSession(**{f.name: getattr(row, f.name) for f in fields(ConsoleSession)})

    async def end_session(self, session: ConsoleSession) -> None:
        """Sign out: the session row goes, so its cookie is worthless."""
        async with self.db.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.id_hash == session.id_hash))

    # --- users' sign-ins through a provider -----------------------------------------------

    async def begin_user_login(
        self, deployment: str, provider_id: str, state: str, code_verifier: str, lifetime: float
    ) -> None:
        """Remember an outgoing provider sign-in by the hash of its ``state``."""
        await self.migrate()
        now = self._now()
        async with self.db.begin() as conn:
            await conn.execute(delete(user_logins).where(user_logins.c.expires_at < now))
            await conn.execute(
                insert(user_logins).values(
                    state_hash=hash_secret(state),
                    deployment=deployment,
                    provider_id=provider_id,
                    code_verifier=code_verifier,
                    expires_at=now + lifetime,
                )
            )

    async def take_user_login(self, deployment: str, state: str) -> tuple[str, str] | None:
        """``(provider_id, code_verifier)`` of a pending sign-in, removed (single use)."""
        if not state or len(state) > 256:
            return None
        await self.migrate()
        key = and_(
            user_logins.c.state_hash == hash_secret(state),
            user_logins.c.deployment == deployment,
        )
        async with self.db.begin() as conn:
            row = (await conn.execute(select(user_logins).where(key))).one_or_none()
            if row is None:
                return None
            taken = await conn.execute(delete(user_logins).where(key))
        if not taken.rowcount or row.expires_at <= self._now():
            return None
        return str(row.provider_id), str(row.code_verifier)


def check_new_operator(username: str, password: str) -> None:
    """Raise ``ValueError`` unless the name and password are acceptable for a new account."""
    if not USERNAME.match(username):
        raise ValueError("operator names are 1-64 letters, digits, and . _ @ -")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must be at least {MIN_PASSWORD} characters")
