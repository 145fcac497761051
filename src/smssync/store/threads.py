"""The conversations' index: one row per other party's number with its newest SMS, kept by
the verbs that store SMS, in their own transaction (``inbox``, ``queue``).

Each upsert is one ``INSERT … SELECT … GROUP BY number ON CONFLICT DO UPDATE`` over the rows
just inserted, in number order, so that two PostgreSQL transactions touching the same
numbers lock them in the same order and never deadlock.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, case, func, literal, null, select
from sqlalchemy.sql.expression import ColumnElement

from smssync.store import dialects
from smssync.store.rows import chunks
from smssync.store.schema import inbound, outbound, threads

_COLUMNS = ["number", "last_at", "last_inbound_id", "last_outbound_id"]


def _upsert(conn: Connection, rows: Any) -> None:
    statement = dialects.insert(conn, threads).from_select(_COLUMNS, rows)
    new = statement.excluded
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[threads.c.number],
            set_={
                "last_at": case(
                    (new.last_at > threads.c.last_at, new.last_at), else_=threads.c.last_at
                ),
                # Row ids only grow: the SMS just stored is the newest of its direction.
                "last_inbound_id": func.coalesce(new.last_inbound_id, threads.c.last_inbound_id),
                "last_outbound_id": func.coalesce(new.last_outbound_id, threads.c.last_outbound_id),
            },
        )
    )


def _typed_null() -> ColumnElement[Any]:
    return null().cast(threads.c.last_inbound_id.type)


def touch_inbound(conn: Connection, ids: list[int]) -> None:
    """Make the incoming SMS with these row ids the newest of their senders' threads (an
    empty sender belongs to no conversation)."""
    for part in chunks(ids):
        _upsert(
            conn,
            select(
                inbound.c.from_addr,
                func.max(inbound.c.received_at),
                func.max(inbound.c.id),
                _typed_null(),
            )
            .where(inbound.c.id.in_(part), inbound.c.from_addr != literal(""))
            .group_by(inbound.c.from_addr)
            .order_by(inbound.c.from_addr),
        )


def touch_outbound(conn: Connection, uuids: list[str]) -> None:
    """Make the outgoing SMS with these uuids the newest of their recipients' threads."""
    for part in chunks(uuids):
        _upsert(
            conn,
            select(
                outbound.c.to_addr,
                func.max(outbound.c.created_at),
                _typed_null(),
                func.max(outbound.c.id),
            )
            .where(outbound.c.uuid.in_(part))
            .group_by(outbound.c.to_addr)
            .order_by(outbound.c.to_addr),
        )
