"""Run the engine's tests on both store kinds: memory and SQL (SQLite file)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from athkit.server import EngineStores, memory_stores
from athkit.server._sql import sql_stores
from athkit.storage import create_engine


@pytest.fixture(params=["memory", "sqlite"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EngineStores]:
    if request.param == "memory":
        yield memory_stores()
        return
    from athkit.server._schema import migrate_server_schema

    engine = create_engine(f"sqlite:///{tmp_path / 'ath.db'}")
    await migrate_server_schema(engine)
    yield sql_stores(engine)
    await engine.dispose()
