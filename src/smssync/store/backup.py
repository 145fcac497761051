"""Backups of a SQLite store with SQLite's online backup API, and their restore.

``backup`` copies a database that servers are using: one backup step under one read
transaction, which WAL lets writers go on beside, so the copy is the database as of one
commit, never half of a write. The copy is written beside its target and renamed over it
when whole, in rollback-journal mode (a single file, no -wal to lose in a copy), 0600.

``restore`` checks that a file is a whole smssync database of a revision this code knows,
then copies it over the store with the same API, under SQLite's own locks. It must run with
the servers stopped: a running server keeps caches (devices, keys) of the database it had.

PostgreSQL has its own tools for both (``pg_dump``, ``pg_restore``): docs/deploy.md.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from smssync.errors import StoreError
from smssync.store import migrate
from smssync.store.files import SQLITE_SIDE_FILES, private_database, private_file
from smssync.store.sqlite import BUSY_TIMEOUT_MS


@contextlib.contextmanager
def _connected(path: Path, *, read_only: bool = False) -> Iterator[sqlite3.Connection]:
    uri = f"file:{path}?mode=ro" if read_only else f"file:{path}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as error:
        raise StoreError(f"cannot open {path}: {error}") from None
    try:
        yield conn
    except sqlite3.Error as error:
        raise StoreError(f"{path}: {error}") from None
    finally:
        conn.close()


def backup(database: Path, target: Path) -> str:
    """Copy the live SQLite ``database`` to ``target``; return the copy's migration."""
    if not database.is_file():
        raise StoreError(f"no SQLite database at {database}")
    partial = target.with_name(f".{target.name}.partial")
    try:
        _remove(partial)
        private_file(partial)
    except OSError as error:
        raise StoreError(f"cannot write {target}: {error.strerror}") from None
    try:
        with _connected(database) as source, _connected(partial) as copy:
            # pages=-1: the whole database in one step, so one snapshot.
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE").close()
            revision = check(copy, partial)
        os.replace(partial, target)
    except OSError as error:
        raise StoreError(f"cannot write {target}: {error.strerror}") from None
    finally:
        _remove(partial)
    return revision


def check(conn: sqlite3.Connection, path: Path) -> str:
    """Return the migration of an intact smssync database; raise StoreError otherwise."""
    try:
        verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path} is not a SQLite database: {error}") from None
    if verdict != "ok":
        raise StoreError(f"{path} is damaged: {verdict}")
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        row = None
    if row is None:
        raise StoreError(f"{path} is not an smssync database (no migration recorded)")
    revision = str(row[0])
    if not migrate.is_known(revision):
        raise StoreError(
            f"{path} is at migration {revision}, which this smssync does not know:"
            " it was made by a newer one"
        )
    return revision


def restore(backup_file: Path, database: Path) -> str:
    """Replace the SQLite ``database`` with a backup's content; return its migration (the
    next server start migrates it to this code's head)."""
    if not backup_file.is_file():
        raise StoreError(f"no backup at {backup_file}")
    with _connected(backup_file, read_only=True) as source:
        revision = check(source, backup_file)
        try:
            private_database(database)
        except OSError as error:
            raise StoreError(f"cannot write {database}: {error.strerror}") from None
        with _connected(database) as target:
            source.backup(target)
    return revision


def _remove(path: Path) -> None:
    for name in (path, *(path.with_name(path.name + s) for s in SQLITE_SIDE_FILES)):
        name.unlink(missing_ok=True)
