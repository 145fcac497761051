"""Conversations: unread counts, the phone of each thread's newest SMS, number search by
suffix, and the search index of the SMS's text (issue 18).

Text search is substring search, as before, but read from an index: on SQLite an FTS5
table with the trigram tokenizer beside each SMS table (external content, so the text is
not stored twice), kept by triggers; on PostgreSQL a ``pg_trgm`` GIN index on each
``content``. Both answer ``contains``, case-insensitive, for three characters or more.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: Rows of ``threads`` (or SMS for the search index) filled per statement.
BATCH = 10_000

#: The SMS tables and their search index (``store/search.py`` reads them).
_SEARCHED = {"inbound": "inbound_search", "outbound": "outbound_search"}


def _sqlite_search(table: str, fts: str) -> list[str]:
    # External content: the FTS table stores only its index, and reads the text from the
    # SMS table by rowid. The triggers keep it exact under inserts, retention's purge
    # (an UPDATE of content) and deletes.
    old = f"INSERT INTO {fts} ({fts}, rowid, content) VALUES ('delete', old.id, old.content)"
    new = f"INSERT INTO {fts} (rowid, content) VALUES (new.id, new.content)"
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5(content, content='{table}', "
        f"content_rowid='id', tokenize='trigram')",
        f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN {new}; END",
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN {old}; END",
        f"CREATE TRIGGER {fts}_au AFTER UPDATE OF content ON {table} BEGIN {old}; {new}; END",
    ]


def _fill_search(conn: sa.Connection, table: str, fts: str) -> None:
    top = conn.execute(sa.text(f"SELECT MAX(id) FROM {table}")).scalar() or 0
    for start in range(0, int(top), BATCH):
        conn.execute(
            sa.text(
                f"INSERT INTO {fts} (rowid, content) SELECT id, content FROM {table} "
                "WHERE id > :lo AND id <= :hi"
            ),
            {"lo": start, "hi": start + BATCH},
        )


def _fill_threads(conn: sa.Connection) -> None:
    # In Python, in batches of numbers: SQLite has no reverse(). The phone is the one of the
    # thread's newest SMS, as the upserts keep it from now on.
    after = ""
    while True:
        rows = list(
            conn.execute(
                sa.text(
                    "SELECT t.number, t.last_at, i.device_id AS in_device, "
                    "i.received_at AS in_at, o.device_id AS out_device "
                    "FROM threads t "
                    "LEFT JOIN inbound i ON i.id = t.last_inbound_id "
                    "LEFT JOIN outbound o ON o.id = t.last_outbound_id "
                    "WHERE t.number > :after ORDER BY t.number LIMIT :n"
                ),
                {"after": after, "n": BATCH},
            )
        )
        if not rows:
            return
        conn.execute(
            sa.text(
                "UPDATE threads SET number_reversed = :reversed, last_device_id = :device "
                "WHERE number = :number"
            ),
            [
                {
                    "number": row.number,
                    "reversed": row.number[::-1],
                    "device": row.in_device
                    if row.in_at is not None and row.in_at >= row.last_at
                    else (row.out_device if row.out_device is not None else row.in_device),
                }
                for row in rows
            ],
        )
        after = rows[-1].number


def upgrade() -> None:
    """Add the columns and indexes, fill them from the rows already stored."""
    conn = op.get_bind()
    with op.batch_alter_table("threads") as batch:
        batch.add_column(sa.Column("unread", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("number_reversed", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("last_device_id", sa.Integer(), nullable=True))
    _fill_threads(conn)
    op.create_index("ix_threads_unread", "threads", ["unread"])
    op.create_index("ix_threads_number_reversed", "threads", ["number_reversed"])
    op.create_index(
        "ix_threads_last_device_id_last_at_number",
        "threads",
        ["last_device_id", "last_at", "number"],
    )
    if conn.dialect.name == "postgresql":
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for table in _SEARCHED:
            op.create_index(
                f"ix_{table}_content_trgm",
                table,
                ["content"],
                postgresql_using="gin",
                postgresql_ops={"content": "gin_trgm_ops"},
            )
    else:
        for table, fts in _SEARCHED.items():
            for statement in _sqlite_search(table, fts):
                op.execute(statement)
            _fill_search(conn, table, fts)


def downgrade() -> None:
    """Drop what 0014 added (PostgreSQL keeps the extension: others may use it)."""
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        for table in _SEARCHED:
            op.drop_index(f"ix_{table}_content_trgm", table)
    else:
        for fts in _SEARCHED.values():
            for suffix in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER {fts}_{suffix}")
            op.execute(f"DROP TABLE {fts}")
    op.drop_index("ix_threads_last_device_id_last_at_number", "threads")
    op.drop_index("ix_threads_number_reversed", "threads")
    op.drop_index("ix_threads_unread", "threads")
    with op.batch_alter_table("threads") as batch:
        batch.drop_column("last_device_id")
        batch.drop_column("number_reversed")
        batch.drop_column("unread")
