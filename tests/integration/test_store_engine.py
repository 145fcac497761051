"""What every engine shares: driver errors become ours in one place, and the driver's extra."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Connection, text

from smssync.errors import StoreError, StoreUnavailable
from smssync.store.engine import Database, retryable, translate, wrap_exceptions

#: What a violated key must not carry into an error message (an SMS text, a hash).
SECRET = "secret-sms-text"


def insert_twice(conn: Connection) -> None:
    conn.execute(text("CREATE TEMPORARY TABLE scratch (v TEXT UNIQUE)"))
    for _ in range(2):
        conn.execute(text("INSERT INTO scratch (v) VALUES (:v)"), {"v": SECRET})


async def test_a_violated_key_is_a_store_error_that_names_no_value(store: Database) -> None:
    with pytest.raises(StoreError) as raised:
        await store.write(insert_twice)
    assert not isinstance(raised.value, StoreUnavailable)
    assert SECRET not in str(raised.value) and "database error" in str(raised.value)


def test_a_locked_sqlite_database_is_retryable_and_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    holder = sqlite3.connect(path, isolation_level=None)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as raised:
            other.execute("BEGIN IMMEDIATE")
        assert retryable(raised.value)
        holder.execute("CREATE TABLE t (v UNIQUE)")
        holder.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(sqlite3.IntegrityError) as integrity:
            holder.execute("INSERT INTO t VALUES (1)")
        assert not retryable(integrity.value)
    finally:
        holder.close()
        other.close()


def test_postgres_serialization_failures_and_deadlocks_are_retryable() -> None:
    assert retryable(psycopg.errors.SerializationFailure())
    assert retryable(psycopg.errors.DeadlockDetected())
    assert not retryable(psycopg.errors.UniqueViolation())


def test_errors_that_are_not_the_drivers_pass_through() -> None:
    error = ValueError("a verb's own")
    assert translate(error) is error
    with pytest.raises(ValueError), wrap_exceptions():
        raise error
    unavailable = StoreUnavailable("ours already")
    assert translate(unavailable) is unavailable


WITHOUT_PSYCOPG = """
import sys
sys.modules["psycopg"] = None  # as if smssync were installed without the extra
from smssync.errors import ConfigError
from smssync.store import open_store
try:
    open_store("postgresql://u@h/db")
except ConfigError as error:
    print(error)
"""


def test_postgresql_without_psycopg_names_the_extra() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PSYCOPG], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'smssync[postgres]'" in done.stdout
