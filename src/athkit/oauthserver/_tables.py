"""The OAuth server's SQL schema, in its own ``MetaData`` (version table
``oauthserver_alembic_version``; migrations in ``athkit/oauthserver/migrations``).

Authorization codes, access and refresh tokens are stored only as SHA-256 hashes. Times are
Unix seconds (floats).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text

from athkit.storage import new_metadata

metadata = new_metadata()

# An authorization request waiting for the user's login and consent, bound to one browser.
auth_requests = Table(
    "oauth_auth_requests",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("browser_id", String(64), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("state", Text, nullable=True),
    Column("code_challenge", String(128), nullable=False),
    Column("resource", Text, nullable=True),
    Column("context", Text, nullable=True),  # JSON of the verified ath_context, if any
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_oauth_auth_requests_expires_at", "expires_at"),
)

codes = Table(
    "oauth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("grant_id", String(64), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("sub", String(255), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("resource", Text, nullable=True),
    Column("agent_id", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    Column("reused_at", Float, nullable=True),  # a second redemption was attempted
    Index("ix_oauth_codes_expires_at", "expires_at"),
)

tokens = Table(
    "oauth_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # "access" | "refresh"
    Column("grant_id", String(64), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("sub", String(255), nullable=False),
    Column("scope", Text, nullable=False),
    Column("resource", Text, nullable=True),
    Column("issued_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("rotated_at", Float, nullable=True),  # refresh tokens: exchanged for a new one
    Index("ix_oauth_tokens_grant_id", "grant_id"),
    Index("ix_oauth_tokens_expires_at", "expires_at"),
)

# Failed sign-ins per username within the current window (password-guessing brake).
login_failures = Table(
    "oauth_login_failures",
    metadata,
    Column("username", String(128), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", Float, nullable=False),
)
