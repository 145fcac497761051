"""Migration 0006 fills the conversations from the SMS already stored, nothing unread."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, text

from smssync.store.migrate import alembic_config
from tests.integration.test_store_migrations import engine_for

INBOUND = (
    "INSERT INTO inbound (device_id, dedupe_key, from_raw, from_addr, to_addr, content, sent_at,"
    " received_at, flags, status) VALUES (NULL, :key, :addr, :addr, '+1', :text, 1, :at, '[]',"
    " 'received')"
)
OUTBOUND = (
    "INSERT INTO outbound (uuid, pinned, to_addr, content, segments, status, created_at, "
    "updated_at, result_listings, claim_rank) VALUES (:key, false, :addr, :text, 1, 'queued', "
    ":at, :at, 0, 0)"
)


def test_0006_threads_the_sms_already_stored(store_url: str) -> None:
    engine = create_engine(engine_for(store_url))
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
            command.downgrade(alembic_config(conn), "0005")
            for sql, key, addr, body, at in (
                (INBOUND, "k1", "+254700000001", "hello", 10),
                (INBOUND, "k2", "+254700000002", "hi", 20),
                (OUTBOUND, "u1", "+254700000001", "welcome", 30),
                (INBOUND, "k3", "+254700000001", "thanks", 25),
            ):
                conn.execute(text(sql), {"key": key, "addr": addr, "text": body, "at": at})
            command.upgrade(alembic_config(conn), "head")
            rows = conn.execute(
                text(
                    "SELECT address, last_at, last_direction, last_content, unread "
                    "FROM conversations ORDER BY address"
                )
            )
            assert [tuple(row) for row in rows] == [
                ("+254700000001", 30, "out", "welcome", 0),
                ("+254700000002", 20, "in", "hi", 0),
            ]
    finally:
        engine.dispose()
