"""Database URLs and async engines."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def normalize_database_url(url: str) -> str:
    """Map a plain URL (``sqlite:///ath.db``, ``postgresql://...``) onto its async driver."""
    parsed = make_url(url)
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is not None:
        parsed = parsed.set(drivername=driver)
    return parsed.render_as_string(hide_password=False)


def _is_memory_sqlite(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def create_database(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    timeout: float = 5.0,
    **kwargs: Any,
) -> AsyncEngine:
    """The database at ``url`` (a SQLAlchemy ``AsyncEngine``; athkit keeps the word "engine"
    for the ATH engine). SQLite gets WAL, foreign keys and a busy timeout.

    On PostgreSQL the pool keeps ``pool_size`` connections (plus up to ``max_overflow`` under
    load), and ``timeout`` seconds bound each wait: the connection attempt, a pool checkout and
    each statement, so a hung or unreachable server refuses requests in time rather than holding
    them. There is no pre-ping (it costs a round trip per checkout): a connection the server
    dropped fails its statement once, SQLAlchemy then invalidates the pool, and the next request
    connects afresh.
    """
    async_url = normalize_database_url(url)
    if make_url(async_url).get_backend_name() != "sqlite":
        if "poolclass" not in kwargs:
            kwargs.setdefault("pool_size", pool_size)
            kwargs.setdefault("max_overflow", max_overflow)
            kwargs.setdefault("pool_timeout", timeout)
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", timeout)
        connect_args.setdefault("command_timeout", timeout)
        return create_async_engine(async_url, connect_args=connect_args, **kwargs)
    if _is_memory_sqlite(async_url):
        # An in-memory database lives and dies with its one connection. Sharing that connection
        # between concurrent requests (StaticPool) interleaves their transactions on it, so one
        # request's commit or rollback ends another's half-done work and writes are lost. A
        # pool of exactly one connection, never recycled, hands it to one user at a time;
        # the others wait their turn (pool_timeout) like writers of a SQLite file do.
        kwargs.setdefault("poolclass", AsyncAdaptedQueuePool)
        kwargs.setdefault("pool_size", 1)
        kwargs.setdefault("max_overflow", 0)
        kwargs.setdefault("pool_recycle", -1)
        kwargs.setdefault("pool_timeout", 30)
    kwargs.setdefault("connect_args", {"timeout": 30})
    engine = create_async_engine(async_url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine
