"""The test PostgreSQL server: where it is, and scratch databases on it (from PG* variables)."""

from __future__ import annotations

import os
import secrets

import psycopg

PG_HOST = os.environ.get("PGHOST", "127.0.0.1")
PG_PORT = os.environ.get("PGPORT", "5432")
PG_USER = os.environ.get("PGUSER", "postgres")


def pg_conninfo(dbname: str = "postgres") -> str:
    """Return a libpq connection string for a database on the test server."""
    return f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname={dbname} connect_timeout=5"


def pg_url(dbname: str) -> str:
    """Return a store URL for a database on the test server."""
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{dbname}"


def pg_admin(sql: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
    with psycopg.connect(pg_conninfo(), autocommit=True) as conn:
        conn.execute(sql.encode())


def create_pg_database(prefix: str = "smssync_e2e_") -> str:
    """Create an empty database and return its name."""
    name = prefix + secrets.token_hex(6)
    pg_admin(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(name: str) -> None:
    """Drop a scratch database, closing what still uses it."""
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
