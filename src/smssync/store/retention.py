"""Retention: the text of old SMS is purged, the messages stay (``--retention-days``).

What is purged, once older than the cutoff:

- an incoming SMS's ``content``, by when it was received;
- a finished outgoing SMS's ``content`` (a final status: delivered, failed, expired, …), by
  its last change; one still queued, with a phone or awaiting its report keeps its text,
  which a phone may still need;
- finished webhook deliveries (their payloads quote the SMS) and stored idempotent API
  answers (they quote it too), by when they finished or were made.

A purged SMS keeps its row, numbers, times, status, segments and history, so counts and
statuses stay right; ``content`` becomes ``""`` and ``purged_at`` says when. Each call
purges at most ``limit`` rows of each kind, in one short transaction; the caller repeats
while a kind came back full.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Table, delete, select, update

from smssync.records import FINAL_STATUSES, DeliveryState
from smssync.store.engine import writes
from smssync.store.rows import to_us
from smssync.store.schema import idempotency, inbound, outbound, webhook_deliveries

_FINAL = sorted(status.value for status in FINAL_STATUSES)
_FINISHED = [DeliveryState.DELIVERED.value, DeliveryState.DEAD.value]


@dataclasses.dataclass(frozen=True)
class Purged:
    """How many rows one purge emptied or deleted, by kind."""

    inbound: int
    outbound: int
    deliveries: int
    idempotency: int

    @property
    def total(self) -> int:
        """All rows touched."""
        return self.inbound + self.outbound + self.deliveries + self.idempotency


@writes
def purge(conn: Connection, cutoff: datetime, now: datetime, limit: int = 1000) -> Purged:
    """Empty the text of SMS older than ``cutoff`` and delete finished deliveries and
    idempotent answers older than it: at most ``limit`` rows of each kind."""
    cutoff_us, now_us = to_us(cutoff), to_us(now)
    texts = {"content": "", "purged_at": now_us}
    inbound_ids = _ids(
        conn, inbound, limit, inbound.c.purged_at.is_(None), inbound.c.received_at < cutoff_us
    )
    if inbound_ids:
        conn.execute(update(inbound).where(inbound.c.id.in_(inbound_ids)).values(**texts))
    outbound_ids = _ids(
        conn,
        outbound,
        limit,
        outbound.c.purged_at.is_(None),
        outbound.c.updated_at < cutoff_us,
        outbound.c.status.in_(_FINAL),
    )
    if outbound_ids:
        conn.execute(update(outbound).where(outbound.c.id.in_(outbound_ids)).values(**texts))
    delivery_ids = _ids(
        conn,
        webhook_deliveries,
        limit,
        webhook_deliveries.c.state.in_(_FINISHED),
        webhook_deliveries.c.finished_at < cutoff_us,
    )
    if delivery_ids:
        conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.id.in_(delivery_ids)))
    answers = conn.execute(delete(idempotency).where(idempotency.c.created_at < cutoff_us)).rowcount
    return Purged(len(inbound_ids), len(outbound_ids), len(delivery_ids), answers or 0)


def _ids(conn: Connection, table: Table, limit: int, *where: ColumnElement[bool]) -> list[int]:
    # Ids first, then the change by id: the (purged_at, time) index finds exactly what is
    # left, and both engines bound an UPDATE or DELETE by a plain IN list.
    return list(conn.execute(select(table.c.id).where(*where).limit(limit)).scalars())
