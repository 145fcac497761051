"""Store fixtures: a SQLite file per test, and a PostgreSQL database cloned from a template."""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from smssync.store import open_store
from smssync.store.engine import Database
from tests.pg import PG_HOST, PG_PORT, pg_admin, pg_conninfo, pg_url

#: CI always has PostgreSQL; only an explicit opt-out turns its absence into skips.
NO_POSTGRES = os.environ.get("SMSSYNC_TEST_NO_POSTGRES") == "1"


def pytest_report_header() -> list[str]:
    """Print the SQLite and PostgreSQL versions the store tests run against."""
    try:
        with psycopg.connect(pg_conninfo()) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        postgres = f"PostgreSQL {row[0] if row else '?'} at {PG_HOST}:{PG_PORT}"
    except psycopg.Error as exc:
        postgres = f"PostgreSQL unreachable at {PG_HOST}:{PG_PORT} ({type(exc).__name__})"
    return [f"SQLite {sqlite3.sqlite_version}", postgres]


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Run every coroutine test on asyncio through AnyIO's plugin."""
    if inspect.iscoroutinefunction(obj) and name.startswith("test"):
        pytest.mark.anyio(obj)
        pytest.mark.usefixtures("anyio_backend")(obj)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Pick asyncio: the stores resolve futures on the running asyncio loop."""
    return "asyncio"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """Create and migrate a template database once per session; drop it at the end."""
    try:
        pg_admin("SELECT 1")
    except psycopg.Error as exc:
        message = f"PostgreSQL unreachable at {PG_HOST}:{PG_PORT}: {exc}"
        if NO_POSTGRES:
            pytest.skip(message)
        pytest.fail(message + " (set SMSSYNC_TEST_NO_POSTGRES=1 to skip)", pytrace=False)
    name = "smssync_tmpl_" + secrets.token_hex(4)
    pg_admin(f'CREATE DATABASE "{name}"')

    async def migrate() -> None:
        store = open_store(pg_url(name))
        await store.open()
        await store.close()

    try:
        asyncio.run(migrate())
        yield name
    finally:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_database(pg_template: str) -> Iterator[str]:
    """Clone the migrated template into a database for one test."""
    name = "smssync_test_" + secrets.token_hex(6)
    pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    try:
        yield name
    finally:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Return where a test's store lives: a SQLite file or a fresh PostgreSQL database."""
    if request.param == "postgres":
        return pg_url(request.getfixturevalue("pg_database"))
    return str(tmp_path / "smssync.db")


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Database]:
    """Return an open store, on SQLite or PostgreSQL; closed after the test."""
    opened = open_store(store_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
