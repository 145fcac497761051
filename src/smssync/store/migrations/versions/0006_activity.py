"""Index the time columns that activity counts range over (issue 18's charts).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """One index per time column that ``store/activity.py`` scans a range of."""
    op.create_index("ix_inbound_received_at", "inbound", ["received_at"])
    op.create_index("ix_outbound_sent_at", "outbound", ["sent_at"])
    op.create_index("ix_outbound_dispatched_at", "outbound", ["dispatched_at"])


def downgrade() -> None:
    """Drop what 0006 added."""
    op.drop_index("ix_outbound_dispatched_at", "outbound")
    op.drop_index("ix_outbound_sent_at", "outbound")
    op.drop_index("ix_inbound_received_at", "inbound")
