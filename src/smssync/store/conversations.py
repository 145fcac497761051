"""Conversations: SMS in both directions grouped by the other party's number.

A thread is a number: the senders of inbound SMS and the recipients of outbound ones, listed
from the ``threads`` table (``store/threads.py`` keeps it), read through the
``(from_addr, id)`` and ``(to_addr, id)`` indexes. Pages are keysets (the
newest first for the list, ids for a thread), never OFFSET; watching a thread for changes
reads the store from a cursor, so any process of any server sees what any other wrote.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, Subquery, and_, func, literal, select, tuple_
from sqlalchemy.sql.expression import ColumnElement

from smssync.records import Inbound, Outbound, Thread, ThreadCursor, ThreadFilter, ThreadPage
from smssync.store.engine import reads
from smssync.store.messages import outbound_by_ids
from smssync.store.rows import from_us, inbound_of
from smssync.store.schema import devices, inbound, outbound, outbound_history
from smssync.store.schema import threads as threads_table


def inbound_by_ids(conn: Connection, ids: list[int]) -> dict[int, Inbound]:
    if not ids:
        return {}
    rows = conn.execute(
        select(inbound, devices.c.name.label("device_name"))
        .outerjoin(devices, devices.c.id == inbound.c.device_id)
        .where(inbound.c.id.in_(ids))
    )
    return {row.id: inbound_of(row._mapping) for row in rows}


@reads
def threads(
    conn: Connection,
    *,
    only: ThreadFilter | None = None,
    before: ThreadCursor | None = None,
    limit: int = 50,
) -> tuple[list[Thread], ThreadCursor | None]:
    """Return threads, the most recently active first, and the cursor of the next page
    (None on the last); ``only`` narrows them to a phone and a range of last activity.

    One range of the ``(last_at, number)`` index, or of ``(last_device_id, last_at,
    number)`` for a phone, however many SMS are stored (text search: ``store/search.py``)."""
    source = _listed()
    query = select(source).order_by(source.c.last_at.desc(), source.c.number.desc())
    query = query.where(*narrowed(source, only))
    if before is not None:
        query = query.where(
            tuple_(source.c.last_at, source.c.number)
            < tuple_(literal(before.last_at_us), literal(before.number))
        )
    rows = list(conn.execute(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = ThreadCursor(rows[-1].last_at, rows[-1].number) if more and rows else None
    return described(conn, rows), cursor


def narrowed(source: Any, only: ThreadFilter | None) -> list[ColumnElement[bool]]:
    """Return the conditions of ``only`` over a selectable of ``threads``' columns."""
    if only is None:
        return []
    where: list[ColumnElement[bool]] = []
    if only.device_id is not None:
        where.append(source.c.last_device_id == only.device_id)
    if only.since_us is not None:
        where.append(source.c.last_at >= only.since_us)
    if only.until_us is not None:
        where.append(source.c.last_at < only.until_us)
    return where


@reads
def threads_since(
    conn: Connection, after: ThreadCursor, limit: int = 50
) -> tuple[list[Thread], ThreadCursor]:
    """Return threads active after the cursor, the oldest change first, and the cursor to
    watch on from (one range of the ``threads`` index: a list's live feed)."""
    source = _listed()
    rows = list(
        conn.execute(
            select(source)
            .where(
                tuple_(source.c.last_at, source.c.number)
                > tuple_(literal(after.last_at_us), literal(after.number))
            )
            .order_by(source.c.last_at, source.c.number)
            .limit(limit)
        )
    )
    found = described(conn, rows)
    cursor = ThreadCursor(rows[-1].last_at, rows[-1].number) if rows else after
    return found, cursor


def described(conn: Connection, rows: list[Any]) -> list[Thread]:
    """Return the threads of rows of ``listed()``, each with its newest SMS."""
    ins = inbound_by_ids(conn, [r.last_in for r in rows if r.last_in is not None])
    outs = {m.seq: m for m in outbound_by_ids(conn, [r.last_out for r in rows if r.last_out])}
    found: list[Thread] = []
    for row in rows:
        last_in = ins.get(row.last_in) if row.last_in is not None else None
        last_out = outs.get(row.last_out) if row.last_out is not None else None
        newest = _newer(last_in, last_out)
        if newest is not None:
            found.append(Thread(row.number, from_us(row.last_at), newest, row.unread))
    return found


def _listed() -> Subquery:
    return listed().subquery()


