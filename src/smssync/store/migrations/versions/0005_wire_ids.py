"""Give every outgoing SMS a wire id of its own, apart from its public uuid (issue 14).

A message already in the queue or with a phone keeps its uuid as its wire id: the phone may
hold it and confirm or report it later. Every new message gets a random one at insert.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column, fill it with each message's uuid, index it."""
    op.add_column("outbound", sa.Column("wire_id", sa.String(36), nullable=True))
    outbound = sa.table("outbound", sa.column("uuid"), sa.column("wire_id"))
    op.get_bind().execute(outbound.update().values(wire_id=outbound.c.uuid))
    op.create_index("ix_outbound_wire_id", "outbound", ["wire_id"], unique=True)


def downgrade() -> None:
    """Drop what 0005 added."""
    op.drop_index("ix_outbound_wire_id", "outbound")
    with op.batch_alter_table("outbound") as batch:
        batch.drop_column("wire_id")
