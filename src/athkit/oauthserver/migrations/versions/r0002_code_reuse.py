"""Record when an authorization code was presented a second time.

Revision ID: oauth0002
Revises: oauth0001
"""

import sqlalchemy as sa
from alembic import op

revision = "oauth0002"
down_revision = "oauth0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``oauth_codes.reused_at``."""
    with op.batch_alter_table("oauth_codes") as batch:
        batch.add_column(sa.Column("reused_at", sa.Float, nullable=True))


def downgrade() -> None:
    """Drop ``oauth_codes.reused_at``."""
    with op.batch_alter_table("oauth_codes") as batch:
        batch.drop_column("reused_at")
