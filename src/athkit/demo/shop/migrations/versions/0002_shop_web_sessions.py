"""Server-side login sessions of the storefront.

Revision ID: shop_0002
Revises: shop_0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "shop_0002"
down_revision = "shop_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shop_web_sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("user_name", sa.String(255), nullable=True),
        sa.Column("login_state", sa.String(128), nullable=True),
        sa.Column("login_verifier", sa.String(128), nullable=True),
        sa.Column("login_next", sa.String(512), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_shop_web_sessions"),
    )
    op.create_index("ix_shop_web_sessions_expires_at", "shop_web_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_shop_web_sessions_expires_at", table_name="shop_web_sessions")
    op.drop_table("shop_web_sessions")
