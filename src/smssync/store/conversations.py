"""Conversations: SMS of both directions threaded by the other party's number.

A conversation row is kept for each number, updated in the transaction that stores an
incoming SMS or queues an outgoing one, so that the newest-first page of threads is one
index range however many SMS the store holds (grouping a million SMS by number at each
page view is what this avoids). A thread itself is two keyset ranges, one per direction,
merged by time.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ARRAY, Connection, bindparam, case, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from smssync.records import Conversation, ThreadMessage
from smssync.store import dialects
from smssync.store.engine import reads, writes
from smssync.store.rows import chunks, from_us
from smssync.store.schema import conversations, devices, inbound, outbound

IN, OUT = "in", "out"
#: A page's position: the last conversation's (last_at in µs, address).
ConversationCursor = tuple[int, str]
#: A thread's position: the smallest ids shown so far of each direction (0: none left).
ThreadCursor = tuple[int, int]
#: Above every row id: the first page of a thread.
_NONE_YET = 2**62


def touch(conn: Connection, direction: str, messages: Iterable[Mapping[str, Any]]) -> None:
    """Bring the conversations of these SMS up to date (rows with ``address``, ``at``,
    ``content``, ``device_id``): their latest SMS, and one more unread per incoming SMS."""
    latest: dict[str, dict[str, Any]] = {}
    for message in messages:
        row = latest.get(message["address"])
        unread = (row["unread"] if row else 0) + (direction == IN)
        if row is None or message["at"] >= row["last_at"]:
            row = {
                "address": message["address"],
                "last_at": message["at"],
                "last_direction": direction,
                "last_content": message["content"],
                "last_device_id": message["device_id"],
            }
        latest[message["address"]] = row | {"unread": unread}
    if not latest:
        return
    # Sorted, so that two transactions upserting the same numbers lock them in one order.
    rows = [latest[address] for address in sorted(latest)]
    statement = _upsert(conn.dialect.name)
    if conn.dialect.name == "postgresql":
        # One statement of arrays (``unnest``), as for the incoming SMS themselves: a
        # statement per row cost as much again as storing the SMS.
        conn.execute(statement, {c: [row[c] for row in rows] for c in _COLUMNS})
    else:
        for part in chunks(rows):
            conn.execute(statement, list(part))


_COLUMNS = ("address", "last_at", "last_direction", "last_content", "last_device_id", "unread")


@functools.cache
def _upsert(dialect: str) -> Any:
    """The upsert of conversations, built once per dialect."""
    if dialect == "postgresql":
        arrays = select(
            *(
                func.unnest(bindparam(c, type_=ARRAY(conversations.c[c].type))).label(c)
                for c in _COLUMNS
            )
        )
        insert: Any = postgresql.insert(conversations).from_select(list(_COLUMNS), arrays)
    else:
        insert = sqlite.insert(conversations)
    newer = insert.excluded.last_at >= conversations.c.last_at

    def pick(column: str) -> Any:
        return case((newer, insert.excluded[column]), else_=conversations.c[column])

    return insert.on_conflict_do_update(
        index_elements=[conversations.c.address],
        set_={
            "last_at": pick("last_at"),
            "last_direction": pick("last_direction"),
            "last_content": pick("last_content"),
            "last_device_id": pick("last_device_id"),
            "unread": conversations.c.unread + insert.excluded.unread,
        },
    )


def touch_inbound(conn: Connection, rows: Sequence[Mapping[str, object]]) -> None:
    """Count newly stored incoming SMS (rows as ``inbox.row_of`` builds them)."""
    touch(
        conn,
        IN,
        (
            {"address": r["from_addr"], "at": r["received_at"], "content": r["content"]}
            | {"device_id": r["device_id"]}
            for r in rows
        ),
    )


def touch_outbound(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Count newly queued outgoing SMS (rows as ``queue.enqueue`` inserts them)."""
    touch(
        conn,
        OUT,
        (
            {"address": r["to_addr"], "at": r["created_at"], "content": r["content"]}
            | {"device_id": r["device_id"]}
            for r in rows
        ),
    )


def _conversation_of(row: Any) -> Conversation:
    return Conversation(
        address=row.address,
        last_at=from_us(row.last_at),
        last_direction=row.last_direction,
        last_content=row.last_content,
        last_device=row.device_name,
        unread=int(row.unread),
    )


@reads
def conversation_page(
    conn: Connection,
    before: ConversationCursor | None = None,
    limit: int = 50,
    number: str | None = None,
) -> list[Conversation]:
    """Return conversations newest first, after the cursor; ``number`` keeps those whose
    number contains it (a scan of the threads, not of the SMS)."""
    query = (
        select(conversations, devices.c.name.label("device_name"))
        .outerjoin(devices, devices.c.id == conversations.c.last_device_id)
        .order_by(conversations.c.last_at.desc(), conversations.c.address.desc())
        .limit(limit)
    )
    if before is not None:
        # A row value, not "a < x OR (a = x AND b < y)": both engines then seek the index
        # to the cursor, where the OR made SQLite walk it from the top (68 ms deep in 1M).
        query = query.where(
            tuple_(conversations.c.last_at, conversations.c.address) < tuple_(*before)
        )
    if number:
        query = query.where(conversations.c.address.contains(number, autoescape=True))
    return [_conversation_of(row) for row in conn.execute(query)]


