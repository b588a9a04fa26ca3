"""``build_engine(settings)``: every store and shared service of an engine, chosen from URLs in
one place — for the gateway, a native service, the demo and the benches alike.

- ``database_url``: ``memory://`` (tests and demos: lost at exit), SQLite (the default) or
  PostgreSQL (pooled as ``database_pool_size`` / ``database_max_overflow`` say); either way the
  token store reads tokens through its fast path (``athkit.server._tokenread``). The schema
  is migrated at start-up under a database lock (``migrate_on_start``), or checked and refused
  when unknown.
- ``redis_url``: when set, seen ``jti`` are answered by Redis first (and kept in the database
  too, so a Redis that forgets cannot let a replay through) and the rate-limit counters are
  shared by every instance (unless ``rate_limit.backend = "memory"``).
- the attestation verifier follows the fetch policy (``allow_loopback``, ``allow_http``,
  ``allow_private_networks``); the OAuth bridge is an HTTP client.

Anything passed in (``stores``, ``verifier``, ``limiter``, ``oauth``, ``clock``) replaces the
default, for embedding and tests. :meth:`BuiltEngine.start` and :meth:`BuiltEngine.aclose`
belong in the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypedDict

from sqlalchemy.ext.asyncio import AsyncEngine

from athkit.server._access import AccessCheck
from athkit.server._clock import Clock, SystemClock
from athkit.server._engine import ATHEngine
from athkit.server._fetch import FetchPolicy
from athkit.server._memory import memory_stores
from athkit.server._oauth import HttpOAuthBridge, OAuthBridge
from athkit.server._ports import AgentVerifier, ConsentContextFactory
from athkit.server._ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from athkit.server._replay import (
    LayeredReplayStore,
    MemoryReplayStore,
    RedisReplayStore,
    ReplayStore,
    SqlReplayStore,
)
from athkit.server._schema import check_server_schema, migrate_server_schema
from athkit.server._settings import ServerSettings
from athkit.server._sql import sql_stores
from athkit.server._stores import EngineStores
from athkit.server._verifier import AttestationVerifier
from athkit.storage import SchemaError, create_database

_log = logging.getLogger("athkit.server")

Closer = Callable[[], Awaitable[object]]


class EngineParts(TypedDict, total=False):
    """Parts that replace what :func:`build_engine` would pick from the settings (for embedding
    and tests); ``create_native_app`` and ``create_gateway_app`` take them too and pass them on."""

    stores: EngineStores | None
    verifier: AgentVerifier | None
    limiter: RateLimiter | None
    oauth: OAuthBridge | None
    clock: Clock | None


@dataclass
class BuiltEngine:
    """An engine with the services it was built on, and their life cycle."""

    engine: ATHEngine
    access: AccessCheck
    limiter: RateLimiter
    database: AsyncEngine | None = None
    redis_ping: Closer | None = None
    _closers: list[Closer] = field(default_factory=list, repr=False)

    async def start(self) -> None:
        """Migrate (or check) the schema; call once, in the app's start-up."""
        if self.database is None:
            return
        try:
            if self.engine.settings.migrate_on_start:
                # Under a database lock: replicas may start together.
                await migrate_server_schema(self.database)
            else:
                await check_server_schema(self.database)
        except SchemaError as exc:
            _log.error("refusing to start: %s", exc)
            raise

    async def aclose(self) -> None:
        """Close every connection this engine opened (best effort, in reverse order)."""
        for close in reversed(self._closers):
            with contextlib.suppress(Exception):
                await close()
        self._closers.clear()

    async def readiness(self) -> dict[str, str]:
        """One entry per backing service: ``ok`` or ``failing (reason)``."""
        timeout = self.engine.settings.database_timeout
        checks = {
            "database": await _probe(
                lambda: self.engine.stores.tokens.get_by_hash("readyz-probe"), timeout
            )
        }
        if self.redis_ping is not None:
            checks["redis"] = await _probe(self.redis_ping, timeout)
        ping = getattr(self.limiter, "ping", None)
        if ping is not None:
            checks["rate_limiter"] = await _probe(ping, timeout)
        return checks


