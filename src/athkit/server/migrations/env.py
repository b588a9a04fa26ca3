"""Alembic environment of ``athkit.server``; run through ``migrate_server_schema`` only."""

from alembic import context

import athkit.server  # noqa: F401  (imports every module that defines a table)
from athkit.server._tables import metadata
from athkit.storage import run_migrations_env

run_migrations_env(context, metadata)
