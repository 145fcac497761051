"""Keep the raw timestamps of result reports (S-34); remember alerts on stuck messages (S-30).

Webhook endpoints that took every event before ``message.stuck`` existed take it too (they
were registered with "all", stored as the list of that day). Messages already ``accepted``
count as alerted: an upgrade must not send alerts, to webhooks and to the callback URLs of
API clients, about every message of the past that a phone took without reporting it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json
import time

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


#: Every webhook event before 0003: an endpoint with all of them had asked for "all".
_EVENTS_BEFORE = {
    "message.received",
    "message.sent",
    "message.failed",
    "message.delivered",
    "message.undelivered",
    "device.offline",
    "device.online",
}
_STUCK = "message.stuck"


def upgrade() -> None:
    """Add the columns; subscribe "all" endpoints to the new event; mark what is accepted."""
    for name, kind in _COLUMNS:
        op.add_column("outbound", sa.Column(name, kind, nullable=True))
    conn = op.get_bind()
    endpoints = sa.table("webhook_endpoints", sa.column("id"), sa.column("events"))
    for endpoint_id, events in conn.execute(sa.select(endpoints.c.id, endpoints.c.events)):
        listed = json.loads(events)
        if set(listed) == _EVENTS_BEFORE:
            conn.execute(
                endpoints.update()
                .where(endpoints.c.id == endpoint_id)
                .values(events=json.dumps([*listed, _STUCK]))
            )
    outbound = sa.table("outbound", sa.column("status"), sa.column("accepted_alert_at"))
    now_us = time.time_ns() // 1000
    conn.execute(
        outbound.update().where(outbound.c.status == "accepted").values(accepted_alert_at=now_us)
    )


def downgrade() -> None:
    """Drop what 0003 added."""
    with op.batch_alter_table("outbound") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
