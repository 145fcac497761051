"""Migrating from zero equals schema.py, on both engines; open_store picks the backend."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Index, create_engine, inspect, text

from smssync.errors import ConfigError
from smssync.store import open_store, serverkey
from smssync.store.postgres import PostgresStore, engine_url
from smssync.store.schema import SQLITE_SEARCH_TABLES, dialect_only, metadata
from smssync.store.sqlite import SqliteStore
from tests.pg import pg_url


def engine_for(store_url: str) -> str:
    """Return a SQLAlchemy URL for a test store location."""
    if store_url.startswith("postgresql://"):
        return engine_url(store_url)
    return f"sqlite:///{store_url}"


def describe(conn: Connection) -> dict[str, tuple[list[str], list[str]]]:
    """Return each table's column names and index names."""
    inspector = inspect(conn)
    return {
        table: (
            sorted(c["name"] for c in inspector.get_columns(table)),
            # PostgreSQL reports the index behind each UNIQUE constraint too.
            sorted(
                str(i["name"])
                for i in inspector.get_indexes(table)
                if not i.get("duplicates_constraint")
            ),
        )
        for table in inspector.get_table_names()
    }


async def test_migrating_from_zero_equals_the_schema(store_url: str) -> None:
    store = open_store(store_url)
    await store.open()
    await store.close()
    engine = create_engine(engine_for(store_url))
    try:
        with engine.connect() as conn:
            dialect = conn.dialect.name
            found = {
                name: shape
                for name, shape in describe(conn).items()
                # SQLite's FTS5 tables and their shadow tables live outside the metadata.
                if not name.startswith(SQLITE_SEARCH_TABLES)
            }
            assert found.pop("alembic_version") == (["version_num"], [])
            expected = {
                table.name: (
                    sorted(c.name for c in table.columns),
                    sorted(str(i.name) for i in table.indexes if dialect_only(i, dialect)),
                )
                for table in metadata.sorted_tables
            }
            assert found == expected
            if dialect == "sqlite":
                assert {n for n in describe(conn) if n.startswith(SQLITE_SEARCH_TABLES)} >= set(
                    SQLITE_SEARCH_TABLES
                )

            def ours(obj: object, name: str | None, kind: str, *_: object) -> bool:
                if kind == "table":
                    return not (name or "").startswith(SQLITE_SEARCH_TABLES)
                if kind == "index" and isinstance(obj, Index):
                    return dialect_only(obj, dialect)
                return True

            # Alembic's own comparison also checks types, nullability, keys and constraints.
            context = MigrationContext.configure(conn, opts={"include_object": ours})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


async def test_concurrent_opens_migrate_once(store_url: str) -> None:
    stores = [open_store(store_url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    keys = [await serverkey.server_key(s) for s in stores]
    for s in stores:
        await s.close()
    assert len(set(keys)) == 1


def test_open_store_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path / "a.db")), SqliteStore)
    store = open_store(f"sqlite:///{tmp_path}/b.db")
    assert isinstance(store, SqliteStore) and store.path == tmp_path / "b.db"
    relative = open_store("sqlite:///data/c.db")
    assert isinstance(relative, SqliteStore) and relative.path == Path("data/c.db")
    for url in ("postgres://u@h/db", "postgresql://u@h/db", "postgresql+psycopg://u@h/db"):
        pg = open_store(url)
        assert isinstance(pg, PostgresStore) and pg.url == "postgresql+psycopg://u@h/db"
    for bad in ("mysql://h/db", "sqlite://", "sqlite:///:memory:", ""):
        with pytest.raises(ConfigError):
            open_store(bad)


@pytest.mark.postgres
async def test_unreachable_postgres_is_store_unavailable() -> None:
    from smssync.errors import StoreUnavailable

    store = open_store(pg_url("smssync_no_such_database"))
    with pytest.raises(StoreUnavailable):
        await store.open()
    await store.close()


def test_0003_subscribes_all_event_endpoints_and_marks_accepted_messages(store_url: str) -> None:
    from alembic import command

    from smssync.store.migrate import alembic_config

    engine = create_engine(engine_for(store_url))
    before = [
        "message.received",
        "message.sent",
        "message.failed",
        "message.delivered",
        "message.undelivered",
        "device.offline",
        "device.online",
    ]
    message = (
        "INSERT INTO outbound (uuid, pinned, to_addr, content, segments, status, created_at, "
        "updated_at, result_listings, claim_rank) "
        "VALUES (:uuid, false, '+1', 'x', 1, :status, 1, 1, 0, 0)"
    )
    try:
        with engine.begin() as conn:
            # The test database may come migrated already (PostgreSQL's template): down to
            # 0002 first, which runs 0003's downgrade too.
            command.upgrade(alembic_config(conn), "head")
            command.downgrade(alembic_config(conn), "0002")
            for events in (before, ["message.sent"]):
                conn.execute(
                    text(
                        "INSERT INTO webhook_endpoints (url, events, secret, created_at) "
                        "VALUES ('http://x', :events, 's', 1)"
                    ),
                    {"events": json.dumps(events)},
                )
            for uuid, status in (("a", "accepted"), ("q", "queued"), ("s", "sent")):
                conn.execute(text(message), {"uuid": uuid, "status": status})
            # To 0003 only: later migrations subscribe to later events (0009).
            command.upgrade(alembic_config(conn), "0003")
            lists = conn.execute(text("SELECT events FROM webhook_endpoints ORDER BY id"))
            assert [json.loads(e) for (e,) in lists] == [
                [*before, "message.stuck"],  # it asked for "all"
                ["message.sent"],
            ]
            marked = conn.execute(
                text("SELECT uuid, accepted_alert_at IS NOT NULL FROM outbound ORDER BY uuid")
            )
            # What was accepted before the upgrade is not alerted on after it.
            assert [tuple(row) for row in marked] == [("a", True), ("q", False), ("s", False)]
    finally:
        engine.dispose()


