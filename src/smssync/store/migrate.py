"""Apply the Alembic migrations shipped inside the package, without an alembic.ini."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, text

MIGRATIONS = Path(__file__).parent / "migrations"

#: pg_advisory_xact_lock key serialising migrations of concurrent processes ("smssync").
PG_MIGRATION_LOCK = 0x736D7373796E63


def _shipped() -> Config:
    """The Alembic config of the migrations shipped in the package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def alembic_config(connection: Connection) -> Config:
    """Build an Alembic config that migrates over ``connection``."""
    config = _shipped()
    config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection) -> None:
    """Migrate to the newest revision inside the caller's open transaction.

    On SQLite the caller's ``BEGIN IMMEDIATE`` already excludes other writers; PostgreSQL
    takes a transaction-scoped advisory lock so two starting servers do not race.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
    command.upgrade(alembic_config(connection), "head")


@functools.cache
def head() -> str:
    """Return the newest revision this code ships (read from the package once)."""
    revision = ScriptDirectory.from_config(_shipped()).get_current_head()
    assert revision is not None  # the package always ships migrations
    return revision


def is_known(revision: str) -> bool:
    """Tell whether ``revision`` is one of the migrations this code ships (a database from
    a newer smssync is at one it does not know)."""
    try:
        return ScriptDirectory.from_config(_shipped()).get_revision(revision) is not None
    except CommandError:
        return False


def current(connection: Connection) -> str | None:
    """Return the revision the database is at (None before the first migration)."""
    return MigrationContext.configure(connection).get_current_revision()
