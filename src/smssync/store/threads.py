"""The conversations' index: one row per other party's number with its newest SMS, kept by
the verbs that store SMS, in their own transaction (``inbox``, ``queue``).

Each write upserts (``INSERT … ON CONFLICT DO UPDATE``) one row per number it touched, in
number order, so that two PostgreSQL transactions touching the same numbers lock them in
the same order and never deadlock: incoming SMS from the values in hand, outgoing ones by
an ``INSERT … SELECT … GROUP BY`` over the rows just queued (their ids are not returned).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, case, func, null, select
from sqlalchemy.sql.expression import ColumnElement

from smssync.store import dialects
from smssync.store.rows import chunks
from smssync.store.schema import outbound, threads

_COLUMNS = ["number", "last_at", "last_inbound_id", "last_outbound_id"]


def _upsert(conn: Connection, rows: Any) -> None:
    _on_conflict(conn, dialects.insert(conn, threads).from_select(_COLUMNS, rows))


def _on_conflict(
    conn: Connection, statement: Any, values: list[dict[str, Any]] | None = None
) -> None:
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
        ),
        values,
    )


def _typed_null() -> ColumnElement[Any]:
    return null().cast(threads.c.last_inbound_id.type)


def touch_inbound(conn: Connection, stored: list[tuple[str, int, int]]) -> None:
    """Make the incoming SMS just stored, ``(from_addr, received_at µs, row id)``, the
    newest of their senders' threads (an empty sender belongs to no conversation).

    From the values in hand, not a SELECT of the rows: this runs in every write of
    incoming SMS, under SQLite's single writer."""
    newest: dict[str, tuple[int, int]] = {}
    for number, at_us, row_id in stored:
        if number:
            seen = newest.get(number)
            newest[number] = (
                (max(at_us, seen[0]), max(row_id, seen[1])) if seen else (at_us, row_id)
            )
    values = [
        {"number": n, "last_at": at, "last_inbound_id": i, "last_outbound_id": None}
        for n, (at, i) in sorted(newest.items())
    ]
    if values:
        # One statement, executed for each row: compiled once and cached, unlike a VALUES
        # list whose length changes with every batch.
        _on_conflict(conn, dialects.insert(conn, threads), values)


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
