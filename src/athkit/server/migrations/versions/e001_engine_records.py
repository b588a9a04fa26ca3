"""engine records: agents, sessions, tokens, provider grants, audit events (ATH §4–§6)

Revision ID: e001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Time = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "ath_agents",
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("agent_id", sa.String(2048), nullable=False),
        sa.Column("agent_name", sa.String(256), nullable=False),
        sa.Column("developer_name", sa.String(256), nullable=False),
        sa.Column("developer_id", sa.String(256), nullable=False),
        sa.Column("developer_contact", sa.String(256)),
        sa.Column("client_secret_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text()),
        sa.Column("providers", sa.JSON(), nullable=False),
        sa.Column("redirect_uris", sa.JSON()),
        sa.Column("purpose", sa.Text()),
        sa.Column("created_at", _Time, nullable=False),
        sa.Column("updated_at", _Time, nullable=False),
        sa.Column("approval_expires", _Time, nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_ath_agents"),
        sa.UniqueConstraint("agent_id", name="uq_ath_agents_agent_id"),
    )
    op.create_index("ix_ath_agents_status", "ath_agents", ["status"])
    op.create_table(
        "ath_sessions",
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("agent_id", sa.String(2048), nullable=False),
        sa.Column("provider_id", sa.String(128), nullable=False),
        sa.Column("requested_scopes", sa.JSON(), nullable=False),
        sa.Column("agent_state", sa.String(512), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("created_at", _Time, nullable=False),
        sa.Column("expires_at", _Time, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("oauth_state_hash", sa.String(64)),
        sa.Column("user_redirect_uri", sa.String(2048)),
        sa.Column("resource", sa.String(2048)),
        sa.Column("binding_hash", sa.String(64)),
        sa.Column("ath_code_hash", sa.String(64)),
        sa.Column("user_id", sa.String(256)),
        sa.Column("consented_scopes", sa.JSON()),
        sa.Column("grant_id", sa.String(128)),
        sa.Column("failure_reason", sa.String(256)),
        sa.PrimaryKeyConstraint("session_id", name="pk_ath_sessions"),
        sa.UniqueConstraint("oauth_state_hash", name="uq_ath_sessions_oauth_state_hash"),
    )
    op.create_index("ix_ath_sessions_client_id", "ath_sessions", ["client_id"])
    op.create_index("ix_ath_sessions_expires_at", "ath_sessions", ["expires_at"])
    op.create_table(
        "ath_tokens",
        sa.Column("token_id", sa.String(128), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("agent_id", sa.String(2048), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("provider_id", sa.String(128), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", _Time, nullable=False),
        sa.Column("expires_at", _Time, nullable=False),
        sa.Column("grant_id", sa.String(128)),
        sa.Column("session_id", sa.String(128)),
        sa.Column("revoked_at", _Time),
        sa.Column("revoked_by", sa.String(32)),
        sa.PrimaryKeyConstraint("token_id", name="pk_ath_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_ath_tokens_token_hash"),
    )
    op.create_index("ix_ath_tokens_client_id", "ath_tokens", ["client_id"])
    op.create_index("ix_ath_tokens_user_id", "ath_tokens", ["user_id"])
    op.create_table(
        "ath_provider_grants",
        sa.Column("grant_id", sa.String(128), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("agent_id", sa.String(2048), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("provider_id", sa.String(128), nullable=False),
        sa.Column("consented_scopes", sa.JSON(), nullable=False),
        sa.Column("access_token_enc", sa.Text(), nullable=False),
        sa.Column("refresh_token_enc", sa.Text()),
        sa.Column("token_type", sa.String(32), nullable=False),
        sa.Column("expires_at", _Time),
        sa.Column("needs_user", sa.Boolean(), nullable=False),
        sa.Column("needs_user_reason", sa.String(256)),
        sa.Column("created_at", _Time, nullable=False),
        sa.Column("updated_at", _Time, nullable=False),
        sa.PrimaryKeyConstraint("grant_id", name="pk_ath_provider_grants"),
        sa.UniqueConstraint("client_id", "user_id", "provider_id", name="uq_ath_grant_owner"),
    )
    op.create_index("ix_ath_provider_grants_user_id", "ath_provider_grants", ["user_id"])
    op.create_table(
        "ath_audit_events",
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("timestamp", _Time, nullable=False),
        sa.Column("agent_id", sa.String(2048)),
        sa.Column("client_id", sa.String(128)),
        sa.Column("user_id", sa.String(256)),
        sa.Column("provider_id", sa.String(128)),
        sa.Column("requested_scopes", sa.JSON(), nullable=False),
        sa.Column("effective_scopes", sa.JSON(), nullable=False),
        sa.Column("denied_scopes", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("code", sa.String(64)),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_ath_audit_events"),
    )
    op.create_index("ix_ath_audit_events_event", "ath_audit_events", ["event"])
    op.create_index("ix_ath_audit_events_timestamp", "ath_audit_events", ["timestamp"])
    op.create_index("ix_ath_audit_events_agent_id", "ath_audit_events", ["agent_id"])
    op.create_index("ix_ath_audit_events_user_id", "ath_audit_events", ["user_id"])


def downgrade() -> None:
    for table in (
        "ath_audit_events",
        "ath_provider_grants",
        "ath_tokens",
        "ath_sessions",
        "ath_agents",
    ):
        op.drop_table(table)
