"""The jti replay stores: memory, SQL (SQLite, PostgreSQL) and Redis, against real servers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from athkit.protocol import ATHError, ErrorCode
from athkit.server import (
    MemoryReplayStore,
    RedisReplayStore,
    ReplayStore,
    SqlReplayStore,
    migrate_server_schema,
)
from athkit.server._replay import seen_jti
from athkit.storage import create_database
from athkit.testing import free_port
from tests.unit.server._verifier_support import FakeClock, clock, require_service

__all__ = ["clock"]

AGENT = "https://agent.test/.well-known/agent.json"


async def _check_semantics(store: ReplayStore, clock: FakeClock) -> None:
    exp = int(clock.now) + 300
    assert await store.add_if_new("jti-1", AGENT, exp) is True
    assert await store.add_if_new("jti-1", AGENT, exp) is False
    assert await store.add_if_new("jti-1", "https://other.test/a.json", exp) is False
    assert await store.add_if_new("jti-2", AGENT, exp) is True
    clock.advance(299)
    assert await store.add_if_new("jti-1", AGENT, exp) is False  # kept until exp


async def _check_concurrency(store: ReplayStore, clock: FakeClock, n: int = 40) -> None:
    exp = int(clock.now) + 300
    jti = f"race-{uuid.uuid4().hex}"
    results = await asyncio.gather(*(store.add_if_new(jti, AGENT, exp) for _ in range(n)))
    assert results.count(True) == 1
    assert results.count(False) == n - 1


# --- memory --------------------------------------------------------------------------------


async def test_memory_store(clock: FakeClock) -> None:
    store = MemoryReplayStore(clock=clock)
    assert isinstance(store, ReplayStore)
    await _check_semantics(store, clock)
    await _check_concurrency(store, clock)


async def test_memory_store_purges_after_exp(clock: FakeClock) -> None:
    store = MemoryReplayStore(clock=clock)
    exp = int(clock.now) + 60
    assert await store.add_if_new("a", AGENT, exp)
    assert await store.add_if_new("b", AGENT, exp + 100)
    clock.advance(59)
    assert store.purge_expired() == 0
    assert not await store.add_if_new("a", AGENT, exp)
    clock.advance(2)
    assert store.purge_expired() == 1
    assert len(store) == 1
    clock.advance(100)
    assert await store.add_if_new("c", AGENT, int(clock.now) + 10)  # purges "b" on the way
    assert len(store) == 1


# --- SQL on SQLite --------------------------------------------------------------------------


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_database(f"sqlite:///{tmp_path / 'ath.db'}")
    await migrate_server_schema(engine)
    yield engine
    await engine.dispose()


async def _rows(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [r.jti for r in await conn.execute(select(seen_jti.c.jti))]


async def test_sql_store_on_sqlite(sqlite_engine: AsyncEngine, clock: FakeClock) -> None:
    store = SqlReplayStore(sqlite_engine, clock=clock)
    await _check_semantics(store, clock)
    await _check_concurrency(store, clock)


async def test_sql_store_purges_expired_rows(sqlite_engine: AsyncEngine, clock: FakeClock) -> None:
    store = SqlReplayStore(sqlite_engine, clock=clock, purge_interval=3600)
    assert await store.add_if_new("short", AGENT, int(clock.now) + 60)
    assert await store.add_if_new("long", AGENT, int(clock.now) + 600)
    clock.advance(61)
    assert not await store.add_if_new("long", AGENT, int(clock.now) + 600)
    assert sorted(await _rows(sqlite_engine)) == ["long", "short"]
    assert await store.purge_expired() == 1
    assert await _rows(sqlite_engine) == ["long"]


async def test_sql_store_purges_on_insert_once_per_interval(
    sqlite_engine: AsyncEngine, clock: FakeClock
) -> None:
    store = SqlReplayStore(sqlite_engine, clock=clock, purge_interval=60)
    assert await store.add_if_new("old", AGENT, int(clock.now) + 30)
    clock.advance(61)
    assert await store.add_if_new("new", AGENT, int(clock.now) + 30)
    assert await _rows(sqlite_engine) == ["new"]


async def test_sql_schema_migration_is_idempotent(sqlite_engine: AsyncEngine) -> None:
    await migrate_server_schema(sqlite_engine)
    async with sqlite_engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        version = (await conn.execute(text("SELECT version_num FROM server_alembic_version"))).all()
    assert "seen_jti" in tables
    assert len(version) == 1


async def test_sql_store_without_its_table_fails_closed(tmp_path: Path, clock: FakeClock) -> None:
    engine = create_database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(ATHError) as exc:
            await SqlReplayStore(engine, clock=clock).add_if_new("x", AGENT, int(clock.now) + 60)
        assert exc.value.code is ErrorCode.INTERNAL_ERROR
    finally:
        await engine.dispose()


async def test_sql_store_on_a_closed_port_fails_closed(clock: FakeClock) -> None:
    engine = create_database(f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    try:
        store = SqlReplayStore(engine, clock=clock)
        with pytest.raises(ATHError) as exc:
            await store.add_if_new("x", AGENT, int(clock.now) + 60)
        assert exc.value.code is ErrorCode.INTERNAL_ERROR
        assert exc.value.details == {"reason": "replay_store_unavailable", "service": "sql"}
        assert exc.value.status == 503 and "the database" in exc.value.message
        with pytest.raises(ATHError):
            await store.purge_expired()
    finally:
        await engine.dispose()


# --- SQL on PostgreSQL ----------------------------------------------------------------------

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
async def pg_engine() -> AsyncIterator[AsyncEngine]:
    require_service(5432, "PostgreSQL")
    schema = f"athkit_verifier_{uuid.uuid4().hex[:12]}"
    admin = create_database(PG_URL)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_database(
        PG_URL, connect_args={"server_settings": {"search_path": schema}}, pool_size=10
    )
    try:
        await migrate_server_schema(engine)
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@pytest.mark.postgres
async def test_sql_store_on_postgresql(pg_engine: AsyncEngine, clock: FakeClock) -> None:
    store = SqlReplayStore(pg_engine, clock=clock, purge_interval=3600)
    await _check_semantics(store, clock)
    await _check_concurrency(store, clock)
    clock.advance(400)
    assert await store.purge_expired() >= 3
    assert await _rows(pg_engine) == []


@pytest.mark.postgres
async def test_two_instances_share_the_postgresql_store(
    pg_engine: AsyncEngine, clock: FakeClock
) -> None:
    # Two gateway instances = two stores on two engines over one database.
    first = SqlReplayStore(pg_engine, clock=clock)
    exp = int(clock.now) + 300
    assert await first.add_if_new("shared", AGENT, exp)
    async with pg_engine.connect() as conn:
        schema = (await conn.execute(text("SELECT current_schema()"))).scalar_one()
    second_engine = create_database(
        PG_URL, connect_args={"server_settings": {"search_path": schema}}
    )
    try:
        second = SqlReplayStore(second_engine, clock=clock)
        assert not await second.add_if_new("shared", AGENT, exp)
    finally:
        await second_engine.dispose()


# --- Redis ----------------------------------------------------------------------------------


@pytest.fixture
async def redis_store(clock: FakeClock) -> AsyncIterator[RedisReplayStore]:
    require_service(6379, "Redis")
    prefix = f"athkit-test:{uuid.uuid4().hex}:"
    store = RedisReplayStore.from_url("redis://127.0.0.1:6379/0", prefix=prefix, clock=clock)
    try:
        yield store
    finally:
        from redis.asyncio import Redis

        cleaner = Redis.from_url("redis://127.0.0.1:6379/0")
        keys = [k async for k in cleaner.scan_iter(match=f"{prefix}*")]
        if keys:
            await cleaner.delete(*keys)
        await cleaner.aclose()
        await store.aclose()


@pytest.mark.redis
async def test_redis_store(redis_store: RedisReplayStore, clock: FakeClock) -> None:
    await _check_semantics(redis_store, clock)
    await _check_concurrency(redis_store, clock)


@pytest.mark.redis
async def test_redis_keys_expire_at_the_attestation_exp(
    redis_store: RedisReplayStore, clock: FakeClock
) -> None:
    from redis.asyncio import Redis

    exp = int(clock.now) + 120
    assert await redis_store.add_if_new("ttl", AGENT, exp)
    client = Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        keys = [k async for k in client.scan_iter(match=f"{redis_store._prefix}ttl")]
        assert len(keys) == 1
        assert await client.expiretime(keys[0]) == exp
        assert await client.get(keys[0]) == AGENT.encode()
    finally:
        await client.aclose()


async def test_redis_store_on_a_closed_port_fails_closed(clock: FakeClock) -> None:
    store = RedisReplayStore.from_url(f"redis://127.0.0.1:{free_port()}/0", clock=clock, timeout=2)
    try:
        with pytest.raises(ATHError) as exc:
            await store.add_if_new("x", AGENT, int(clock.now) + 60)
        assert exc.value.code is ErrorCode.INTERNAL_ERROR
        assert exc.value.status == 503 and exc.value.message.startswith("Redis ")
    finally:
        await store.aclose()
