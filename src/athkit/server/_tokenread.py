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
import sqlite3
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from athkit.server._fastpath import Backoff, FastPathUnavailable, fast_path
from athkit.server._records import TokenRecord
from athkit.server._waiters import Waiters

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
_SQLITE_SELECT = _SELECT + "?"
__all__ = ["FastPathUnavailable", "TokenReader", "token_reader"]


class TokenReader(Protocol):
    """Reads one token row by hash, or raises :class:`FastPathUnavailable`."""

    async def get_by_hash(self, token_hash: str) -> TokenRecord | None:
        """The committed row for ``token_hash``, or ``None``."""
        ...


_SCOPES_CACHE: dict[str, tuple[str, ...]] = {}


def _record(row: Any) -> TokenRecord:
    """A row (columns in ``_COLUMNS`` order, the dataclass's field order) as a record."""
    scopes = row[6]
    if isinstance(scopes, str):
        # Most tokens share a handful of scope sets: parse each JSON text once.
        parsed = _SCOPES_CACHE.get(scopes)
        if parsed is None:
            if len(_SCOPES_CACHE) >= 4096:
                _SCOPES_CACHE.clear()
            parsed = _SCOPES_CACHE[scopes] = tuple(json.loads(scopes))
        scopes = parsed
    # Positional, in field order: the hot path of every API call.
    r = row
    return TokenRecord(
        r[0], r[1], r[2], r[3], r[4], r[5], list(scopes), r[7], r[8], r[9], r[10], r[11], r[12]
    )


class SqliteTokenReader:
    """Synchronous, read-only, lock-free token reads on a SQLite file (see the module doc)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._backoff = Backoff("token read")

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
        self._backoff.check()
        try:
            # fetchall() ends the statement, and with it the read transaction (a half-read
            # cursor would pin an old snapshot and hide later revocations).
            rows = self._connection().execute(_SQLITE_SELECT, (token_hash,)).fetchall()
        except sqlite3.Error as exc:
            self.close()
            raise self._backoff.failed(exc) from None
        self._backoff.succeeded()
        return _record(rows[0]) if rows else None

    def close(self) -> None:
        """Close the read connection (it reopens on the next read)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PostgresTokenReader:
    """One prepared ``SELECT`` per call over a few asyncpg connections of its own.

    Not asyncpg's ``Pool``: its acquire/release (timeouts, proxies, a reset round trip per
    release) cost more than the read. Here a connection is popped from an idle list, runs its
    prepared statement and is pushed back; up to ``max_size`` are opened on demand, inside the
    running event loop (again if the loop changes); further callers wait their turn. All are
    closed when the SQLAlchemy engine is disposed.
    """

    def __init__(self, dsn: str, timeout: float = 5.0, max_size: int = 8) -> None:
        self._dsn = dsn
        # Bounds the connect and each read: a hung server must not hold a call (it then falls
        # back to the async store, which is bounded by the same timeout and fails closed).
        self._timeout = timeout
        self._max_size = max_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[tuple[Any, Any]] = []  # (connection, prepared statement)
        self._open: set[Any] = set()
        self._waiters: Waiters[tuple[Any, Any] | None] = Waiters()
        self._backoff = Backoff("token read")

    async def _acquire(self) -> tuple[Any, Any]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self.close()
            self._loop = loop
        while self._idle:
            pair = self._idle.pop()
            if not pair[0].is_closed():
                return pair
            self._open.discard(pair[0])
        if len(self._open) >= self._max_size:
            pair_or_none = await self._waiters.join()
            if pair_or_none is not None:
                return pair_or_none
            # A connection was dropped: its slot is ours, open a new one below.
        asyncpg: Any = importlib.import_module("asyncpg")  # untyped; the postgres extra
        placeholder = object()
        self._open.add(placeholder)  # the slot is taken while connecting
        try:
            conn = await asyncpg.connect(self._dsn, timeout=self._timeout)
            try:
                statement = await conn.prepare(_SELECT + "$1")
            except BaseException:
                conn.terminate()
                raise
        except BaseException:
            self._free_slot()
            raise
        finally:
            self._open.discard(placeholder)
        self._open.add(conn)
        return conn, statement

    def _release(self, pair: tuple[Any, Any], broken: bool) -> None:
        if broken or pair[0].is_closed():
            pair[0].terminate()
            self._open.discard(pair[0])
            self._free_slot()
            return
        if not self._waiters.hand_over(pair):
            self._idle.append(pair)

    def _free_slot(self) -> None:
        """A slot became free: let one waiter open a connection in it."""
        self._waiters.hand_over(None)

    async def get_by_hash(self, token_hash: str) -> TokenRecord | None:
        """One round trip for the committed row."""
        self._backoff.check()
        try:
            pair = await self._acquire()
        except Exception as exc:
            raise self._backoff.failed(exc) from None
        try:
            row = await pair[1].fetchrow(token_hash, timeout=self._timeout)
        except BaseException as exc:
            self._release(pair, broken=True)
            if isinstance(exc, Exception):
                raise self._backoff.failed(exc) from None
            raise
        self._release(pair, broken=False)
        self._backoff.succeeded()
        return _record(row) if row is not None else None

    def close(self) -> None:
        """Drop every connection at once (no await: also called from engine disposal)."""
        idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.terminate()
        for conn in self._open:
            if hasattr(conn, "terminate"):
                conn.terminate()
        self._open = set()
        self._waiters.fail_all(ConnectionError("token reader closed"))


def token_reader(db: AsyncEngine) -> TokenReader | None:
    """The fast reader for ``db``'s database, or ``None`` (in-memory SQLite, others)."""
    return fast_path(db, SqliteTokenReader, PostgresTokenReader)
