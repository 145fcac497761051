"""Dashboard users, and the indexes behind its conversations (issue 18).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``users``; index each direction's SMS by the other party's number."""
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("password_changed_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_index("ix_inbound_from_addr_id", "inbound", ["from_addr", "id"])
    op.create_index("ix_outbound_to_addr_id", "outbound", ["to_addr", "id"])


def downgrade() -> None:
    """Drop what 0006 added."""
    op.drop_index("ix_outbound_to_addr_id", "outbound")
    op.drop_index("ix_inbound_from_addr_id", "inbound")
    op.drop_table("users")
