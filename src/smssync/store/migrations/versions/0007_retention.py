"""Remember when the text of an SMS was purged by retention (``--retention-days``).

A purged SMS keeps its row (numbers, times, status, history) with an empty body; the
column tells it apart from an SMS that was empty, and its index lets the hourly purge find
what is left to purge without reading what it already purged.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: Each table and the time its retention counts from.
_TABLES = (("inbound", "received_at"), ("outbound", "updated_at"))


def upgrade() -> None:
    """Add ``purged_at`` and its index to both message tables."""
    for table, since in _TABLES:
        op.add_column(table, sa.Column("purged_at", sa.BigInteger(), nullable=True))
        op.create_index(f"ix_{table}_purged_at_{since}", table, ["purged_at", since])


def downgrade() -> None:
    """Drop what 0007 added."""
    for table, since in reversed(_TABLES):
        op.drop_index(f"ix_{table}_purged_at_{since}", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("purged_at")
