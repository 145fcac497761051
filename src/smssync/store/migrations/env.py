"""Alembic environment: run migrations on the connection the store hands in."""

from __future__ import annotations

from alembic import context

from smssync.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
# The store already opened the transaction (and took its lock), so this joins it.
with context.begin_transaction():
    context.run_migrations()
