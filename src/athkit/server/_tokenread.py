"""The token lookup at the database's floor: the one read on every guarded or proxied call.

``validate_token`` reads the token row on every call and caches nothing, so a revocation (or a
suspension, which revokes) bites on the very next call on every process sharing the database
(ATH §4.7). That makes this read the hot path of the gateway's proxy and of a native service's
guard alike, and SQLAlchemy's async layer costs far more than the read itself:

* SQLite: aiosqlite runs each statement on a worker thread, several thread hand-offs per read
  (about 1 ms on a busy 2-core machine). :class:`SqliteTokenReader` reads through its own
  read-only ``sqlite3`` connection, synchronously, in tens of microseconds. It never waits on
  a lock (``busy_timeout`` 0: WAL readers do not wait for writers, and in the rare case SQLite
  answers ``SQLITE_BUSY`` the call goes to the async store instead) and reads pages that the OS
  keeps cached, so the event loop is not held.
* PostgreSQL: SQLAlchemy's pool pings each connection on checkout (``pool_pre_ping``, a second
  round trip) and wraps asyncpg in greenlets. :class:`PostgresTokenReader` keeps a small
  asyncpg pool of its own and runs one prepared ``SELECT``: one round trip per call.

Both fall back to the SQLAlchemy store when their own path fails (and skip their path for a
second), so a fault of the fast path is never a wrong answer: the async store answers, or fails
closed. Each read is a fresh statement outside any transaction, so it sees every committed
revocation.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from athkit.server._records import TokenRecord

_log = logging.getLogger("athkit.server")

_COLUMNS = (
    "token_id",
    "token_hash",
    "client_id",
    "agent_id",
    "user_id",
    "provider_id",
    "scopes",
    "created_at",
    "expires_at",
    "grant_id",
    "session_id",
    "revoked_at",
    "revoked_by",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM ath_tokens WHERE token_hash = "  # noqa: S608
_BACKOFF = 1.0  # seconds the fast path is skipped after it failed


class FastPathUnavailable(Exception):
    """The fast read could not be made; the caller uses the SQLAlchemy store."""


class TokenReader(Protocol):
    """Reads one token row by hash, or raises :class:`FastPathUnavailable`."""

    async def get_by_hash(self, token_hash: str) -> TokenRecord | None:
        """The committed row for ``token_hash``, or ``None``."""
        ...


def _record(row: tuple[Any, ...] | Any) -> TokenRecord:
    values = dict(zip(_COLUMNS, tuple(row), strict=True))
    scopes = values["scopes"]
    values["scopes"] = list(json.loads(scopes) if isinstance(scopes, str) else scopes)
    return TokenRecord(**values)


class SqliteTokenReader:
    """Synchronous, read-only, lock-free token reads on a SQLite file (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._skip_until = 0.0

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                f"file:{self._path}?mode=ro",
                uri=True,
                check_same_thread=False,
                isolation_level=None,  # autocommit: each SELECT is its own read transaction
            )
            conn.execute("PRAGMA busy_timeout=0")  # never wait on a lock on the event loop
            conn.execute("PRAGMA query_only=ON")
            self._conn = conn
        return self._conn

    async def get_by_hash(self, token_hash: str) -> TokenRecord | None:
        """One indexed read of the committed row."""
        if self._skip_until and time.monotonic() < self._skip_until:
            raise FastPathUnavailable
        try:
            # fetchall() ends the statement, and with it the read transaction (a half-read
            # cursor would pin an old snapshot and hide later revocations).
            rows = self._connection().execute(_SELECT + "?", (token_hash,)).fetchall()
        except sqlite3.Error as exc:
            _log.warning("fast token read failed (%s); using the async store", exc)
            self.close()
            self._skip_until = time.monotonic() + _BACKOFF
            raise FastPathUnavailable from None
        self._skip_until = 0.0
        return _record(rows[0]) if rows else None

    def close(self) -> None:
        """Close the read connection (it reopens on the next read)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PostgresTokenReader:
    """One prepared ``SELECT`` over a small asyncpg pool of its own (see the module doc).

    The pool is made on first use inside the running event loop (and again if the loop
    changes), and terminated when the SQLAlchemy engine is disposed.
    """

    def __init__(self, dsn: str, max_size: int = 10) -> None:
        self._dsn = dsn
        self._max_size = max_size
        self._pool: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Future[Any] | None = None
        self._skip_until = 0.0

    async def _get_pool(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._loop is loop:
            return self._pool
        if self._opening is not None and self._loop is loop:
            return await asyncio.shield(self._opening)
        self.close()
        asyncpg: Any = importlib.import_module("asyncpg")  # untyped; the postgres extra

        self._loop = loop
        self._opening = loop.create_future()
        try:
            pool = await asyncpg.create_pool(
                self._dsn, min_size=1, max_size=self._max_size, timeout=5
            )
        except BaseException as exc:
            self._opening.set_exception(exc)
            self._opening.exception()  # retrieved: no "never retrieved" warning
            self._opening = None
            raise
        self._pool = pool
        self._opening.set_result(pool)
        self._opening = None
        return pool

    async def get_by_hash(self, token_hash: str) -> TokenRecord | None:
        """One round trip for the committed row."""
        if self._skip_until and time.monotonic() < self._skip_until:
            raise FastPathUnavailable
        try:
            pool = await self._get_pool()
            row = await pool.fetchrow(_SELECT + "$1", token_hash)
        except Exception as exc:
            _log.warning("fast token read failed (%s); using the async store", type(exc).__name__)
            self.close()
            self._skip_until = time.monotonic() + _BACKOFF
            raise FastPathUnavailable from None
        self._skip_until = 0.0
        return _record(row) if row is not None else None

    def close(self) -> None:
        """Drop the pool's connections at once (no await: also called from engine disposal)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()


def token_reader(engine: AsyncEngine) -> TokenReader | None:
    """The fast reader for ``engine``'s database, or ``None`` (in-memory SQLite, others)."""
    url = engine.url
    backend = url.get_backend_name()
    reader: SqliteTokenReader | PostgresTokenReader
    if backend == "sqlite":
        if url.database in (None, "", ":memory:") or url.database.startswith("file:"):
            return None
        reader = SqliteTokenReader(Path(url.database))
    elif backend == "postgresql" and url.get_driver_name() == "asyncpg":
        reader = PostgresTokenReader(
            url.set(drivername="postgresql").render_as_string(hide_password=False)
        )
    else:
        return None

    @event.listens_for(engine.sync_engine, "engine_disposed")
    def _disposed(_engine: Any) -> None:
        reader.close()

    return reader
