"""Create the initial schema.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: 64-bit ids on PostgreSQL, INTEGER on SQLite so the column aliases the rowid.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create every table and index."""
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=True),
        sa.Column("basic_user", sa.String(255), nullable=True),
        sa.Column("basic_password_hash", sa.LargeBinary(), nullable=True),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("effective_mode", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.BigInteger(), nullable=True),
        sa.Column("last_user_agent", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        sa.UniqueConstraint("name", name="uq_devices_name"),
        sa.UniqueConstraint("token_hash", name="uq_devices_token_hash"),
        sa.UniqueConstraint("basic_user", name="uq_devices_basic_user"),
    )
    op.create_table(
        "inbound",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("dedupe_key", sa.String(300), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=True),
        sa.Column("from_raw", sa.Text(), nullable=False),
        sa.Column("from_addr", sa.Text(), nullable=False),
        sa.Column("to_addr", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("sent_timestamp_raw", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.BigInteger(), nullable=False),
        sa.Column("device_label", sa.Text(), nullable=True),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("flags", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inbound"),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_inbound_device_id_devices", ondelete="SET NULL"
        ),
        sa.UniqueConstraint("device_id", "dedupe_key", name="uq_inbound_device_id_dedupe_key"),
    )
    op.create_table(
        "outbound",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("to_addr", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("dispatched_at", sa.BigInteger(), nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
        sa.Column("left_queue_at", sa.BigInteger(), nullable=True),
        sa.Column("result_listings", sa.Integer(), nullable=False),
        sa.Column("sent_code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbound"),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_outbound_device_id_devices", ondelete="SET NULL"
        ),
        sa.UniqueConstraint("uuid", name="uq_outbound_uuid"),
    )
    op.create_index("ix_devices_secret_hash", "devices", ["secret_hash"])
    op.create_index("ix_outbound_status_id", "outbound", ["status", "id"])
    op.create_index("ix_outbound_device_id_status_id", "outbound", ["device_id", "status", "id"])
    op.create_index(
        "ix_outbound_device_id_dispatched_at", "outbound", ["device_id", "dispatched_at"]
    )
    op.create_index("ix_outbound_lease_expires_at", "outbound", ["lease_expires_at"])
    op.create_index("ix_outbound_status_expires_at", "outbound", ["status", "expires_at"])
    op.create_table(
        "outbound_history",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("outbound_id", ROW_ID, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbound_history"),
        sa.ForeignKeyConstraint(
            ["outbound_id"],
            ["outbound.id"],
            name="fk_outbound_history_outbound_id_outbound",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_outbound_history_outbound_id", "outbound_history", ["outbound_id"])
    op.create_table(
        "routes",
        sa.Column("to_addr", sa.Text(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("to_addr", name="pk_routes"),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_routes_device_id_devices", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "events",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_events_device_id_devices", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_events_device_id_id", "events", ["device_id", "id"])


def downgrade() -> None:
    """Drop every table."""
    for table in ("events", "routes", "outbound_history", "outbound", "inbound", "devices", "meta"):
        op.drop_table(table)
