"""Alembic environment of the OAuth server."""

from alembic import context

from athkit.oauthserver._tables import metadata
from athkit.storage import run_migrations_env

run_migrations_env(context, metadata)
