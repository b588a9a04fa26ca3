"""Creating and upgrading the engine's SQL schema."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from athkit.storage import run_migrations


async def migrate_server_schema(engine: AsyncEngine) -> None:
    """Upgrade the database behind ``engine`` to the newest ``athkit.server`` schema."""
    await run_migrations(engine, "athkit.server:migrations", "server_alembic_version")
