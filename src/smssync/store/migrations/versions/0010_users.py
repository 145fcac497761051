"""Dashboard users, and the conversations: one row per number, and each direction's SMS
indexed by the other party's number (issue 18).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

#: Every number that already has SMS becomes a conversation.
_BACKFILL = """
INSERT INTO threads (number, last_at, last_inbound_id, last_outbound_id)
SELECT number, MAX(last_at), MAX(last_in), MAX(last_out) FROM (
    SELECT from_addr AS number, MAX(received_at) AS last_at, MAX(id) AS last_in,
           CAST(NULL AS BIGINT) AS last_out
    FROM inbound WHERE from_addr <> '' GROUP BY from_addr
    UNION ALL
    SELECT to_addr, MAX(created_at), CAST(NULL AS BIGINT), MAX(id)
    FROM outbound GROUP BY to_addr
) AS both_directions
GROUP BY number
"""

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``users`` and ``threads`` (filled from the SMS stored so far); index each
    direction's SMS by the other party's number."""
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
    op.create_table(
        "threads",
        sa.Column("number", sa.Text, nullable=False),
        sa.Column("last_at", sa.BigInteger, nullable=False),
        sa.Column("last_inbound_id", sa.BigInteger, nullable=True),
        sa.Column("last_outbound_id", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("number", name="pk_threads"),
    )
    op.create_index("ix_threads_last_at_number", "threads", ["last_at", "number"])
    op.execute(_BACKFILL)


def downgrade() -> None:
    """Drop what 0010 added."""
    op.drop_index("ix_threads_last_at_number", "threads")
    op.drop_table("threads")
    op.drop_index("ix_outbound_to_addr_id", "outbound")
    op.drop_index("ix_inbound_from_addr_id", "inbound")
    op.drop_table("users")
