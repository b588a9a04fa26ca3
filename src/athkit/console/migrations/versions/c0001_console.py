"""Console operators, sessions, sign-in failures and users' provider sign-ins.

Revision ID: console0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "console0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the console's tables."""
    op.create_table(
        "console_operators",
        sa.Column("deployment", sa.String(512), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("deployment", "username", name="pk_console_operators"),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("deployment", sa.String(512), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("provider_id", sa.String(128)),
        sa.Column("display_name", sa.String(256)),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_console_sessions"),
    )
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])
    op.create_table(
        "console_login_failures",
        sa.Column("deployment", sa.String(512), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_start", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("deployment", "username", name="pk_console_login_failures"),
    )
    op.create_table(
        "console_user_logins",
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("deployment", sa.String(512), nullable=False),
        sa.Column("provider_id", sa.String(128), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name="pk_console_user_logins"),
    )
    op.create_index("ix_console_user_logins_expires_at", "console_user_logins", ["expires_at"])


def downgrade() -> None:
    """Drop the console's tables."""
    op.drop_table("console_user_logins")
    op.drop_table("console_login_failures")
    op.drop_index("ix_console_sessions_expires_at", "console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("console_operators")
