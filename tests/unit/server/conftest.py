"""Run the engine's tests on every store kind: memory, SQL on a SQLite file, and PostgreSQL
(a fresh database per test on 127.0.0.1:5432; skipped when it is not running, unless
ATH_REQUIRE_SERVICES=1)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from athkit.server import EngineStores, memory_stores, migrate_server_schema, sql_stores
from athkit.storage import create_database


async def _pg_connect(database: str = "test") -> object:
    import asyncpg

    return await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{database}", timeout=3)


@contextlib.asynccontextmanager
async def pg_database(prefix: str = "ath_test") -> AsyncIterator[str]:
    """The URL of a fresh PostgreSQL database on 127.0.0.1:5432, dropped afterwards (skips the
    test when PostgreSQL is not running, unless ATH_REQUIRE_SERVICES=1)."""
    try:
        admin = await _pg_connect()
    except (OSError, Exception) as exc:  # connection refused, auth, timeout
        if os.environ.get("ATH_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
    name = f"{prefix}_{secrets.token_hex(6)}"
    await admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        await admin.close()  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ath.db'}"
        return
    async with pg_database() as url:
        yield url


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EngineStores]:
    if request.param == "memory":
        yield memory_stores()
        return
    if request.param == "sqlite":
        engine = create_database(f"sqlite:///{tmp_path / 'ath.db'}")
        await migrate_server_schema(engine)
        yield sql_stores(engine)
        await engine.dispose()
        return
    async with pg_database("ath_engine") as url:
        engine = create_database(url)
        try:
            await migrate_server_schema(engine)
            yield sql_stores(engine)
        finally:
            await engine.dispose()
