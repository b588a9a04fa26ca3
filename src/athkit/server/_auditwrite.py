"""Batches of audit rows at the database's floor: the write behind every proxied or checked call.

The gateway queues one ``proxy_request`` event per forwarded call and stores them in batches
(``AuditQueue``). Through SQLAlchemy a batch costs far more than the rows themselves: binding,
JSON processors and statement compilation run per row, about 50 µs of Python each, which on the
proxy's hot path is more than the token check and the access check together. These writers
insert the same rows, serialised once, through the driver directly:

* SQLite: ``executemany`` in one ``BEGIN IMMEDIATE`` transaction through a ``sqlite3``
  connection of its own, on the event loop while the write lock is free (it never waits there)
  and on a thread of its own when another writer holds the lock (see
  :class:`SqliteAuditWriter`).
* PostgreSQL: one asyncpg connection of its own and ``COPY`` of the batch, one round trip.

Each writer stores the batch whole or not at all. When it fails (locked past its timeout, the
server gone) it raises :class:`~athkit.server._fastpath.FastPathUnavailable`, skips its path for
a second, and the store writes the batch through SQLAlchemy instead, which fails closed. Rows are
what :class:`~athkit.server._sql.SqlAuditStore` would store: JSON columns as ``json.dumps``
text, NUL replaced by U+FFFD.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from athkit.server._fastpath import Backoff, fast_path
from athkit.server._records import AuditEvent

_log = logging.getLogger("athkit.server")

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
CHECKPOINT_BYTES = 4 * 1024 * 1024  # the WAL size SQLite's own auto-checkpoint keeps (1000 pages)
_WAL_HARD_LIMIT = 4  # times CHECKPOINT_BYTES: past it, batches wait for a checkpoint


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


_encode = json.JSONEncoder().encode  # json.dumps' defaults, as SQLAlchemy's JSON type writes


def _json(value: Any) -> str:
    if not value and isinstance(value, list | dict):
        return "[]" if isinstance(value, list) else "{}"  # most scope lists of an event
    text = _encode(value)
    # NUL is written "\u0000" by the encoder; only then is the value walked to replace it.
    return text if "\\u0000" not in text else _encode(without_nul(value))


def audit_row(event: AuditEvent) -> tuple[Any, ...]:
    """``event`` as the values of :data:`AUDIT_COLUMNS`, JSON columns serialised."""
    return (
        without_nul(event.event),
        event.timestamp,
        without_nul(event.agent_id),
        without_nul(event.client_id),
        without_nul(event.user_id),
        without_nul(event.provider_id),
        _json(event.requested_scopes),
        _json(event.effective_scopes),
        _json(event.denied_scopes),
        without_nul(event.reason),
        without_nul(event.code),
        _json(event.details),
    )


class SqliteAuditWriter:
    """Batch inserts through ``sqlite3``: on the event loop while the write lock is free, on a
    thread of its own when another writer holds it.

    A batch of a few dozen rows costs well under a millisecond, less than handing it to a thread
    and back (and the two would contend for the GIL row by row). On the loop the connection never
    waits (``busy_timeout`` 0): when the database is locked the batch goes to the thread, which
    waits for the lock as the engine's own connections do. The loop's connection does not
    checkpoint the WAL either (a checkpoint writes and syncs the database file): once the WAL
    passes :data:`CHECKPOINT_BYTES`, the thread runs a passive checkpoint beside the loop. A
    checkpoint that races new batches cannot reset the WAL, so past four times that size the
    batch goes to the thread, which checkpoints after it while the loop waits.
    """

    _INSERT = (
        f"INSERT INTO {AUDIT_TABLE} ({', '.join(AUDIT_COLUMNS)}) "  # noqa: S608
        f"VALUES ({', '.join('?' * len(AUDIT_COLUMNS))})"
    )

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wal = Path(f"{path}-wal")
        self._now: sqlite3.Connection | None = None  # on the event loop, never waits
        self._conn: sqlite3.Connection | None = None  # on the thread, waits for the lock
        # One thread: its batches and checkpoints run one after another on its connection.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="athkit-audit")
        self._checkpointing = False
        self._backoff = Backoff("audit write")

    async def write(self, events: Sequence[AuditEvent]) -> None:
        """Insert ``events`` in one transaction: now if the lock is free, else on the thread."""
        self._backoff.check()
        rows = [audit_row(e) for e in events]
        try:
            wal = self._wal_size()
            # Far past its bound the WAL is not being reset (checkpoints racing new batches):
            # this batch and a checkpoint run on the thread while the loop waits, so it is.
            if wal <= _WAL_HARD_LIMIT * CHECKPOINT_BYTES and self._insert_now(rows):
                if wal > CHECKPOINT_BYTES and not self._checkpointing:
                    self._checkpointing = True
                    self._thread.submit(self._checkpoint)
            else:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._thread, self._insert_waiting, rows)
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            raise self._backoff.failed(exc) from None
        self._backoff.succeeded()

    def _wal_size(self) -> int:
        try:
            return self._wal.stat().st_size
        except FileNotFoundError:
            return 0

    def _insert_now(self, rows: list[tuple[Any, ...]]) -> bool:
        """Insert on the calling thread without waiting; ``False`` if the database is locked."""
        if self._now is None:
            self._now = self._connect(busy_ms=0, autocheckpoint=0)
        try:
            self._now.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return False
            self._now = _closed(self._now)
            raise
        self._insert(self._now, rows)
        return True

    def _insert_waiting(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert on the writer thread, waiting for the write lock; then checkpoint."""
        if self._conn is None:
            self._conn = self._connect(busy_ms=_SQLITE_BUSY_MS)
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            self._conn = _closed(self._conn)
            raise
        self._insert(self._conn, rows)
        self._checkpoint()

    def _insert(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        """The rows and the commit, in the transaction ``conn`` has begun."""
        try:
            conn.executemany(self._INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _connect(self, busy_ms: int, autocheckpoint: int | None = None) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={busy_ms}")
        conn.execute("PRAGMA synchronous=NORMAL")
        if autocheckpoint is not None:
            conn.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint}")
        return conn

    def _checkpoint(self) -> None:
        try:
            if self._conn is None:
                self._conn = self._connect(busy_ms=_SQLITE_BUSY_MS)
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            _log.warning("audit WAL checkpoint failed (%s)", type(exc).__name__)
            self._conn = _closed(self._conn)
        finally:
            self._checkpointing = False

    def close(self) -> None:
        """Close both connections and stop the thread (no await: also called from engine
        disposal)."""
        self._now = _closed(self._now)
        try:
            self._thread.submit(self._close_thread_connection)
        except RuntimeError:
            return  # already shut down
        self._thread.shutdown(wait=False)

    def _close_thread_connection(self) -> None:
        self._conn = _closed(self._conn)


def _closed(conn: sqlite3.Connection | None) -> sqlite3.Connection | None:
    """Close ``conn`` if there is one; ``None``, to store in its place (reopened on next use)."""
    if conn is not None:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
    return None


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
