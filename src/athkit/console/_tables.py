"""The console's SQL schema: its own MetaData, migrated by ``athkit.console:migrations``.

Every row carries the ``deployment`` it belongs to (the engine's public base URL), so two
deployments that share a database never see each other's operators, sessions or failure counts.
Session cookies and CSRF tokens are random; only the SHA-256 of the cookie is stored.
"""

from __future__ import annotations

from sqlalchemy import Column, String, Table

from athkit.storage import new_metadata
from athkit.storage._metadata import created_at, expires_at, failure_window, hash_key

VERSION_TABLE = "console_alembic_version"
MIGRATIONS = "athkit.console:migrations"

metadata = new_metadata()


def _deployment(*, key: bool = False) -> Column[str]:
    """The deployment a row belongs to: the engine's public base URL."""
    return Column("deployment", String(512), primary_key=key, nullable=False)


def _operator_name() -> Column[str]:
    return Column("username", String(64), primary_key=True)


operators = Table(
    "console_operators",
    metadata,
    _deployment(key=True),
    _operator_name(),
    Column("password_hash", String(256), nullable=False),
    created_at(),
)

sessions = Table(
    "console_sessions",
    metadata,
    hash_key("id_hash"),
    _deployment(),
    Column("kind", String(16), nullable=False),  # "operator" or "user"
    Column("subject", String(256), nullable=False),  # operator name, or the user's provider id
    Column("provider_id", String(128)),  # users: the provider they signed in with
    Column("display_name", String(256)),
    Column("csrf_token", String(64), nullable=False),
    created_at(),
    expires_at(),
)

login_failures = Table(
    "console_login_failures",
    metadata,
    _deployment(key=True),
    _operator_name(),
    *failure_window(),
)

user_logins = Table(
    "console_user_logins",
    metadata,
    # A user's sign-in through a provider, between the redirect out and the callback.
    hash_key("state_hash"),
    _deployment(),
    Column("provider_id", String(128), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    expires_at(),
)
