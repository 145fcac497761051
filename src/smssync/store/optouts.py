"""The opt-out list: numbers that asked for no more bulk SMS, skipped by every campaign."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, select

from smssync.store import dialects
from smssync.store.engine import reads, writes
from smssync.store.rows import chunks, from_us, to_us
from smssync.store.schema import opt_outs


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
