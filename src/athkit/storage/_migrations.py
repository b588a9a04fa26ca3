"""Alembic, run programmatically, one migration folder and version table per component."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


async def run_migrations(
    engine: AsyncEngine, script_location: str, version_table: str, revision: str = "head"
) -> None:
    """Upgrade the database behind ``engine`` to ``revision`` with the given migration folder.

    ``script_location`` is an Alembic location such as ``"athkit.oauthserver:migrations"``.
    """

    def _upgrade(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", script_location)
        config.attributes["connection"] = connection
        config.attributes["version_table"] = version_table
        command.upgrade(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


def run_migrations_env(context: Any, target_metadata: MetaData) -> None:
    """The body of a component's ``env.py``: migrate on the connection handed over above."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("athkit migrations run through athkit.storage.run_migrations only")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=config.attributes["version_table"],
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
