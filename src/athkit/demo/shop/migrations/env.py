"""Alembic environment of the ATH Shop (run through ``athkit.storage.run_migrations``)."""

from alembic import context

from athkit.demo.shop._tables import metadata
from athkit.storage import run_migrations_env

run_migrations_env(context, metadata)
