"""The Alembic migrations create exactly the tables the SQL stores declare (SQLite and
PostgreSQL)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from athkit.server import migrate_server_schema
from athkit.server._tables import metadata
from athkit.storage import create_database

PG = "postgresql://postgres@127.0.0.1:5432"


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    found = list(compare_metadata(context, metadata))
    return [d for d in found if not (d[0] == "remove_table" and "alembic" in d[1].name)]


async def _check(url: str) -> None:
    engine = create_database(url)
    try:
        await migrate_server_schema(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_sqlite_schema_matches(tmp_path: Path) -> None:
    await _check(f"sqlite:///{tmp_path / 'schema.db'}")


@pytest.mark.postgres
async def test_postgresql_schema_matches() -> None:
    import asyncpg

    try:
        admin = await asyncpg.connect(f"{PG}/test", timeout=3)
    except Exception as exc:
        if os.environ.get("ATH_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    name = f"ath_schema_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        await _check(f"{PG}/{name}")
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
