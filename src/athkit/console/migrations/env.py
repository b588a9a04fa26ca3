"""Alembic environment of the console (run through ``athkit.storage.run_migrations``)."""

from alembic import context

from athkit.console._tables import metadata
from athkit.storage import run_migrations_env

run_migrations_env(context, metadata)
