"""The conversations' index: one row per other party's number with its newest SMS, its
count of unread incoming SMS and the phone of its newest SMS, kept by the verbs that store
SMS, in their own transaction (``inbox``, ``queue``).

Each write upserts (``INSERT … ON CONFLICT DO UPDATE``) one row per number it touched, in
number order, so that two PostgreSQL transactions touching the same numbers lock them in
the same order and never deadlock. The counts are raised by the upsert itself
(``unread = threads.unread + excluded.unread``): no count of the SMS, however many.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import ARRAY, Connection, bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from smssync.store.engine import reads, writes
from smssync.store.rows import chunks
from smssync.store.schema import outbound, threads

#: The columns of a thread as ``_row`` gives them.
_COLUMNS = (
    "number",
    "number_reversed",
    "last_at",
    "last_inbound_id",
    "last_outbound_id",
    "last_device_id",
    "unread",
)


def _upsert(conn: Connection, values: list[dict[str, Any]]) -> None:
    statement = _statement(conn.dialect.name)
    values = _merged(values)
    if conn.dialect.name == "postgresql":
        conn.execute(statement, {c: [value[c] for value in values] for c in _COLUMNS})
    else:
        conn.execute(statement, values)


def _merged(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per number, folded in order as the upsert folds a row into a stored one:
    one statement may not touch a row twice (PostgreSQL refuses), and outgoing SMS read in
    chunks can name one number in several."""
    by_number: dict[str, dict[str, Any]] = {}
    for value in values:
        old = by_number.get(value["number"])
        if old is None:
            by_number[value["number"]] = dict(value)
            continue
        newer = value["last_at"] >= old["last_at"]
        old["last_at"] = max(old["last_at"], value["last_at"])
        for column in ("last_inbound_id", "last_outbound_id"):
            if value[column] is not None:
                old[column] = value[column]
        if newer and value["last_device_id"] is not None:
            old["last_device_id"] = value["last_device_id"]
        old["unread"] += value["unread"]
    return list(by_number.values())


@functools.cache
def _statement(dialect: str) -> Any:
    """The upsert, built once per dialect: built at every write of SMS, its construction and
    SQLAlchemy's cache key cost more CPU than storing the SMS (bench/README.md).

    PostgreSQL gets one array per column (``unnest``), one statement per batch, as the SMS
    themselves (``dialects.insert_rows``); SQLite an executemany of the one statement.
    """
    if dialect == "postgresql":
        arrays = select(
            *(func.unnest(bindparam(c, type_=ARRAY(threads.c[c].type))).label(c) for c in _COLUMNS)
        )
        statement: Any = postgresql.insert(threads).from_select(list(_COLUMNS), arrays)
    else:
        statement = sqlite.insert(threads)
    new = statement.excluded
    newer = new.last_at >= threads.c.last_at
    return statement.on_conflict_do_update(
        index_elements=[threads.c.number],
        set_={
            "last_at": case(
                (new.last_at > threads.c.last_at, new.last_at), else_=threads.c.last_at
            ),
            # Row ids only grow: the SMS just stored is the newest of its direction.
            "last_inbound_id": func.coalesce(new.last_inbound_id, threads.c.last_inbound_id),
            "last_outbound_id": func.coalesce(new.last_outbound_id, threads.c.last_outbound_id),
            "unread": threads.c.unread + new.unread,
            "last_device_id": case(
                (newer, func.coalesce(new.last_device_id, threads.c.last_device_id)),
                else_=threads.c.last_device_id,
            ),
        },
    )


def _row(
    number: str,
    at_us: int,
    inbound_id: int | None,
    outbound_id: int | None,
    device: int | None,
    unread: int,
) -> dict[str, Any]:
    return {
        "number": number,
        "number_reversed": number[::-1],
        "last_at": at_us,
        "last_inbound_id": inbound_id,
        "last_outbound_id": outbound_id,
        "last_device_id": device,
        "unread": unread,
    }


def touch_inbound(conn: Connection, stored: list[tuple[str, int, int, int | None]]) -> None:
    """Make the incoming SMS just stored, ``(from_addr, received_at µs, row id, device
    id)``, the newest of their senders' threads and count them unread (an empty sender
    belongs to no conversation).

    From the values in hand, not a SELECT of the rows: this runs in every write of
    incoming SMS, under SQLite's single writer."""
    newest: dict[str, tuple[int, int, int | None, int]] = {}
    for number, at_us, row_id, device in stored:
        if not number:
            continue
        seen = newest.get(number)
        if seen is None:
            newest[number] = (at_us, row_id, device, 1)
        else:
            # The newest SMS gives the phone; every one counts.
            latest = row_id > seen[1]
            newest[number] = (
                max(at_us, seen[0]),
                max(row_id, seen[1]),
                device if latest else seen[2],
                seen[3] + 1,
            )
    values = [
        _row(n, at, i, None, device, count) for n, (at, i, device, count) in sorted(newest.items())
    ]
    if values:
        _upsert(conn, values)


def touch_outbound(conn: Connection, uuids: list[str]) -> None:
    """Make the outgoing SMS with these uuids the newest of their recipients' threads."""
    values: list[dict[str, Any]] = []
    for part in chunks(uuids):
        rows = conn.execute(
            select(
                outbound.c.to_addr,
                func.max(outbound.c.created_at).label("at"),
                func.max(outbound.c.id).label("id"),
                func.max(outbound.c.device_id).label("device"),
            )
            .where(outbound.c.uuid.in_(part))
            .group_by(outbound.c.to_addr)
        )
        values.extend(_row(r.to_addr, r.at, None, r.id, r.device, 0) for r in rows)
    if values:
        _upsert(conn, sorted(values, key=lambda v: str(v["number"])))


@writes
def mark_read(conn: Connection, number: str) -> bool:
    """Mark a conversation read for everyone (the clinic's inbox is one inbox); tell
    whether it had unread SMS."""
    done = conn.execute(
        update(threads).where(threads.c.number == number, threads.c.unread > 0).values(unread=0)
    )
    return bool(done.rowcount)


#: Unread conversations the header's total adds up at most: past them it says "N+", so
#: that its cost stays bounded however many conversations wait (each page shows it).
UNREAD_COUNTED = 1000


@reads
def total_unread(conn: Connection) -> tuple[int, bool]:
    """Return the incoming SMS not yet read, and whether there are more than counted (the
    sum covers at most ``UNREAD_COUNTED`` + 1 unread conversations, a range of the
    ``unread`` index, never a count of SMS)."""
    counts = (
        select(threads.c.unread).where(threads.c.unread > 0).limit(UNREAD_COUNTED + 1).subquery()
    )
    total, conversations = conn.execute(
        select(func.coalesce(func.sum(counts.c.unread), 0), func.count())
    ).one()
    return int(total), conversations > UNREAD_COUNTED


def unread_label(found: tuple[int, bool]) -> str:
    """Return the header's text for ``total_unread``'s answer ("" when nothing waits)."""
    total, more = found
    return f"{total}+" if more else (str(total) if total else "")