@reads
def conversation(conn: Connection, address: str) -> Conversation | None:
    """Return the conversation with one number (its primary key), None when none."""
    row = conn.execute(
        select(conversations, devices.c.name.label("device_name"))
        .outerjoin(devices, devices.c.id == conversations.c.last_device_id)
        .where(conversations.c.address == address)
    ).first()
    return None if row is None else _conversation_of(row)


@writes
def mark_read(conn: Connection, address: str) -> bool:
    """Set a conversation's unread count to zero; False when there is no such thread."""
    done = conn.execute(
        update(conversations)
        .where(conversations.c.address == address)
        .values(unread=0)
        .returning(conversations.c.address)
    ).first()
    return done is not None


def _inbound_query(where: Any, before_id: int, limit: int) -> Any:
    return (
        select(
            inbound.c.id,
            inbound.c.received_at.label("at"),
            inbound.c.from_addr.label("address"),
            inbound.c.content,
            devices.c.name.label("device_name"),
        )
        .outerjoin(devices, devices.c.id == inbound.c.device_id)
        .where(where, inbound.c.id < before_id)
        .order_by(inbound.c.id.desc())
        .limit(limit)
    )


def _outbound_query(where: Any, before_id: int, limit: int) -> Any:
    return (
        select(
            outbound.c.id,
            outbound.c.created_at.label("at"),
            outbound.c.to_addr.label("address"),
            outbound.c.content,
            devices.c.name.label("device_name"),
            outbound.c.uuid,
            outbound.c.status,
            outbound.c.reason,
        )
        .outerjoin(devices, devices.c.id == outbound.c.device_id)
        .where(where, outbound.c.id < before_id)
        .order_by(outbound.c.id.desc())
        .limit(limit)
    )


def _merge(
    conn: Connection, in_where: Any, out_where: Any, before: ThreadCursor | None, limit: int
) -> tuple[list[ThreadMessage], ThreadCursor | None]:
    """Merge the newest-first ranges of both directions; return a page and its cursor.

    Each range is taken in id order and the page is a prefix of each, so the cursor (the
    last id shown of each direction) never skips an SMS, even where times and ids of one
    direction disagree a little.
    """
    in_before, out_before = before if before is not None else (_NONE_YET, _NONE_YET)
    ins: list[ThreadMessage] = []
    outs: list[ThreadMessage] = []
    if in_before > 0:
        for row in conn.execute(_inbound_query(in_where, in_before, limit)):
            ins.append(
                ThreadMessage(
                    IN, row.id, from_us(row.at), row.address, row.content, row.device_name
                )
            )
    if out_before > 0:
        for row in conn.execute(_outbound_query(out_where, out_before, limit)):
            outs.append(
                ThreadMessage(
                    OUT,
                    row.id,
                    from_us(row.at),
                    row.address,
                    row.content,
                    row.device_name,
                    row.uuid,
                    row.status,
                    row.reason,
                )
            )
    page: list[ThreadMessage] = []
    i = o = 0
    while len(page) < limit and (i < len(ins) or o < len(outs)):
        if o >= len(outs) or (i < len(ins) and ins[i].at > outs[o].at):
            page.append(ins[i])
            i += 1
        else:
            page.append(outs[o])
            o += 1
    # A direction is done when its range ran out before ``limit`` and all of it was shown.
    next_in = 0 if (len(ins) < limit and i == len(ins)) else (ins[i - 1].id if i else in_before)
    next_out = (
        0 if (len(outs) < limit and o == len(outs)) else (outs[o - 1].id if o else out_before)
    )
    if next_in == 0 and next_out == 0:
        return page, None
    return page, (next_in, next_out)


@reads
def thread(
    conn: Connection, address: str, before: ThreadCursor | None = None, limit: int = 50
) -> tuple[list[ThreadMessage], ThreadCursor | None]:
    """Return one number's SMS of both directions newest first, and the next cursor."""
    return _merge(
        conn, inbound.c.from_addr == address, outbound.c.to_addr == address, before, limit
    )


@reads
def search_messages(
    conn: Connection, text: str, before: ThreadCursor | None = None, limit: int = 50
) -> tuple[list[ThreadMessage], ThreadCursor | None]:
    """Return SMS of both directions whose text contains ``text`` (any case), newest
    first, and the next cursor.

    No full-text index: each page walks the newest SMS until it has found ``limit``
    matches, so a rare word costs a longer walk than a common one.
    """
    needle = text.lower()
    dialects.no_parallel_scan(conn)
    return _merge(
        conn,
        func.lower(inbound.c.content).contains(needle, autoescape=True),
        func.lower(outbound.c.content).contains(needle, autoescape=True),
        before,
        limit,
    )
