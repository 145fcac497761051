"""Store alerts (raised once per condition) and each device's run of failed sends (issue 17).

Webhook endpoints that took every event before ``device.alert`` and ``webhook.failing``
existed take them too (they had asked for "all"), as in 0003.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: Every webhook event before 0009: an endpoint with all of them had asked for "all".
_EVENTS_BEFORE = {
    "message.received",
    "message.sent",
    "message.failed",
    "message.delivered",
    "message.undelivered",
    "message.stuck",
    "device.offline",
    "device.online",
}
_NEW = ["device.alert", "webhook.failing"]


def upgrade() -> None:
    """Create ``alerts`` and ``send_streaks``; subscribe "all" endpoints to the new events."""
    op.create_table(
        "alerts",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("open_key", sa.String(120), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("raised_at", sa.BigInteger(), nullable=False),
        sa.Column("announced_at", sa.BigInteger(), nullable=True),
        sa.Column("acknowledged_at", sa.BigInteger(), nullable=True),
        sa.Column("acknowledged_by", sa.String(100), nullable=True),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("open_key", name="uq_alerts_open_key"),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_alerts_device_id_devices", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_alerts_resolved_at_id", "alerts", ["resolved_at", "id"])
    op.create_index("ix_alerts_announced_at", "alerts", ["announced_at"])
    op.create_table(
        "send_streaks",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_send_streaks"),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name="fk_send_streaks_device_id_devices",
            ondelete="CASCADE",
        ),
    )
    conn = op.get_bind()
    endpoints = sa.table("webhook_endpoints", sa.column("id"), sa.column("events"))
    for endpoint_id, events in conn.execute(sa.select(endpoints.c.id, endpoints.c.events)):
        listed = json.loads(events)
        if set(listed) == _EVENTS_BEFORE:
            conn.execute(
                endpoints.update()
                .where(endpoints.c.id == endpoint_id)
                .values(events=json.dumps(sorted([*listed, *_NEW])))
            )


def downgrade() -> None:
    """Drop what 0009 added."""
    op.drop_table("send_streaks")
    op.drop_table("alerts")
