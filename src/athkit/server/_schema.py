"""Creating, upgrading and checking the engine's SQL schema."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from athkit.storage import check_schema, run_migrations

SERVER_MIGRATIONS = "athkit.server:migrations"
SERVER_VERSION_TABLE = "server_alembic_version"


async def migrate_server_schema(engine: AsyncEngine) -> list[str]:
    """Upgrade the database behind ``engine`` to the newest ``athkit.server`` schema.

    Safe when several instances start together (a database lock serialises them); raises
    ``athkit.storage.SchemaError`` on a revision this release does not know. Returns the
    revisions the database was at before.
    """
    return await run_migrations(engine, SERVER_MIGRATIONS, SERVER_VERSION_TABLE)


async def check_server_schema(engine: AsyncEngine) -> None:
    """Raise ``athkit.storage.SchemaError`` unless the engine's schema is at this release's head."""
    await check_schema(engine, SERVER_MIGRATIONS, SERVER_VERSION_TABLE)
