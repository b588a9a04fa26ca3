"""Shared SQL plumbing: database URLs, async engines and Alembic migrations.

Every persistent part of athkit (the OAuth server, the engine, the gateway) keeps its tables in
its own SQLAlchemy ``MetaData`` with its own Alembic migration folder and version table, and
uses these helpers to open the database named by one URL setting. :class:`FailedSignIns` is the
count behind the console's and the OAuth server's brake on password guessing.
"""

from athkit.storage._database import create_database, normalize_database_url
from athkit.storage._failures import FailedSignIns
from athkit.storage._metadata import NAMING_CONVENTION, new_metadata
from athkit.storage._migrations import (
    SchemaError,
    check_schema,
    run_migrations,
    run_migrations_env,
)

__all__ = [
    "NAMING_CONVENTION",
    "FailedSignIns",
    "SchemaError",
    "check_schema",
    "create_database",
    "new_metadata",
    "normalize_database_url",
    "run_migrations",
    "run_migrations_env",
]
