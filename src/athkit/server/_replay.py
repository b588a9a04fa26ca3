"""The jti replay store (ATH §2: keep every seen ``jti`` until its ``exp``; reject a duplicate).

Four implementations of one small interface:

    MemoryReplayStore   one process, tests and development
    SqlReplayStore      SQLAlchemy 2 async (SQLite, PostgreSQL); table ``seen_jti``
    RedisReplayStore    redis.asyncio, ``SET key agent_id NX EXAT exp``; shared by instances
    LayeredReplayStore  Redis first, then the database: what several instances use

Each answers "was this jti never seen?" atomically, so two concurrent requests carrying the
same attestation cannot both pass. A store that cannot answer (database or Redis unreachable or
too slow) raises ``ATHError(INTERNAL_ERROR)`` with status 503 and a message naming the service:
the caller fails closed.

Why the layered store, and not Redis alone: a ``jti`` must stay refused for the whole life of its
attestation, and Redis may lose its memory within that life — a restart without persistence, a
``FLUSHALL``, a failover to a replica that had not received the last writes, or eviction under
``maxmemory``. Checking the Redis start time or requiring persistence covers some of these and
not others (a flush or an eviction leaves no trace). The database is already the instances'
shared, durable truth for every other record, and its primary key on ``jti`` is the same atomic
check, so the replay record is written there too: Redis refuses the common replays without
touching the database, the database refuses the ones Redis forgot. It costs one indexed insert
per attestation (handshake steps only; the proxy's token checks carry no attestation).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sqlalchemy import BigInteger, Column, Index, String, Table, delete, insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from athkit.protocol import ATHError, ErrorCode
from athkit.server._clock import ClockLike, time_source
from athkit.server._tables import metadata

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("athkit.server.replay")


seen_jti = Table(
    "seen_jti",
    metadata,
    Column("jti", String(256), primary_key=True),
    Column("agent_id", String(2048), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_seen_jti_expires_at", "expires_at"),
)


@runtime_checkable
class ReplayStore(Protocol):
    """Remembers attestation ``jti`` values until they expire."""

    async def add_if_new(self, jti: str, agent_id: str, expires_at: int) -> bool:
        """Record ``jti``; True if it was never seen, False if it is a replay.

        The jti is kept at least until ``expires_at`` (epoch seconds) and may be purged after.
        Raises ``ATHError(INTERNAL_ERROR)`` when the store cannot answer.
        """
        ...


_SERVICES = {"sql": "the database", "redis": "Redis"}


def _store_fault(store: str, exc: BaseException) -> ATHError:
    logger.error("replay store %s failed: %s: %s", store, type(exc).__name__, exc)
    service = _SERVICES.get(store, store)
    return ATHError(
        ErrorCode.INTERNAL_ERROR,
        f"{service} (attestation replay store) is unavailable, so attestations are refused; "
        "try again later",
        details={"reason": "replay_store_unavailable", "service": store},
        status=503,
    )


class MemoryReplayStore:
    """An in-process store for tests and development: lost on restart, not shared."""

    def __init__(self, *, clock: ClockLike = time.time) -> None:
        self._clock = time_source(clock)
        self._seen: dict[str, int] = {}
        self._expiry: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return len(self._seen)

    async def add_if_new(self, jti: str, agent_id: str, expires_at: int) -> bool:
        """Record ``jti``; True if it was never seen (no await inside: atomic on the loop)."""
        self.purge_expired()
        if jti in self._seen:
            return False
        self._seen[jti] = expires_at
        heapq.heappush(self._expiry, (expires_at, jti))
        return True

    def purge_expired(self) -> int:
        """Forget every jti whose ``exp`` has passed; return how many were forgotten."""
        now = self._clock()
        purged = 0
        while self._expiry and self._expiry[0][0] <= now:
            _, jti = heapq.heappop(self._expiry)
            del self._seen[jti]
            purged += 1
        return purged


class SqlReplayStore:
    """The ``seen_jti`` table through an async SQLAlchemy engine (SQLite or PostgreSQL).

    The primary key on ``jti`` makes the insert the atomic check: of two concurrent inserts of
    one jti, the database lets exactly one commit. Expired rows are deleted at most once per
    ``purge_interval`` seconds, piggybacked on an insert, or by calling :meth:`purge_expired`.
    Create the table with ``athkit.server.migrate_server_schema(engine)``.
    """

    def __init__(
        self,
        db: AsyncEngine,
        *,
        clock: ClockLike = time.time,
        purge_interval: float = 60.0,
        timeout: float = 5.0,
    ) -> None:
        self._engine = db.execution_options(isolation_level="AUTOCOMMIT")
        self._clock = time_source(clock)
        self._purge_interval = purge_interval
        self._timeout = timeout
        self._next_purge = 0.0

    async def add_if_new(self, jti: str, agent_id: str, expires_at: int) -> bool:
        """Insert ``jti``; True if the insert committed, False if the jti was already there."""
        try:
            async with asyncio.timeout(self._timeout):
                now = self._clock()
                if now >= self._next_purge:
                    self._next_purge = now + self._purge_interval
                    await self._purge(now)
                async with self._engine.begin() as conn:
                    await conn.execute(
                        insert(seen_jti).values(
                            jti=jti, agent_id=agent_id, expires_at=int(expires_at)
                        )
                    )
            return True
        except IntegrityError:
            return False
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise _store_fault("sql", exc) from None

    async def purge_expired(self) -> int:
        """Delete every row whose ``expires_at`` has passed; return how many."""
        try:
            async with asyncio.timeout(self._timeout):
                return await self._purge(self._clock())
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise _store_fault("sql", exc) from None

    async def _purge(self, now: float) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(seen_jti).where(seen_jti.c.expires_at <= int(now)))
        return int(result.rowcount or 0)


class RedisReplayStore:
    """One Redis key per jti, ``SET <prefix><jti> <agent_id> NX EXAT <exp>``.

    ``NX`` makes the check atomic across every instance sharing the Redis; ``EXAT`` lets Redis
    drop the key when the attestation expires, so nothing needs purging.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "ath:jti:",
        clock: ClockLike = time.time,
        owns_client: bool = False,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._clock = time_source(clock)
        self._owns_client = owns_client

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "ath:jti:",
        clock: ClockLike = time.time,
        timeout: float = 1.0,
    ) -> RedisReplayStore:
        """A store on its own client for ``url`` (``redis://host:port/db``), closed by aclose."""
        from redis.asyncio import Redis

        client = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return cls(client, prefix=prefix, clock=clock, owns_client=True)

    async def add_if_new(self, jti: str, agent_id: str, expires_at: int) -> bool:
        """``SET NX``; True if the key was created, False if it already existed."""
        from redis.exceptions import RedisError

        # A past EXAT would drop the key at once; keep it at least one second.
        exat = max(int(expires_at), int(self._clock()) + 1)
        try:
            created = await self._redis.set(self._prefix + jti, agent_id, nx=True, exat=exat)
        except (RedisError, OSError, TimeoutError) as exc:
            raise _store_fault("redis", exc) from None
        return bool(created)

    async def ping(self) -> None:
        """Raise unless Redis answers (readiness probes)."""
        await self._redis.ping()

    async def aclose(self) -> None:
        """Close the client if this store created it."""
        if self._owns_client:
            await self._redis.aclose()


class LayeredReplayStore:
    """Redis (shared, fast) in front of the database (shared, durable); see the module docstring.

    A jti is new only if both agree: Redis ``SET NX`` first (a replay Redis still remembers is
    refused there), then the database insert (a replay Redis forgot is refused there). If Redis
    has the key but the database insert never happened (a crash between the two), the jti stays
    refused, which is the safe side. Either service failing fails the check closed.
    """

    def __init__(self, shared: RedisReplayStore, durable: SqlReplayStore) -> None:
        self.shared = shared
        self.durable = durable

    async def add_if_new(self, jti: str, agent_id: str, expires_at: int) -> bool:
        """True only if neither Redis nor the database has seen ``jti``."""
        if not await self.shared.add_if_new(jti, agent_id, expires_at):
            return False
        return await self.durable.add_if_new(jti, agent_id, expires_at)

    async def aclose(self) -> None:
        """Close the Redis client if the Redis store owns it."""
        await self.shared.aclose()
