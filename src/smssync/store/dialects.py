"""The few statements that differ between SQLite and PostgreSQL, isolated here."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import JSON, BigInteger, ColumnElement, Connection, Table, cast, func, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.selectable import GenerativeSelect

SelectT = TypeVar("SelectT", bound=GenerativeSelect)

#: pg_advisory_xact_lock class for per-device claims ("claim").
PG_CLAIM_LOCK = 0x636C61


def insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """Return the dialect's INSERT, which knows ON CONFLICT."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def lock_device_claims(conn: Connection, device_id: int) -> None:
    """Serialise claims of one device so two processes cannot both spend its pacing budget.

    SQLite needs nothing: its one writer and ``BEGIN IMMEDIATE`` already serialise writes.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:kind, :device)"),
            {"kind": PG_CLAIM_LOCK, "device": device_id},
        )


def skip_locked(conn: Connection, query: SelectT) -> SelectT:
    """Lock the selected queue rows, skipping those another transaction is claiming."""
    if conn.dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def for_update(conn: Connection, query: SelectT) -> SelectT:
    """Lock the selected rows until commit, so a read-then-update cannot lose a race.

    SQLite needs nothing: its one writer runs transactions one at a time.
    """
    if conn.dialect.name == "postgresql":
        return query.with_for_update()
    return query


def refresh_statistics(conn: Connection, table: Table) -> None:
    """Refresh PostgreSQL's planner statistics after a bulk change.

    Until autovacuum catches up, a freshly filled queue looks empty to the planner, which
    then sorts the whole queue for every claim instead of walking an index. SQLite plans
    without statistics, from the indexes alone.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"ANALYZE {table.name}"))


def json_int(conn: Connection, column: ColumnElement[str], key: str) -> ColumnElement[int]:
    """An integer member of a JSON text column, read by the database (NULL when absent)."""
    if conn.dialect.name == "postgresql":
        return cast(cast(column, JSON)[key].as_string(), BigInteger)
    return cast(func.json_extract(column, f"$.{key}"), BigInteger)
