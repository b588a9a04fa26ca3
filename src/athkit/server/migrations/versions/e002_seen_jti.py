"""seen_jti: attestation jti values kept until their exp (ATH §2 replay check)

Revision ID: e002
Revises: e001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e002"
down_revision: str | None = "e001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seen_jti",
        sa.Column("jti", sa.String(256), nullable=False),
        sa.Column("agent_id", sa.String(2048), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("jti", name="pk_seen_jti"),
    )
    op.create_index("ix_seen_jti_expires_at", "seen_jti", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_seen_jti_expires_at", table_name="seen_jti")
    op.drop_table("seen_jti")
