"""What the database fast paths share: where they connect, how they fail over, when they close.

The token read (``_tokenread``) and the audit batch write (``_auditwrite``) bypass SQLAlchemy
on the gateway's hot path and talk to the driver directly. Each is only an optimisation: when
its own path fails it raises :class:`FastPathUnavailable`, skips that path for a second
(:class:`Backoff`), and the caller uses the SQLAlchemy store, which answers or fails closed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

_log = logging.getLogger("athkit.server")

BACKOFF_SECONDS = 1.0  # how long a failed fast path is skipped


class _Closing(Protocol):
    def close(self) -> None: ...


_S = TypeVar("_S", bound=_Closing)
_Q = TypeVar("_Q", bound=_Closing)


class FastPathUnavailable(Exception):
    """The fast path could not be taken; the caller uses the SQLAlchemy store."""


class Backoff:
    """Skip a fast path for :data:`BACKOFF_SECONDS` after it failed."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._skip_until = 0.0

    def check(self) -> None:
        """Raise :class:`FastPathUnavailable` while the path is being skipped."""
        if self._skip_until and time.monotonic() < self._skip_until:
            raise FastPathUnavailable

    def failed(self, exc: BaseException) -> FastPathUnavailable:
        """Log the failure (its type only: the text may hold a URL), start skipping, and return
        the exception for the caller to raise."""
        _log.warning("fast %s failed (%s); using the async store", self._what, type(exc).__name__)
        self._skip_until = time.monotonic() + BACKOFF_SECONDS
        return FastPathUnavailable()

    def succeeded(self) -> None:
        """The path works again."""
        self._skip_until = 0.0


def sqlite_file(db: AsyncEngine) -> Path | None:
    """The database file behind a SQLite engine (``None``: another database, or in memory)."""
    url = db.url
    if url.get_backend_name() != "sqlite":
        return None
    if url.database in (None, "", ":memory:") or url.database.startswith("file:"):
        return None
    return Path(url.database)


def asyncpg_target(db: AsyncEngine) -> tuple[str, float] | None:
    """The plain DSN and the timeout (the pool's) of a PostgreSQL engine on asyncpg."""
    url = db.url
    if url.get_backend_name() != "postgresql" or url.get_driver_name() != "asyncpg":
        return None
    pool_timeout = getattr(db.sync_engine.pool, "timeout", None)
    timeout = float(pool_timeout()) if callable(pool_timeout) else 5.0
    return url.set(drivername="postgresql").render_as_string(hide_password=False), timeout


def close_on_dispose(db: AsyncEngine, close: Callable[[], None]) -> None:
    """Call ``close`` when the engine is disposed (the fast path's connections go with it)."""

    @event.listens_for(db.sync_engine, "engine_disposed")
    def _disposed(_engine: Any) -> None:
        close()


def fast_path(
    db: AsyncEngine,
    on_sqlite: Callable[[Path], _S],
    on_postgres: Callable[[str, float], _Q],
) -> _S | _Q | None:
    """The fast path for ``db``'s database — ``on_sqlite(file)`` or ``on_postgres(dsn,
    timeout)`` — closed with the engine; ``None`` for other databases and in-memory SQLite."""
    path = sqlite_file(db)
    made: _S | _Q
    if path is not None:
        made = on_sqlite(path)
    elif (target := asyncpg_target(db)) is not None:
        # The database's own timeout (create_database's pool timeout) bounds this path too.
        made = on_postgres(*target)
    else:
        return None
    close_on_dispose(db, made.close)
    return made
