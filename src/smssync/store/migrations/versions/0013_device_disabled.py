"""A phone can be disabled: refused on its Sync URL until enabled again (issue 18).

Revision ID: 0013
Revises: 0011 (0012 once the branches merge)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column; NULL (enabled) for every phone there is."""
    op.add_column("devices", sa.Column("disabled_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("disabled_at")