def test_0004_returns_unsent_delivery_unknown_messages(store_url: str) -> None:
    from alembic import command

    from smssync.store.migrate import alembic_config

    engine = create_engine(engine_for(store_url))
    message = (
        "INSERT INTO outbound (uuid, pinned, to_addr, content, segments, status, created_at, "
        "updated_at, result_listings, claim_rank) "
        "VALUES (:uuid, false, '+1', 'x', 1, 'delivery_unknown', 1, 1, 5, 0)"
    )
    step = (
        "INSERT INTO outbound_history (outbound_id, at, status, detail) "
        "SELECT id, :at, :status, NULL FROM outbound WHERE uuid = :uuid"
    )
    # What each message went through before earlier versions gave up on it.
    lives = {
        "accepted": ["queued", "dispatched", "accepted"],
        "handed-off": ["queued", "dispatched"],
        "sent": ["queued", "dispatched", "accepted", "sent"],
    }
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
            command.downgrade(alembic_config(conn), "0003")
            for uuid, steps in lives.items():
                conn.execute(text(message), {"uuid": uuid})
                for n, status in enumerate([*steps, "delivery_unknown"]):
                    conn.execute(text(step), {"at": n + 1, "status": status, "uuid": uuid})
            command.upgrade(alembic_config(conn), "head")
            rows = conn.execute(
                text(
                    "SELECT uuid, status, accepted_alert_at IS NOT NULL, "
                    "(SELECT status FROM outbound_history h WHERE h.outbound_id = outbound.id "
                    "ORDER BY h.at DESC, h.id DESC LIMIT 1) FROM outbound ORDER BY uuid"
                )
            )
            assert [tuple(row) for row in rows] == [
                # Nothing said these were sent: back to what they truly are, with a history
                # entry, and the accepted one counts as alerted (no alert about the past).
                ("accepted", "accepted", True, "accepted"),
                ("handed-off", "dispatched", False, "dispatched"),
                # A reported send: delivery_unknown was true.
                ("sent", "delivery_unknown", False, "delivery_unknown"),
            ]
    finally:
        engine.dispose()


def test_0005_keeps_the_uuid_of_messages_already_out_as_their_wire_id(store_url: str) -> None:
    from alembic import command

    from smssync.store.migrate import alembic_config

    engine = create_engine(engine_for(store_url))
    message = (
        "INSERT INTO outbound (uuid, pinned, to_addr, content, segments, status, created_at, "
        "updated_at, result_listings, claim_rank) "
        "VALUES (:uuid, false, '+1', 'x', 1, 'dispatched', 1, 1, 0, 0)"
    )
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
            command.downgrade(alembic_config(conn), "0004")
            for uuid in ("a", "b"):
                conn.execute(text(message), {"uuid": uuid})
            command.upgrade(alembic_config(conn), "head")
            rows = conn.execute(text("SELECT uuid, wire_id FROM outbound ORDER BY uuid"))
            # A phone holding one of them can still confirm and report it.
            assert [tuple(row) for row in rows] == [("a", "a"), ("b", "b")]
    finally:
        engine.dispose()


def test_0009_subscribes_endpoints_that_took_every_event_to_the_alerts(store_url: str) -> None:
    from alembic import command

    from smssync.store.migrate import alembic_config

    every = [
        "device.offline",
        "device.online",
        "message.delivered",
        "message.failed",
        "message.received",
        "message.sent",
        "message.stuck",
        "message.undelivered",
    ]
    endpoint = (
        "INSERT INTO webhook_endpoints (url, events, secret, created_at) "
        "VALUES (:url, :events, 's', 1)"
    )
    engine = create_engine(engine_for(store_url))
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
            command.downgrade(alembic_config(conn), "0008")
            assert "alerts" not in inspect(conn).get_table_names()
            conn.execute(text(endpoint), {"url": "all", "events": json.dumps(every)})
            conn.execute(text(endpoint), {"url": "some", "events": '["message.sent"]'})
            command.upgrade(alembic_config(conn), "head")
            rows = conn.execute(text("SELECT url, events FROM webhook_endpoints ORDER BY url"))
            found = {url: json.loads(events) for url, events in rows}
            assert found == {
                "all": sorted([*every, "device.alert", "webhook.failing"]),
                "some": ["message.sent"],
            }
    finally:
        engine.dispose()