def listed() -> Select[Any]:
    """Select the columns of ``threads`` that ``described`` reads."""
    return select(
        threads_table.c.number,
        threads_table.c.last_at,
        threads_table.c.last_inbound_id.label("last_in"),
        threads_table.c.last_outbound_id.label("last_out"),
        threads_table.c.unread,
        threads_table.c.last_device_id,
    )


def _newer(a: Inbound | None, b: Outbound | None) -> Inbound | Outbound | None:
    if a is None or b is None:
        return a or b
    return a if a.received_at >= b.created_at else b


@reads
def thread(
    conn: Connection,
    number: str,
    *,
    before_inbound: int | None = None,
    before_outbound: int | None = None,
    limit: int = 50,
) -> ThreadPage:
    """Return up to ``limit`` of the newest SMS of each direction with ``number`` (older
    than the ``before_*`` ids when given), and the cursors to page back and to watch."""
    in_where = [inbound.c.from_addr == number]
    if before_inbound is not None:
        in_where.append(inbound.c.id < before_inbound)
    out_where = [outbound.c.to_addr == number]
    if before_outbound is not None:
        out_where.append(outbound.c.id < before_outbound)
    in_ids = list(
        conn.execute(
            select(inbound.c.id).where(*in_where).order_by(inbound.c.id.desc()).limit(limit + 1)
        ).scalars()
    )
    out_ids = list(
        conn.execute(
            select(outbound.c.id).where(*out_where).order_by(outbound.c.id.desc()).limit(limit + 1)
        ).scalars()
    )
    more_in, more_out = len(in_ids) > limit, len(out_ids) > limit
    in_ids, out_ids = in_ids[:limit], out_ids[:limit]
    ins = inbound_by_ids(conn, in_ids)
    return ThreadPage(
        inbound=tuple(ins[i] for i in sorted(ins)),
        outbound=tuple(outbound_by_ids(conn, out_ids)),
        before_inbound=min(in_ids) if more_in else None,
        before_outbound=min(out_ids) if more_out else None,
        after_inbound=_newest_inbound(conn, number),
        after_history=_newest_history(conn, number),
    )


def _newest_inbound(conn: Connection, number: str) -> int:
    found = conn.execute(
        select(func.max(inbound.c.id)).where(inbound.c.from_addr == number)
    ).scalar()
    return int(found or 0)


def _newest_history(conn: Connection, number: str) -> int:
    found = conn.execute(
        select(func.max(outbound_history.c.id))
        .join(outbound, outbound.c.id == outbound_history.c.outbound_id)
        .where(outbound.c.to_addr == number)
    ).scalar()
    return int(found or 0)


@reads
def thread_changes(
    conn: Connection, number: str, after_inbound: int, after_history: int, limit: int = 200
) -> ThreadPage:
    """Return what changed in a thread since its cursors: inbound SMS above
    ``after_inbound``, and outbound SMS queued or changed status after ``after_history``
    (at most ``limit`` of each; the next call gets the rest)."""
    in_ids = list(
        conn.execute(
            select(inbound.c.id)
            .where(inbound.c.from_addr == number, inbound.c.id > after_inbound)
            .order_by(inbound.c.id)
            .limit(limit)
        ).scalars()
    )
    changed = list(
        conn.execute(
            select(outbound.c.id, func.max(outbound_history.c.id).label("newest"))
            .join(outbound_history, outbound_history.c.outbound_id == outbound.c.id)
            .where(and_(outbound.c.to_addr == number, outbound_history.c.id > after_history))
            .group_by(outbound.c.id)
            .order_by(func.max(outbound_history.c.id))
            .limit(limit)
        )
    )
    ins = inbound_by_ids(conn, in_ids)
    return ThreadPage(
        inbound=tuple(ins[i] for i in sorted(ins)),
        outbound=tuple(outbound_by_ids(conn, [row.id for row in changed])),
        before_inbound=None,
        before_outbound=None,
        after_inbound=max(in_ids, default=after_inbound),
        after_history=max((row.newest for row in changed), default=after_history),
    )


def merged(page: ThreadPage) -> list[Inbound | Outbound]:
    """Return a page's SMS of both directions in time order, the oldest first."""
    items: list[Inbound | Outbound] = [*page.inbound, *page.outbound]
    return sorted(items, key=lambda m: m.received_at if isinstance(m, Inbound) else m.created_at)
