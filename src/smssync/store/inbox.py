"""Incoming SMS verbs: plain functions over one open Connection."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy import exc as sa_exc

from smssync.errors import StoreError
from smssync.records import Inbound, NewInbound
from smssync.store.engine import Database, reads
from smssync.store.rows import inbound_of, to_us
from smssync.store.schema import devices, inbound

RECEIVED = "received"


_COLUMNS = (
    "device_id",
    "dedupe_key",
    "message_id",
    "from_raw",
    "from_addr",
    "to_addr",
    "content",
    "sent_timestamp_raw",
    "sent_at",
    "device_label",
    "received_at",
    "flags",
    "status",
)
#: Positional placeholders as each driver spells them.
_PLACEHOLDERS = {"sqlite": "?", "postgresql": "%s"}
#: Most rows in one INSERT: 13 columns each stay far below both drivers' parameter limits.
MAX_ROWS = 256

_Key = tuple[int, str]
#: An incoming SMS as the INSERT binds it, in ``_COLUMNS`` order (``row_of``).
InboundRow = tuple[object, ...]
#: ``flags`` of most SMS: nothing looked wrong.
_NO_FLAGS = "[]"


@functools.lru_cache(maxsize=2 * MAX_ROWS)
def _insert_sql(dialect: str, rows: int) -> str:
    mark = _PLACEHOLDERS[dialect]
    row = "(" + ", ".join([mark] * len(_COLUMNS)) + ")"
    returning = " RETURNING id, device_id, dedupe_key" if dialect == "postgresql" else ""
    return (
        f"INSERT INTO inbound ({', '.join(_COLUMNS)}) VALUES {', '.join([row] * rows)} "
        f"ON CONFLICT (device_id, dedupe_key) DO NOTHING{returning}"
    )


#: SQLite: the ids of the (device_id, dedupe_key) pairs of a JSON array, as one JSON value.
_IDS_SQLITE = (
    "SELECT json_group_array(json_array(i.id, i.device_id, i.dedupe_key)) "
    "FROM json_each(?) AS k JOIN inbound AS i "
    "ON i.device_id = json_extract(k.value, '$[0]') "
    "AND i.dedupe_key = json_extract(k.value, '$[1]')"
)


def _existing_sql(dialect: str) -> str:
    mark = _PLACEHOLDERS[dialect]
    return f"SELECT id FROM inbound WHERE device_id = {mark} AND dedupe_key = {mark}"


def row_of(message: NewInbound) -> InboundRow:
    """Return the values the INSERT binds for one SMS.

    The store builds them on the event loop's thread, not in the writer: Python work in the
    writer thread waits for the GIL at every step, and under load it cost several times
    what it costs on the loop (measured: 21 µs against 4 µs per SMS).
    """
    return (
        message.device_id,
        message.dedupe_key,
        message.message_id,
        message.from_raw,
        message.from_addr,
        message.to_addr,
        message.content,
        message.sent_timestamp_raw,
        to_us(message.sent_at),
        message.device_label,
        to_us(message.received_at),
        json.dumps(list(message.flags)) if message.flags else _NO_FLAGS,
        RECEIVED,
    )


def record_one(conn: Connection, message: NewInbound) -> tuple[bool, int]:
    """Insert unless (device, dedupe_key) exists, in the caller's transaction: (created, id)."""
    return record_inbound_many(conn, [row_of(message)])[0]


def record_inbound_many(conn: Connection, rows: list[InboundRow]) -> list[tuple[bool, int]]:
    """Insert each SMS (``row_of``) unless (device, dedupe_key) exists: (created, id) for
    each, in order.

    This is the hottest write of the server (every incoming SMS), and group commit hands it
    many SMS at once (``batching``): one multi-row statement on the driver's cursor, as
    SQLAlchemy's execution machinery cost more CPU than the whole HTTP request around it
    (measured with py-spy under wrk). Within one call, the first of several SMS with the same
    key is the one created; the others are its duplicates.
    """
    dialect = conn.dialect.name
    insert = _insert_sqlite if dialect == "sqlite" else _insert_postgresql
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        return _record(cursor, rows, insert, _existing_sql(dialect))
    except conn.dialect.loaded_dbapi.Error as error:
        # Wrapped as SQLAlchemy would, so busy and integrity errors are recognised upstream.
        raise sa_exc.DBAPIError.instance(
            "INSERT INTO inbound ...",
            None,
            error,
            conn.dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=conn.dialect,
        ) from error
    finally:
        cursor.close()


def record_inbound_autocommit(
    dbapi: sqlite3.Connection, rows: list[InboundRow]
) -> list[tuple[bool, int]]:
    """SQLite, outside any transaction: the INSERT commits by itself.

    ``record_inbound_many`` in a transaction takes BEGIN and COMMIT besides the INSERT, and
    Python's sqlite3 releases the GIL around each: in a thread on a busy server every one of
    them then waits for the event loop thread to hand the GIL back. A lone multi-row INSERT
    is atomic on its own, so here the whole write is one call. The caller holds the write
    lock that every smssync writer takes and makes the commit durable before it answers
    (see ``SqliteStore._record_inbound_many``).
    """
    cursor = dbapi.cursor()
    try:
        return _record(cursor, rows, _insert_sqlite, _existing_sql("sqlite"))
    finally:
        cursor.close()


