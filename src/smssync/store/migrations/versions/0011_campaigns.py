"""Campaigns (bulk sends), the opt-out list and the list pages' indexes (issue 18).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the tables, the column and the indexes."""
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("region", sa.String(8), nullable=False),
        sa.Column("device", sa.String(100), nullable=True),
        sa.Column("window_start", sa.Integer(), nullable=True),
        sa.Column("window_end", sa.Integer(), nullable=True),
        sa.Column("window_tz", sa.String(64), nullable=True),
        sa.Column("zones", sa.Text(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
    )
    op.create_index("ix_campaigns_status", "campaigns", ["status"])
    op.create_table(
        "campaign_recipients",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("to_raw", sa.Text(), nullable=False),
        sa.Column("to_addr", sa.Text(), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("zone", sa.Text(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_recipients"),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name="fk_campaign_recipients_campaign_id_campaigns",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_campaign_recipients_campaign_id_state_zone_id",
        "campaign_recipients",
        ["campaign_id", "state", "zone", "id"],
    )
    op.create_index(
        "ix_campaign_recipients_campaign_id_id", "campaign_recipients", ["campaign_id", "id"]
    )
    op.create_table(
        "opt_outs",
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("address", name="pk_opt_outs"),
    )
    op.add_column("outbound", sa.Column("campaign_id", sa.Integer(), nullable=True))
    op.create_index("ix_outbound_campaign_id_status", "outbound", ["campaign_id", "status"])
    op.create_index("ix_inbound_device_id_id", "inbound", ["device_id", "id"])


def downgrade() -> None:
    """Drop what 0011 added."""
    op.drop_index("ix_inbound_device_id_id", "inbound")
    op.drop_index("ix_outbound_campaign_id_status", "outbound")
    with op.batch_alter_table("outbound") as batch:
        batch.drop_column("campaign_id")
    for table in ("opt_outs", "campaign_recipients", "campaigns"):
        op.drop_table(table)
