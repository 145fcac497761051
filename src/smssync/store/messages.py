"""Outbound SMS as people read them (CLI, API): with their history, filtered, counted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from smssync.records import HistoryEntry, Outbound, OutboundQuery, OutboundStatus
from smssync.store.engine import reads
from smssync.store.rows import chunks, history_of, outbound_of, to_us
from smssync.store.schema import devices, outbound, outbound_history

S = OutboundStatus


@reads
def list_outbound(
    conn: Connection,
    message_id: str | None = None,
    device: str | None = None,
    status: OutboundStatus | None = None,
    limit: int = 1000,
) -> list[Outbound]:
    """Return outbound SMS with their history, oldest first."""
    query = (
        select(outbound, devices.c.name.label("device_name"))
        .outerjoin(devices, devices.c.id == outbound.c.device_id)
        .order_by(outbound.c.id)
        .limit(limit)
    )
    if message_id is not None:
        query = query.where(outbound.c.uuid == message_id)
    if device is not None:
        query = query.where(devices.c.name == device)
    if status is not None:
        query = query.where(outbound.c.status == status.value)
    return _with_history(conn, list(conn.execute(query)))


@reads
def last_sent(conn: Connection) -> Outbound | None:
    """Return the outgoing SMS a phone most recently reported sent, if any."""
    # Newest rows first: the last sent is near the end, and no index on sent_at is needed.
    row_id = conn.execute(
        select(outbound.c.id)
        .where(outbound.c.sent_at.is_not(None))
        .order_by(outbound.c.id.desc())
        .limit(1)
    ).scalar()
    return None if row_id is None else outbound_by_ids(conn, [row_id])[0]


def outbound_by_ids(conn: Connection, ids: list[int]) -> list[Outbound]:
    """Return the outgoing SMS with these row ids and their history, in id order."""
    rows: list[Any] = []
    for part in chunks(ids):
        rows.extend(
            conn.execute(
                select(outbound, devices.c.name.label("device_name"))
                .outerjoin(devices, devices.c.id == outbound.c.device_id)
                .where(outbound.c.id.in_(part))
            )
        )
    rows.sort(key=lambda row: row.id)
    return _with_history(conn, rows)


def _with_history(conn: Connection, rows: list[Any]) -> list[Outbound]:
    history: dict[int, list[HistoryEntry]] = {row.id: [] for row in rows}
    for part in chunks(list(history)):
        entries = conn.execute(
            select(outbound_history)
            .where(outbound_history.c.outbound_id.in_(part))
            .order_by(outbound_history.c.at, outbound_history.c.id)
        )
        for entry in entries:
            history[entry.outbound_id].append(history_of(entry._mapping))
    return [outbound_of(row._mapping, history[row.id]) for row in rows]


@reads
def queue_depths(conn: Connection) -> dict[str | None, int]:
    """Count queued messages per assigned device name (None: unassigned)."""
    rows = conn.execute(
        select(devices.c.name, func.count())
        .select_from(outbound)
        .outerjoin(devices, devices.c.id == outbound.c.device_id)
        .where(outbound.c.status == S.QUEUED.value)
        .group_by(devices.c.name)
    )
    return {name: int(count) for name, count in rows}


@reads
def outbound_page(conn: Connection, query: OutboundQuery) -> list[Outbound]:
    """Return outgoing SMS after the cursor with their history, oldest first."""
    where = [outbound.c.id > query.after_id]
    if query.status is not None:
        where.append(outbound.c.status == query.status)
    if query.to_addr is not None:
        where.append(outbound.c.to_addr == query.to_addr)
    if query.since is not None:
        where.append(outbound.c.created_at >= to_us(query.since))
    if query.until is not None:
        where.append(outbound.c.created_at < to_us(query.until))
    if query.device is not None:
        device_id = conn.execute(
            select(devices.c.id).where(devices.c.name == query.device)
        ).scalar()
        if device_id is None:
            return []
        where.append(outbound.c.device_id == device_id)
    ids = list(
        conn.execute(
            select(outbound.c.id).where(*where).order_by(outbound.c.id).limit(query.limit)
        ).scalars()
    )
    return outbound_by_ids(conn, ids)


@reads
def outbound_newest(
    conn: Connection,
    before_id: int | None = None,
    limit: int = 50,
    status: str | None = None,
    device: str | None = None,
) -> list[Outbound]:
    """Return outgoing SMS newest first, before the cursor (a row id, a message's ``seq``)
    when given, with their history: a range of the primary key, or of (status, id) for one
    status."""
    query = select(outbound.c.id).order_by(outbound.c.id.desc()).limit(limit)
    if before_id:
        query = query.where(outbound.c.id < before_id)
    if status is not None:
        query = query.where(outbound.c.status == status)
    if device is not None:
        query = query.join(devices, devices.c.id == outbound.c.device_id).where(
            devices.c.name == device
        )
    ids = list(conn.execute(query).scalars())
    return sorted(outbound_by_ids(conn, ids), key=lambda m: m.seq, reverse=True)
