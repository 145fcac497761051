"""Persistence: store verbs, one module per noun, over a Database (SQLite or PostgreSQL).

devices, liveness, inbox (inbound SMS), queue (enqueue and claim), results (E5 to E7, cancel),
messages (outbound SMS as people read them), stuck, wire (wire ids), webhooks, rules, apikeys,
schedule (periodic jobs), serverkey, retention (purging old SMS text), export (SMS for
``smssync export``), campaigns (bulk sends) and release (into the queue), optouts,
users, threads and conversations (the dashboard's); backup (SQLite files, not verbs).
"""

from __future__ import annotations

import importlib

from smssync.errors import ConfigError
from smssync.store.engine import Database

__all__ = ["open_store"]


def open_store(url_or_path: str) -> Database:
    """Return an unopened store: ``sqlite:///path`` or a plain path, or ``postgresql://...``."""
    if url_or_path.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        # Imported lazily: SQLite-only installs have no PostgreSQL driver.
        try:
            importlib.import_module("psycopg")
        except ImportError:
            raise ConfigError(
                "PostgreSQL needs the psycopg driver: pip install 'smssync[postgres]'"
            ) from None
        from smssync.store.postgres import PostgresStore

        return PostgresStore(url_or_path)
    if url_or_path.startswith("sqlite:///"):
        path = url_or_path[len("sqlite:///") :]
    elif "://" in url_or_path or url_or_path.startswith("sqlite:"):
        raise ConfigError(f"unsupported database URL {url_or_path.split(':')[0]}:…")
    else:
        path = url_or_path
    if not path or path == ":memory:":
        raise ConfigError("SQLite needs a file: the writer and readers share it")
    from smssync.store.sqlite import SqliteStore

    return SqliteStore(path)