def _key(row: InboundRow) -> _Key:
    return row[0], row[1]  # type: ignore[return-value]  # device_id, dedupe_key


def _record(
    cursor: Any,
    rows: list[InboundRow],
    insert: Callable[[Any, list[InboundRow]], dict[_Key, int]],
    existing_sql: str,
) -> list[tuple[bool, int]]:
    first, unique = _first_of_each(rows)
    created = insert(cursor, unique)
    ids = dict(created)
    for key in first.keys() - created.keys():
        cursor.execute(existing_sql, key)
        ids[key] = _found(cursor.fetchone())
    return _answers(rows, first, created, ids)


async def record_inbound_async(conn: Any, rows: list[InboundRow]) -> list[tuple[bool, int]]:
    """PostgreSQL, on an autocommit ``psycopg.AsyncConnection``: ``record_inbound_many``
    without a thread. One batch (at most ``MAX_ROWS``) is one INSERT that commits by itself,
    one round trip; the ids of duplicates are read afterwards, as they never change."""
    first, unique = _first_of_each(rows)
    async with conn.cursor() as cursor:
        await cursor.execute(
            _insert_sql("postgresql", len(unique)), [value for r in unique for value in r]
        )
        created = _returned_ids(await cursor.fetchall())
        ids = dict(created)
        for key in first.keys() - created.keys():
            await cursor.execute(_existing_sql("postgresql"), key)
            ids[key] = _found(await cursor.fetchone())
    return _answers(rows, first, created, ids)


def _first_of_each(rows: list[InboundRow]) -> tuple[dict[_Key, int], list[InboundRow]]:
    """Index of the first row of each key, and those rows: the only ones inserted, in one
    statement (group commit never hands over more than ``MAX_ROWS``)."""
    if len(rows) > MAX_ROWS:
        raise ValueError(f"at most {MAX_ROWS} SMS at once")
    first: dict[_Key, int] = {}
    for index, row in enumerate(rows):
        first.setdefault(_key(row), index)
    return first, [rows[index] for index in first.values()]


def _found(row: Any) -> int:
    if row is None:  # the insert skipped it, so it exists: say so rather than guess
        raise StoreError("incoming SMS neither inserted nor found")
    return int(row[0])


def _answers(
    rows: list[InboundRow], first: dict[_Key, int], created: dict[_Key, int], ids: dict[_Key, int]
) -> list[tuple[bool, int]]:
    """(created, id) per row: a row is created when it is the first of a new key."""
    results: list[tuple[bool, int]] = []
    for index, row in enumerate(rows):
        key = _key(row)
        results.append((key in created and first[key] == index, ids[key]))
    return results


def _returned_ids(returned: list[Any]) -> dict[_Key, int]:
    """The ids of PostgreSQL's ``RETURNING id, device_id, dedupe_key``, by key."""
    return {(device_id, key): int(row_id) for row_id, device_id, key in returned}


def _insert_postgresql(cursor: Any, chunk: list[InboundRow]) -> dict[_Key, int]:
    cursor.execute(_insert_sql("postgresql", len(chunk)), [value for r in chunk for value in r])
    return _returned_ids(cursor.fetchall())


def _insert_sqlite(cursor: Any, chunk: list[InboundRow]) -> dict[_Key, int]:
    """Insert without RETURNING; the ids follow from the last one.

    Python's sqlite3 releases the GIL around every step, and RETURNING takes one step per
    row; on a busy server each step then waits for the event loop thread to hand the GIL
    back (measured: a 16-row INSERT ... RETURNING took 1.5 to 3 ms). So the common case is
    one step. SQLite gives a new row the largest rowid plus one (``inbound.id`` is the rowid,
    without AUTOINCREMENT; it would only pick at random past 2**63 - 1), one row after the
    other in VALUES order, and no other smssync writer runs meanwhile (SQLite's write lock,
    or the write-lock file): the ``n`` rows inserted hold the last ``n`` ids.
    """
    cursor.execute(_insert_sql("sqlite", len(chunk)), [v for r in chunk for v in r])
    inserted, last = cursor.rowcount, cursor.lastrowid
    if inserted == len(chunk):
        return {_key(r): last - inserted + 1 + i for i, r in enumerate(chunk)}
    if inserted <= 0:
        return {}
    # Some were duplicates (a phone's retry): read the ids back to tell which rows are new.
    cursor.execute(_IDS_SQLITE, (json.dumps([_key(r) for r in chunk]),))
    (found,) = cursor.fetchone()
    return {
        (device_id, key): row_id
        for row_id, device_id, key in json.loads(found)
        if row_id > last - inserted
    }


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
