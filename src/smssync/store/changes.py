"""Telling every process that a cached noun changed: ``announce`` inside the transaction.

A server process caches what every request needs (devices for authentication, rules and
webhooks for incoming SMS, API keys). A verb that changes one of those nouns announces it in
its own transaction, so the announcement exists exactly when the change does:

- PostgreSQL: ``pg_notify`` on ``CHANNEL``, which PostgreSQL delivers at commit to every
  session listening (each server process keeps one, ``postgres.follow_changes``);
- SQLite: a ``meta`` row per noun (``changes:<noun>``) gets a new random value; the processes
  sharing the file (``serve --workers``, the CLI) compare the rows with what they last saw
  before they trust a cache (``SqliteStore.fresh``).
"""

from __future__ import annotations

import os

from sqlalchemy import Connection, text

from smssync.store import dialects
from smssync.store.schema import meta

#: The PostgreSQL channel; the payload is the noun.
CHANNEL = "smssync_changes"
#: The ``meta`` keys of SQLite's change marks.
PREFIX = "changes:"


def announce(conn: Connection, noun: str) -> None:
    """Tell every process, once this transaction commits, that ``noun`` changed."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:channel, :noun)"), {"channel": CHANNEL, "noun": noun})
        return
    # A fresh random value rather than a counter: any difference is news, and no two
    # processes can write the same value and hide a change from each other.
    insert = dialects.insert(conn, meta).values(key=PREFIX + noun, value=os.urandom(8))
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[meta.c.key], set_={"value": insert.excluded.value}
        )
    )


#: The change marks: the rows of ``meta`` whose key starts with PREFIX (a range of its key,
#: ``;`` being the character after ``:``), as SQL that a plain sqlite3 connection runs too.
MARKS_SQL = "SELECT key, value FROM meta WHERE key >= 'changes:' AND key < 'changes;'"


def marks(conn: Connection) -> dict[str, bytes]:
    """Return SQLite's change mark of each ``changes:<noun>`` key ever announced."""
    return {row.key: bytes(row.value) for row in conn.execute(text(MARKS_SQL))}