def build_engine(
    settings: ServerSettings,
    *,
    stores: EngineStores | None = None,
    verifier: AgentVerifier | None = None,
    limiter: RateLimiter | None = None,
    oauth: OAuthBridge | None = None,
    clock: Clock | None = None,
    audit_logger: logging.Logger | None = None,
    consent_context: ConsentContextFactory | None = None,
) -> BuiltEngine:
    """The engine for ``settings``, with every store picked from its URLs (module docstring)."""
    closers: list[Closer] = []
    time_source = clock or SystemClock()
    db: AsyncEngine | None = None
    if stores is None:
        stores, db = _stores(settings, closers)
    redis_ping: Closer | None = None
    if verifier is None:
        replay = _replay_store(settings, db, time_source, closers)
        shared = replay.shared if isinstance(replay, LayeredReplayStore) else replay
        if isinstance(shared, RedisReplayStore):
            redis_ping = shared.ping
        own_verifier = AttestationVerifier(
            replay_store=replay,
            fetcher=FetchPolicy(
                allow_http=settings.allow_http,
                allow_loopback=settings.allow_loopback,
                allow_private=settings.allow_private_networks,
            ),
            clock=time_source.now,
        )
        closers.append(own_verifier.aclose)
        verifier = own_verifier
    if oauth is None:
        http_bridge = HttpOAuthBridge()
        closers.append(http_bridge.aclose)
        oauth = http_bridge
    if limiter is None:
        limiter = _rate_limiter(settings)
    closers.append(limiter.aclose)
    engine = ATHEngine(
        settings,
        stores=stores,
        verifier=verifier,
        oauth=oauth,
        clock=time_source,
        audit_logger=audit_logger,
        consent_context=consent_context,
    )
    access = AccessCheck(engine, limiter=limiter, rate=settings.rate_limit)
    return BuiltEngine(engine, access, limiter, db, redis_ping, closers)


def _stores(
    settings: ServerSettings, closers: list[Closer]
) -> tuple[EngineStores, AsyncEngine | None]:
    if settings.database_url.startswith("memory:"):
        _log.warning("memory stores: every registration and token is lost at restart")
        return memory_stores(), None
    db = create_database(settings.database_url, **settings.database_options())
    closers.append(db.dispose)
    return sql_stores(db), db


def _replay_store(
    settings: ServerSettings, db: AsyncEngine | None, clock: Clock, closers: list[Closer]
) -> ReplayStore:
    # Replay records live in the database (durable, shared); with Redis, Redis answers first
    # and the database keeps what Redis may forget (see athkit.server._replay).
    sql = (
        SqlReplayStore(db, clock=clock.now, timeout=settings.database_timeout)
        if db is not None
        else None
    )
    if settings.redis_url is not None:
        redis_store = RedisReplayStore.from_url(
            settings.redis_url, clock=clock.now, timeout=settings.redis_timeout
        )
        closers.append(redis_store.aclose)
        return LayeredReplayStore(redis_store, sql) if sql is not None else redis_store
    if sql is not None:
        return sql
    return MemoryReplayStore(clock=clock.now)


def _rate_limiter(settings: ServerSettings) -> RateLimiter:
    rate = settings.rate_limit
    redis_url = rate.redis_url or settings.redis_url
    # With a Redis URL the counters are shared by default: N instances counting alone would
    # allow N times the limit. ``backend = "memory"`` keeps them per instance on purpose.
    if rate.backend == "redis" or (rate.backend is None and redis_url is not None):
        if redis_url is None:
            raise ValueError("rate_limit.backend = 'redis' needs redis_url")
        return RedisRateLimiter(
            redis_url, key_prefix=rate.key_prefix, timeout=settings.redis_timeout
        )
    return MemoryRateLimiter()


async def _probe(probe: Closer, limit: float) -> str:
    try:
        async with asyncio.timeout(limit):
            await probe()
    except Exception as exc:
        _log.warning("readiness probe failed: %s", type(exc).__name__)
        return f"failing ({type(exc).__name__})"
    return "ok"
