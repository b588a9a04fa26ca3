"""Creating, upgrading and checking the engine's SQL schema."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from athkit.storage import check_schema, run_migrations

SERVER_MIGRATIONS = "athkit.server:migrations"
SERVER_VERSION_TABLE = "server_alembic_version"


async def migrate_server_schema(db: AsyncEngine) -> list[str]:
    """Upgrade the database behind ``db`` to the newest ``athkit.server`` schema.

    Safe when several instances start together (a database lock serialises them); raises
    ``athkit.storage.SchemaError`` on a revision this release does not know. Returns the
    revisions the database was at before.
    """
    return await run_migrations(db, SERVER_MIGRATIONS, SERVER_VERSION_TABLE)


async def check_server_schema(db: AsyncEngine) -> None:
    """Raise ``athkit.storage.SchemaError`` unless the db's schema is at this release's head."""
    await check_schema(db, SERVER_MIGRATIONS, SERVER_VERSION_TABLE)
