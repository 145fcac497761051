"""Stuck messages (S-30): accepted by a device long ago and never reported, announced once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Connection, func, select, update

from smssync.records import Event, OutboundStatus, StuckMessage
from smssync.serialize import iso
from smssync.store import webhooks
from smssync.store.devices import record_event
from smssync.store.engine import Database
from smssync.store.rows import chunks, from_us, to_us
from smssync.store.schema import devices, outbound, outbound_history
from smssync.store.webhooks import HOOK_COLUMNS

S = OutboundStatus


#: When a message became ``accepted``: its history entry. Today ``updated_at`` holds the same
#: moment while the message stays accepted, but any later write to the row could move it. A
#: message is accepted at most once, since nothing takes it back to ``dispatched``.
ACCEPTED_AT = (
    select(func.max(outbound_history.c.at))
    .where(
        outbound_history.c.outbound_id == outbound.c.id,
        outbound_history.c.status == S.ACCEPTED.value,
    )
    .scalar_subquery()
)


#: The ``reason`` of a message.stuck event.
STUCK_REASON = "accepted by the device, no result reported since"


def _not_alerted() -> tuple[ColumnElement[bool], ...]:
    return (outbound.c.status == S.ACCEPTED.value, outbound.c.accepted_alert_at.is_(None))


def any_stuck(conn: Connection, now: datetime, older_than_s: int) -> bool:
    """Tell whether some message awaits an S-30 alert (cheap: the status index)."""
    cutoff_us = to_us(now) - older_than_s * 1_000_000
    query = select(outbound.c.id).where(*_not_alerted(), ACCEPTED_AT <= cutoff_us).limit(1)
    return conn.execute(query).first() is not None


async def alert_stuck(
    db: Database, now: datetime, older_than_s: int, limit: int = 500
) -> list[StuckMessage]:
    """S-30: mark up to ``limit`` messages ``accepted`` at least ``older_than_s`` ago and
    not alerted yet, with a device event per device and ``message.stuck`` for their
    receivers, in one transaction and once across processes; return them, oldest first."""
    # A read first, as for liveness: the usual answer is "none", which then costs no
    # turn of the single SQLite writer.
    if not await db.read(any_stuck, now, older_than_s):
        return []
    return await db.write(mark_stuck, now, older_than_s, limit)


def mark_stuck(
    conn: Connection, now: datetime, older_than_s: int, limit: int
) -> list[StuckMessage]:
    """Mark and announce, once, messages accepted ``older_than_s`` ago without a result
    (S-30): the App never reports a send whose E5 reply it lost."""
    now_us = to_us(now)
    cutoff_us = now_us - older_than_s * 1_000_000
    rows = conn.execute(
        select(
            *HOOK_COLUMNS,
            outbound.c.device_id,
            devices.c.name.label("device_name"),
            ACCEPTED_AT.label("accepted_at"),
        )
        .outerjoin(devices, devices.c.id == outbound.c.device_id)
        .where(*_not_alerted(), ACCEPTED_AT <= cutoff_us)
        .order_by(outbound.c.id)
        .limit(limit)
    ).all()
    marked: set[int] = set()
    for part in chunks([row.id for row in rows]):
        # Conditional, like the liveness record: of processes sweeping at once only the one
        # whose update lands alerts (PostgreSQL re-checks the condition once the other's row
        # lock is released), and a result committed meanwhile wins over the alert.
        marked.update(
            conn.execute(
                update(outbound)
                .where(outbound.c.id.in_(part), *_not_alerted())
                .values(accepted_alert_at=now_us)
                .returning(outbound.c.id)
            ).scalars()
        )
    stuck = [row for row in rows if row.id in marked]
    by_device: dict[int, list[str]] = {}
    for row in stuck:
        if row.device_id is not None:
            by_device.setdefault(row.device_id, []).append(row.uuid)
    for device_id, uuids in by_device.items():
        # One event per device and sweep, so that a backlog does not push the phone's own
        # alerts out of the recent-events view.
        detail = {"count": len(uuids), "uuids": uuids, "older_than_s": older_than_s}
        record_event.run(conn, device_id, "message_stuck", detail, now)
    events = [
        (
            row._mapping,
            {
                "uuid": row.uuid,
                "to": row.to_addr,
                "status": S.ACCEPTED.value,
                "device": row.device_name,
                "reason": STUCK_REASON,
                "accepted_at": iso(from_us(row.accepted_at)),
            },
        )
        for row in stuck
    ]
    webhooks.emit_message_events(conn, Event.STUCK, events, now_us)
    return [StuckMessage(row.uuid, row.device_name, from_us(row.accepted_at)) for row in stuck]
