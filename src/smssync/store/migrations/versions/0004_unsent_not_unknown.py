"""Messages given up on before a send was reported go back to what they truly are.

Earlier versions turned a message listed five times by ``task=result`` into
``delivery_unknown`` whether or not a phone ever reported it sent, so an SMS that never left
looked like one that was sent. Such a message (no ``sent`` in its history) returns to the
status it had before (``accepted`` or ``dispatched``), with a history entry saying why; a
late result then applies as to any open message. Those returned to ``accepted`` count as
alerted, as in 0003: an upgrade sends no alerts about the past.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: The history detail of a message returned by this migration.
DETAIL = "returned from delivery_unknown: no send was ever reported"


def upgrade() -> None:
    """Return every ``delivery_unknown`` message without a reported send to its prior status."""
    conn = op.get_bind()
    outbound = sa.table(
        "outbound",
        sa.column("id"),
        sa.column("status"),
        sa.column("updated_at"),
        sa.column("accepted_alert_at"),
    )
    history = sa.table(
        "outbound_history",
        sa.column("id"),
        sa.column("outbound_id"),
        sa.column("at"),
        sa.column("status"),
        sa.column("detail"),
    )
    sent = sa.select(history.c.id).where(
        history.c.outbound_id == outbound.c.id, history.c.status.in_(("sent", "delivered"))
    )
    before = (
        sa.select(history.c.status)
        .where(history.c.outbound_id == outbound.c.id, history.c.status != "delivery_unknown")
        .order_by(history.c.at.desc(), history.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(outbound.c.id, before.label("before")).where(
            outbound.c.status == "delivery_unknown", ~sa.exists(sent)
        )
    ).all()
    now_us = time.time_ns() // 1000
    for row in rows:
        status = row.before if row.before in ("accepted", "dispatched") else "accepted"
        conn.execute(
            outbound.update()
            .where(outbound.c.id == row.id)
            .values(
                status=status,
                updated_at=now_us,
                accepted_alert_at=now_us if status == "accepted" else None,
            )
        )
        conn.execute(
            history.insert().values(outbound_id=row.id, at=now_us, status=status, detail=DETAIL)
        )


def downgrade() -> None:
    """Nothing to undo: the statuses it restored are the true ones."""
