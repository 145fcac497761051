"""Incoming SMS verbs: plain functions over one open Connection."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, tuple_

from smssync.errors import StoreError
from smssync.records import Inbound, NewInbound
from smssync.store import dialects, optouts, threads
from smssync.store.engine import Database, reads
from smssync.store.rows import inbound_of, to_us
from smssync.store.schema import devices, inbound

RECEIVED = "received"

#: Most rows in one INSERT: 13 columns each stay far below both drivers' parameter limits.
MAX_ROWS = 256

_Key = tuple[int, str]
#: An incoming SMS as the INSERT binds it, by column (``row_of``).
InboundRow = dict[str, object]
#: ``flags`` of most SMS: nothing looked wrong.
_NO_FLAGS = "[]"

_RETURNED = (inbound.c.id, inbound.c.device_id, inbound.c.dedupe_key)
#: What identifies an SMS of a phone: its device and its key.
_KEY = tuple_(inbound.c.device_id, inbound.c.dedupe_key)


def row_of(message: NewInbound) -> InboundRow:
    """Return the values the INSERT binds for one SMS.

    The store builds them on the event loop's thread, before the batch goes to a thread that
    then has less to do while it holds the write lock.
    """
    return {
        "device_id": message.device_id,
        "dedupe_key": message.dedupe_key,
        "message_id": message.message_id,
        "from_raw": message.from_raw,
        "from_addr": message.from_addr,
        "to_addr": message.to_addr,
        "content": message.content,
        "sent_timestamp_raw": message.sent_timestamp_raw,
        "sent_at": to_us(message.sent_at),
        "device_label": message.device_label,
        "received_at": to_us(message.received_at),
        "flags": json.dumps(list(message.flags)) if message.flags else _NO_FLAGS,
        "status": RECEIVED,
    }


def record_one(conn: Connection, message: NewInbound) -> tuple[bool, int]:
    """Insert unless (device, dedupe_key) exists, in the caller's transaction: (created, id)."""
    return record_inbound_many(conn, [row_of(message)])[0]


def record_inbound_many(conn: Connection, rows: list[InboundRow]) -> list[tuple[bool, int]]:
    """Insert each SMS (``row_of``) unless (device, dedupe_key) exists: (created, id) for
    each, in order.

    Group commit hands this verb many SMS at once (``Engine.batch``): one INSERT for all, one
    upsert of their conversations (``threads``), then one SELECT for the ids of those that
    were already stored. Within one call, the first of
    several SMS with the same key is the one created; the others are its duplicates.
    """
    if len(rows) > MAX_ROWS:
        raise ValueError(f"at most {MAX_ROWS} SMS at once")
    first: dict[_Key, int] = {}
    for index, row in enumerate(rows):
        first.setdefault(_key(row), index)
    unique = [rows[index] for index in first.values()]
    created = _ids(
        dialects.insert_rows(conn, inbound, unique, ("device_id", "dedupe_key"), _RETURNED)
    )
    ids = dict(created)
    if created:
        threads.touch_inbound(
            conn,
            [
                (
                    str(row["from_addr"]),
                    int(row["received_at"]),  # type: ignore[call-overload]
                    created[_key(row)],
                    row["device_id"],  # type: ignore[misc]
                )
                for row in unique
                if _key(row) in created
            ],
        )
    missing = [key for key in first if key not in created]
    if missing:
        ids.update(_ids(conn.execute(select(*_RETURNED).where(_KEY.in_(missing)))))
    results: list[tuple[bool, int]] = []
    for index, row in enumerate(rows):
        key = _key(row)
        if key not in ids:  # the insert skipped it, so it exists: say so rather than guess
            raise StoreError("incoming SMS neither inserted nor found")
        results.append((key in created and first[key] == index, ids[key]))
    new = [row for row, (created_now, _) in zip(rows, results, strict=True) if created_now]
    optouts.honour_stops(conn, new)
    return results


def _key(row: InboundRow) -> _Key:
    return row["device_id"], row["dedupe_key"]  # type: ignore[return-value]


def _ids(found: Iterable[Any]) -> dict[_Key, int]:
    return {(device_id, key): int(row_id) for row_id, device_id, key in found}


@reads
def list_inbound(
    conn: Connection, device: str | None = None, limit: int = 1000, after_id: int = 0
) -> list[Inbound]:
    """Return stored inbound SMS after ``after_id``, oldest first."""
    query = (
        select(inbound, devices.c.name.label("device_name"))
        .outerjoin(devices, devices.c.id == inbound.c.device_id)
        .where(inbound.c.id > after_id)
        .order_by(inbound.c.id)
        .limit(limit)
    )
    if device is not None:
        query = query.where(devices.c.name == device)
    return [inbound_of(row._mapping) for row in conn.execute(query)]


async def record_inbound(db: Database, message: NewInbound) -> tuple[bool, int]:
    """Store an inbound SMS unless (device, dedupe_key) exists: (created, id) (S-10).

    Concurrent calls share one statement and one commit (group commit, see ``batching``).
    """
    return await db.batch(record_inbound_many, row_of(message), limit=MAX_ROWS)


@reads
def inbound_newest(
    conn: Connection,
    before_id: int | None = None,
    limit: int = 50,
    device: str | None = None,
    since: datetime | None = None,
) -> list[Inbound]:
    """Return incoming SMS newest first, before the cursor (a row id) when given, received at
    or after ``since`` when given: a range of the primary key, or of (device_id, id) for one
    device."""
    query = (
        select(inbound, devices.c.name.label("device_name"))
        .outerjoin(devices, devices.c.id == inbound.c.device_id)
        .order_by(inbound.c.id.desc())
        .limit(limit)
    )
    if before_id:
        query = query.where(inbound.c.id < before_id)
    if since is not None:
        query = query.where(inbound.c.received_at >= to_us(since))
    if device is not None:
        device_id = conn.execute(select(devices.c.id).where(devices.c.name == device)).scalar()
        if device_id is None:
            return []
        query = query.where(inbound.c.device_id == device_id)
    return [inbound_of(row._mapping) for row in conn.execute(query)]
