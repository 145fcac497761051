"""Activity over a range of time, from the store: SMS in and out per hour or day, and how
each phone's sends fared. What the dashboard's charts and ``GET /api/v1/activity`` show.

Each count is one grouped range scan on an indexed time column (``inbound.received_at``,
``outbound.sent_at``, ``outbound.dispatched_at``), so its cost follows the range asked for,
not the size of the store.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, case, func, select

from smssync.records import ActivityBucket, DeviceActivity, OutboundStatus
from smssync.store.engine import reads
from smssync.store.rows import delta_us, from_us, to_us
from smssync.store.schema import devices, inbound, outbound

S = OutboundStatus
#: Statuses that say the phone sent the SMS (whatever the network did with it then).
SENT = [S.SENT.value, S.DELIVERED.value, S.UNDELIVERED.value, S.DELIVERY_UNKNOWN.value]
#: The longest range of buckets one call returns: a year of hours.
MOST_BUCKETS = 24 * 366


def _check(since: datetime, until: datetime, bucket: timedelta) -> None:
    if bucket <= timedelta(0):
        raise ValueError("the bucket must be longer than zero")
    if until <= since:
        raise ValueError("until must be later than since")
    if (until - since) / bucket > MOST_BUCKETS:
        raise ValueError(f"at most {MOST_BUCKETS} buckets in one range")


@reads
def activity(
    conn: Connection,
    since: datetime,
    until: datetime,
    bucket: timedelta,
    offset: timedelta = timedelta(0),
) -> list[ActivityBucket]:
    """Count SMS received, sent, delivered and failed in each bucket of ``[since, until)``.

    Buckets start at multiples of ``bucket`` in the time zone ``offset`` from UTC (days that
    start at local midnight); every bucket of the range is listed, empty ones with zeros.
    Incoming SMS count when the server received them, outgoing ones when the phone sent
    them (a failure: when it was reported).
    """
    _check(since, until, bucket)
    size, shift = delta_us(bucket), delta_us(offset)
    lo, hi = to_us(since), to_us(until)
    counts: dict[int, list[int]] = {}

    def add(slot: int, index: int, n: int) -> None:
        counts.setdefault(slot, [0, 0, 0, 0])[index] += n

    slot_in = (inbound.c.received_at + shift) // size
    for slot, n in conn.execute(
        select(slot_in, func.count())
        .where(inbound.c.received_at >= lo, inbound.c.received_at < hi)
        .group_by(slot_in)
    ):
        add(int(slot), 0, int(n))
    slot_out = (outbound.c.sent_at + shift) // size
    delivered = func.sum(case((outbound.c.status == S.DELIVERED.value, 1), else_=0))
    for slot, n, d in conn.execute(
        select(slot_out, func.count(), delivered)
        .where(outbound.c.sent_at >= lo, outbound.c.sent_at < hi)
        .where(outbound.c.status.in_(SENT))
        .group_by(slot_out)
    ):
        add(int(slot), 1, int(n))
        add(int(slot), 2, int(d or 0))
    # A failed SMS has no sent_at: it counts when it was handed out, in the range.
    slot_failed = (outbound.c.dispatched_at + shift) // size
    for slot, n in conn.execute(
        select(slot_failed, func.count())
        .where(outbound.c.dispatched_at >= lo, outbound.c.dispatched_at < hi)
        .where(outbound.c.status == S.FAILED.value)
        .group_by(slot_failed)
    ):
        add(int(slot), 3, int(n))
    first, last = (lo + shift) // size, (hi - 1 + shift) // size
    return [
        ActivityBucket(from_us(slot * size - shift), *counts.get(slot, [0, 0, 0, 0]))
        for slot in range(first, last + 1)
    ]


@reads
def device_activity(conn: Connection, since: datetime, until: datetime) -> list[DeviceActivity]:
    """How the SMS handed to each phone in ``[since, until)`` fared, busiest phone first."""
    _check(since, until, until - since)
    lo, hi = to_us(since), to_us(until)

    def count(*statuses: str) -> ColumnElement[int]:
        return func.sum(case((outbound.c.status.in_(statuses), 1), else_=0))

    query = (
        select(
            devices.c.name,
            func.count(),
            count(*SENT),
            count(S.DELIVERED.value),
            count(S.FAILED.value, S.UNDELIVERED.value),
        )
        .join(devices, devices.c.id == outbound.c.device_id)
        .where(outbound.c.dispatched_at >= lo, outbound.c.dispatched_at < hi)
        .group_by(devices.c.name)
        .order_by(func.count().desc(), devices.c.name)
    )
    return [
        DeviceActivity(name, int(n), int(sent or 0), int(done or 0), int(bad or 0))
        for name, n, sent, done, bad in conn.execute(query)
    ]
