"""Run the engine's tests on every store kind: memory, SQL on a SQLite file, and PostgreSQL
(a fresh database per test on 127.0.0.1:5432; skipped when it is not running, unless
ATH_REQUIRE_SERVICES=1)."""

from __future__ import annotations

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
    try:
        admin = await _pg_connect()
    except (OSError, Exception) as exc:  # connection refused, auth, timeout
        if os.environ.get("ATH_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
    name = f"ath_engine_{secrets.token_hex(6)}"
    await admin.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    engine = create_database(f"postgresql://postgres@127.0.0.1:5432/{name}")
    try:
        await migrate_server_schema(engine)
        yield sql_stores(engine)
    finally:
        await engine.dispose()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        await admin.close()  # type: ignore[attr-defined]
