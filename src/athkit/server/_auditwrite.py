"""Batches of audit rows at the database's floor: the write behind every proxied or checked call.

The gateway queues one ``proxy_request`` event per forwarded call and stores them in batches
(``AuditQueue``). Through SQLAlchemy a batch costs far more than the rows themselves: binding,
JSON processors and statement compilation run per row, about 50 µs of Python each, which on the
proxy's hot path is more than the token check and the access check together. These writers
insert the same rows, serialised once, through the driver directly:

* SQLite: a ``sqlite3`` connection of its own on one dedicated thread (``executemany`` in one
  ``BEGIN IMMEDIATE`` transaction). The thread may wait for the database's write lock
  (``busy_timeout``, as the engine's connections do); the event loop never does.
* PostgreSQL: one asyncpg connection of its own and ``COPY`` of the batch, one round trip.

Each writer stores the batch whole or not at all. When it fails (locked past its timeout, the
server gone) it raises :class:`~athkit.server._fastpath.FastPathUnavailable`, skips its path for
a second, and the store writes the batch through SQLAlchemy instead, which fails closed. Rows are
what :class:`~athkit.server._sql.SqlAuditStore` would store: JSON columns as ``json.dumps``
text, NUL replaced by U+FFFD.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from athkit.server._fastpath import Backoff, fast_path
from athkit.server._records import AuditEvent

AUDIT_TABLE = "ath_audit_events"
AUDIT_COLUMNS = (
    "event",
    "timestamp",
    "agent_id",
    "client_id",
    "user_id",
    "provider_id",
    "requested_scopes",
    "effective_scopes",
    "denied_scopes",
    "reason",
    "code",
    "details",
)
_SQLITE_BUSY_MS = 30_000  # as the engine's own SQLite connections


class AuditWriter(Protocol):
    """Stores a batch of audit events whole, or raises ``FastPathUnavailable``."""

    async def write(self, events: Sequence[AuditEvent]) -> None:
        """Insert ``events`` in one transaction."""
        ...


def without_nul(value: Any) -> Any:
    """``value`` with NUL in every string replaced by U+FFFD (PostgreSQL cannot store NUL in
    text, and an audited rejection must not fail on the hostile input it records)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    return value


def _text(value: str | None) -> str | None:
    return value.replace("\x00", "\ufffd") if value is not None and "\x00" in value else value


_encode = json.JSONEncoder().encode  # json.dumps' defaults, as SQLAlchemy's JSON type writes


def _json(value: Any) -> str:
    if not value:
        return "[]" if isinstance(value, list) else "{}"  # most scope lists of an event
    text = _encode(value)
    # NUL is written "\u0000" by the encoder; only then is the value walked to replace it.
    return text if "\\u0000" not in text else _encode(without_nul(value))


def audit_row(event: AuditEvent) -> tuple[Any, ...]:
    """``event`` as the values of :data:`AUDIT_COLUMNS`, JSON columns serialised."""
    return (
        _text(event.event),
        event.timestamp,
        _text(event.agent_id),
        _text(event.client_id),
        _text(event.user_id),
        _text(event.provider_id),
        _json(event.requested_scopes),
        _json(event.effective_scopes),
        _json(event.denied_scopes),
        _text(event.reason),
        _text(event.code),
        _json(event.details),
    )


class SqliteAuditWriter:
    """Batch inserts through a ``sqlite3`` connection on a thread of its own."""

    _INSERT = (
        f"INSERT INTO {AUDIT_TABLE} ({', '.join(AUDIT_COLUMNS)}) "  # noqa: S608
        f"VALUES ({', '.join('?' * len(AUDIT_COLUMNS))})"
    )

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        # One thread: batches are written one after another, and the connection stays on it.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="athkit-audit")
        self._backoff = Backoff("audit write")

    async def write(self, events: Sequence[AuditEvent]) -> None:
        """Insert ``events`` in one transaction on the writer thread."""
        self._backoff.check()
        rows = [audit_row(e) for e in events]
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._insert, rows)
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            raise self._backoff.failed(exc) from None
        self._backoff.succeeded()

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(self._INSERT, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error:
            self._close_connection()
            raise

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Close the connection on its thread, then stop the thread (no await: also called
        from engine disposal)."""
        try:
            self._thread.submit(self._close_connection)
        except RuntimeError:
            return  # already shut down
        self._thread.shutdown(wait=False)


class PostgresAuditWriter:
    """``COPY`` of each batch over one asyncpg connection of its own."""

    def __init__(self, dsn: str, timeout: float = 5.0) -> None:
        self._dsn = dsn
        self._timeout = timeout  # bounds the connect and each COPY: a hung server fails over
        self._conn: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._backoff = Backoff("audit write")

    async def write(self, events: Sequence[AuditEvent]) -> None:
        """``COPY`` ``events`` into the audit table (one statement: all rows or none)."""
        self._backoff.check()
        rows = [audit_row(e) for e in events]
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self.close()
            self._loop, self._lock = loop, asyncio.Lock()
        assert self._lock is not None
        async with self._lock:
            try:
                if self._conn is None or self._conn.is_closed():
                    asyncpg: Any = importlib.import_module("asyncpg")  # untyped; postgres extra
                    self._conn = await asyncpg.connect(self._dsn, timeout=self._timeout)
                await self._conn.copy_records_to_table(
                    AUDIT_TABLE, records=rows, columns=AUDIT_COLUMNS, timeout=self._timeout
                )
            except Exception as exc:
                self.close()
                raise self._backoff.failed(exc) from None
        self._backoff.succeeded()

    def close(self) -> None:
        """Drop the connection at once (no await: also called from engine disposal)."""
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None


def audit_writer(db: AsyncEngine) -> AuditWriter | None:
    """The fast batch writer for ``db``'s database, or ``None`` (in-memory SQLite, others)."""
    return fast_path(db, SqliteAuditWriter, PostgresAuditWriter)
