"""The console's SQL schema: its own MetaData, migrated by ``athkit.console:migrations``.

Every row carries the ``deployment`` it belongs to (the engine's public base URL), so two
deployments that share a database never see each other's operators, sessions or failure counts.
Session cookies and CSRF tokens are random; only the SHA-256 of the cookie is stored.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, MetaData, String, Table

VERSION_TABLE = "console_alembic_version"
MIGRATIONS = "athkit.console:migrations"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

operators = Table(
    "console_operators",
    metadata,
    Column("deployment", String(512), primary_key=True),
    Column("username", String(64), primary_key=True),
    Column("password_hash", String(256), nullable=False),
    Column("created_at", Float, nullable=False),
)

sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("deployment", String(512), nullable=False),
    Column("kind", String(16), nullable=False),  # "operator" or "user"
    Column("subject", String(256), nullable=False),  # operator name, or the user's provider id
    Column("provider_id", String(128)),  # users: the provider they signed in with
    Column("display_name", String(256)),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
)

login_failures = Table(
    "console_login_failures",
    metadata,
    Column("deployment", String(512), primary_key=True),
    Column("username", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", Float, nullable=False),
)

user_logins = Table(
    "console_user_logins",
    metadata,
    # A user's sign-in through a provider, between the redirect out and the callback.
    Column("state_hash", String(64), primary_key=True),
    Column("deployment", String(512), nullable=False),
    Column("provider_id", String(128), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
)
