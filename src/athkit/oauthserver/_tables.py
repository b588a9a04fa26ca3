"""The OAuth server's SQL schema, in its own ``MetaData`` (version table
``oauthserver_alembic_version``; migrations in ``athkit/oauthserver/migrations``).

Authorization codes, access and refresh tokens are stored only as SHA-256 hashes. Times are
Unix seconds (floats).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, String, Table, Text

from athkit.storage import new_metadata
from athkit.storage._metadata import created_at, expires_at, failure_window, hash_key

metadata = new_metadata()


def _client_id() -> Column[str]:
    return Column("client_id", String(255), nullable=False)


def _grant_id(*, index: bool = False) -> Column[str]:
    """The user's consent that the code or token carries (one per authorization)."""
    return Column("grant_id", String(64), nullable=False, index=index)


def _sub() -> Column[str]:
    """The user, by the stable id the server gives them."""
    return Column("sub", String(255), nullable=False)


def _asked() -> tuple[Column[str], ...]:
    """What the client asked for, kept from the authorization request into its code: where to
    send the code, the scope, the PKCE S256 challenge (RFC 7636) the code's redeemer must
    answer, and the RFC 8707 resource."""
    return (
        Column("redirect_uri", Text, nullable=False),
        Column("scope", Text, nullable=False),
        Column("code_challenge", String(128), nullable=False),
        Column("resource", Text, nullable=True),
    )


# An authorization request waiting for the user's login and consent, bound to one browser.
auth_requests = Table(
    "oauth_auth_requests",
    metadata,
    hash_key("id_hash"),
    Column("browser_id", String(64), nullable=False),
    _client_id(),
    *_asked(),
    Column("state", Text, nullable=True),
    Column("context", Text, nullable=True),  # JSON of the verified ath_context, if any
    created_at(),
    expires_at(),
)

codes = Table(
    "oauth_codes",
    metadata,
    hash_key("code_hash"),
    _grant_id(),
    _client_id(),
    _sub(),
    *_asked(),
    Column("agent_id", Text, nullable=True),
    created_at(),
    expires_at(),
    Column("used_at", Float, nullable=True),
    Column("reused_at", Float, nullable=True),  # a second redemption was attempted
)

tokens = Table(
    "oauth_tokens",
    metadata,
    hash_key("token_hash"),
    Column("kind", String(16), nullable=False),  # "access" | "refresh"
    _grant_id(index=True),
    _client_id(),
    _sub(),
    Column("scope", Text, nullable=False),
    Column("resource", Text, nullable=True),
    Column("issued_at", Float, nullable=False),
    expires_at(),
    Column("revoked_at", Float, nullable=True),
    Column("rotated_at", Float, nullable=True),  # refresh tokens: exchanged for a new one
)

# Failed sign-ins per username within the current window (password-guessing brake).
login_failures = Table(
    "oauth_login_failures",
    metadata,
    Column("username", String(128), primary_key=True),
    *failure_window(),
)
