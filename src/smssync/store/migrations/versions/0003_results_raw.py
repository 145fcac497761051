"""Keep the raw timestamps of result reports (S-34); remember alerts on stuck messages (S-30).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("sent_timestamp_raw", sa.Text()),
    ("delivered_timestamp_raw", sa.Text()),
    ("accepted_alert_at", sa.BigInteger()),
)


def upgrade() -> None:
    """Add the columns, all nullable: existing messages have no raw report or alert."""
    for name, kind in _COLUMNS:
        op.add_column("outbound", sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    """Drop what 0003 added."""
    with op.batch_alter_table("outbound") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
