"""The opt-out list: numbers that asked for no more bulk SMS, skipped by every campaign."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Connection, select

from smssync.store import dialects
from smssync.store.engine import reads, writes
from smssync.store.rows import chunks, from_us, to_us
from smssync.store.schema import opt_outs

#: An incoming SMS that is one of these words alone (any case, a final "." or "!" aside)
#: puts its sender on the list, or takes it off. Not CANCEL or END, which carriers also
#: honour: a patient cancelling an appointment must not lose every later reminder.
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE"})
START_WORDS = frozenset({"START", "UNSTOP"})


def _word(text: object) -> str:
    # Long texts are not one word: no need to strip and upper-case every SMS.
    value = str(text)
    return value.strip().rstrip(".!").upper() if len(value) <= 20 else ""


def honour_stops(conn: Connection, rows: Sequence[Mapping[str, object]]) -> None:
    """Put the senders of newly stored STOP SMS on the list and take START senders off,
    in the transaction that stores them (rows as ``inbox.row_of`` builds them)."""
    for row in rows:
        word = _word(row["content"])
        if word in STOP_WORDS:
            conn.execute(
                dialects.insert(conn, opt_outs)
                .values(address=row["from_addr"], source="stop", created_at=row["received_at"])
                .on_conflict_do_nothing(index_elements=[opt_outs.c.address])
            )
        elif word in START_WORDS:
            conn.execute(opt_outs.delete().where(opt_outs.c.address == row["from_addr"]))


@writes
def add_opt_out(conn: Connection, address: str, source: str, now: datetime) -> bool:
    """Put a normalised number on the list; False when it was already there."""
    statement = (
        dialects.insert(conn, opt_outs)
        .values(address=address, source=source, created_at=to_us(now))
        .on_conflict_do_nothing(index_elements=[opt_outs.c.address])
        .returning(opt_outs.c.address)
    )
    return conn.execute(statement).first() is not None


@writes
def remove_opt_out(conn: Connection, address: str) -> bool:
    """Take a number off the list; False when it was not on it."""
    gone = conn.execute(
        opt_outs.delete().where(opt_outs.c.address == address).returning(opt_outs.c.address)
    ).first()
    return gone is not None


@reads
def list_opt_outs(
    conn: Connection, after: str = "", limit: int = 100
) -> list[tuple[str, str, datetime]]:
    """Return (number, source, since) after ``after`` in number order (a keyset page)."""
    rows = conn.execute(
        select(opt_outs).where(opt_outs.c.address > after).order_by(opt_outs.c.address).limit(limit)
    )
    return [(row.address, row.source, from_us(row.created_at)) for row in rows]


def opted_out(conn: Connection, addresses: Iterable[str]) -> set[str]:
    """Return which of the numbers are on the list, in the caller's transaction."""
    found: set[str] = set()
    for part in chunks(sorted(set(addresses))):
        query = select(opt_outs.c.address).where(opt_outs.c.address.in_(part))
        found.update(conn.execute(query).scalars())
    return found


@reads
def opted_out_among(conn: Connection, addresses: list[str]) -> set[str]:
    """Return which of the numbers are on the list."""
    return opted_out(conn, addresses)
