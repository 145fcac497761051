"""The probes: /healthz answers while the process does; /readyz only while the store answers
and is at the migration this code ships."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from sqlalchemy import Connection, text

from smssync.server.app import create_app
from smssync.settings import Settings
from smssync.store import migrate, serverkey
from smssync.store.engine import Database


async def get(store: Database, path: str) -> httpx.Response:
    app = create_app(Settings(), store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sms") as client:
            return await client.get(path)


def set_revision(revision: str) -> Callable[[Connection], None]:
    def job(conn: Connection) -> None:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})

    return job


async def test_a_migrated_store_is_ready(store: Database) -> None:
    assert (await get(store, "/healthz")).json() == {"ok": True}
    ready = await get(store, "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ok": True, "migration": migrate.head()}


async def test_a_store_at_another_migration_is_not_ready(store: Database) -> None:
    await store.write(set_revision("0003_older"))
    try:
        ready = await get(store, "/readyz")
        assert ready.status_code == 503
        assert ready.json()["ok"] is False and "0003_older" in ready.json()["reason"]
        # The process itself still answers: a restart would not help.
        assert (await get(store, "/healthz")).status_code == 200
    finally:
        await store.write(set_revision(migrate.head()))


async def test_a_store_that_does_not_answer_is_not_ready(store: Database) -> None:
    await serverkey.server_key(store)  # what the app's start needs, read while it answers
    await store.close()  # its connections gone, as after a lost database
    ready = await get(store, "/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"ok": False, "reason": "database unavailable"}
    assert (await get(store, "/healthz")).status_code == 200
