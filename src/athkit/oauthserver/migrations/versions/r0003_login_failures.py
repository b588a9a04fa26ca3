"""Failed sign-ins per username, to slow down password guessing.

Revision ID: oauth0003
Revises: oauth0002
"""

import sqlalchemy as sa
from alembic import op

revision = "oauth0003"
down_revision = "oauth0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``oauth_login_failures``."""
    op.create_table(
        "oauth_login_failures",
        sa.Column("username", sa.String(128), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_start", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("username", name="pk_oauth_login_failures"),
    )


def downgrade() -> None:
    """Drop ``oauth_login_failures``."""
    op.drop_table("oauth_login_failures")
