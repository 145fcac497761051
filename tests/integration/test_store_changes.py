"""Several processes on one store: each hears the others' changes to what it caches, and
they share periodic work without doing any of it twice. Two stores opened on one database
stand for two processes: each has its own connections, as a process would."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest

from smssync.records import Credentials, Delivery, DeviceSettings, OutboundStatus, SendOutcome
from smssync.server.auth import CachedDirectory
from smssync.server.dispatcher import CLAIM_MARGIN_S, attempt, delivery_client
from smssync.server.hooks import Hooks
from smssync.settings import Settings
from smssync.store import devices, open_store, queue, results, webhooks
from smssync.store.engine import Database
from smssync.store.postgres import PostgresStore
from tests.integration.store_helpers import T0, at, device, queue_some
from tests.pg import pg_conninfo


@pytest.fixture
async def other(store_url: str) -> AsyncIterator[Database]:
    """A second process on the test's store, following changes as a server does."""
    opened = open_store(store_url)
    await opened.open()
    follower = asyncio.create_task(opened.follow_changes())
    try:
        if isinstance(opened, PostgresStore):
            await until(lambda: opened._listening)
        yield opened
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await opened.close()


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.01)


async def at_once(store: Database, check: Callable[[], Any]) -> None:
    """``check`` (a coroutine function) holds now on SQLite, within a second on PostgreSQL
    (a notification's trip): either way long before the caches' 30 s safety net."""
    deadline = time.monotonic() + (1.0 if store.dialect == "postgresql" else 0.0)
    while not await check():
        assert time.monotonic() < deadline, "the other process still uses its cache"
        await asyncio.sleep(0.01)


async def test_a_device_removed_by_one_process_is_unknown_to_another_at_once(
    store: Database, other: Database
) -> None:
    token = secrets.token_bytes(16)
    await devices.add_device(store, "p", Credentials(token, None, None, None), DeviceSettings(), T0)
    directory = CachedDirectory(other)
    assert (await directory.device_by_token(token)) is not None
    assert (await directory.device_by_token(token)) is not None  # now from the cache
    await devices.remove_device(store, "p")

    async def unknown() -> bool:
        return await directory.device_by_token(token) is None

    await at_once(other, unknown)


async def test_credentials_rotated_by_one_process_apply_in_another_at_once(
    store: Database, other: Database
) -> None:
    old = Credentials(secrets.token_bytes(16), secrets.token_bytes(16), None, None)
    added = await devices.add_device(store, "p", old, DeviceSettings(), T0)
    directory = CachedDirectory(other)
    assert (await directory.device_by_token(old.token_hash)) is not None
    assert (await directory.device_credentials(added.id)).secret_hash == old.secret_hash
    new = Credentials(secrets.token_bytes(16), secrets.token_bytes(16), None, None)
    await devices.update_device(store, "p", credentials=new)

    async def rotated() -> bool:
        stored = await directory.device_credentials(added.id)
        gone = await directory.device_by_token(old.token_hash) is None
        return gone and stored.secret_hash == new.secret_hash

    await at_once(other, rotated)


async def test_a_webhook_added_by_one_process_is_used_by_another_at_once(
    store: Database, other: Database
) -> None:
    hooks = Hooks(other)
    assert (await hooks.config()).empty
    assert (await hooks.config()).empty  # now from the cache
    await webhooks.add_webhook(store, "http://127.0.0.1:9/a", ["message.received"], "s", T0)

    async def configured() -> bool:
        return not (await hooks.config()).empty

    await at_once(other, configured)


async def test_an_answer_read_while_a_change_lands_is_not_kept(store: Database) -> None:
    directory = CachedDirectory(store)
    reads = 0

    async def fetch() -> str:
        nonlocal reads
        reads += 1
        store.changed("devices")  # a change is heard while this read is under way
        return "stale"

    assert await directory._cached("k", 1, fetch) == "stale"
    assert await directory._cached("k", 1, fetch) == "stale"
    assert reads == 2


@pytest.mark.parametrize(
    "store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_the_listener_comes_back_and_forgets_every_cache(
    store: Database, other: Database, pg_database: str
) -> None:
    assert isinstance(other, PostgresStore)
    forgotten = 0

    def forget() -> None:
        nonlocal forgotten
        forgotten += 1

    other.on_change("devices", forget)
    with psycopg.connect(pg_conninfo(pg_database), autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND query ILIKE 'LISTEN%%'",
            (pg_database,),
        ).fetchall()
    assert killed == [(True,)]
    await until(lambda: not other._listening)
    # While nobody listens, no cache is trusted.
    before = forgotten
    await other.fresh()
    assert forgotten == before + 1
    await until(lambda: other._listening)
    # Back: whatever was announced meanwhile is forgotten, and announcements arrive again.
    assert forgotten >= before + 2
    heard = forgotten
    await device(store, "p")
    await until(lambda: forgotten > heard, 1.0)


async def test_two_processes_never_claim_one_delivery(store: Database, other: Database) -> None:
    await webhooks.add_webhook(store, "http://127.0.0.1:9/a", ["message.sent"], "s", T0)
    phone = await device(store, "p")
    ids = await queue_some(store, 20, device="p")
    await queue.claim_outbound(store, phone.id, 20, at(1))
    sent = SendOutcome(OutboundStatus.SENT, None, None, None, None)
    await results.record_results(store, phone.id, [(m, sent) for m in ids], at(2))
    claims = await asyncio.gather(
        *(webhooks.claim_deliveries(s, at(3), 4, 60) for _ in range(5) for s in (store, other))
    )
    claimed = [d.id for claim in claims for d in claim]
    assert len(claimed) == len(set(claimed)) == 20


async def test_an_attempt_ends_by_its_deadline_inside_its_claim() -> None:
    # A receiver that answers a byte every 0.3 s never trips a 1 s read timeout; the
    # attempt's own deadline ends it, before its claim (deadline + margin) could expire.
    handlers: set[asyncio.Task[Any]] = set()

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
            for _ in range(100):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.3)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = Settings(webhook_allow="127.0.0.1", webhook_timeout_s=1)
    delivery = Delivery(1, f"http://127.0.0.1:{port}/", "s", "evt_1", "message.sent", "{}", 0, T0)
    try:
        async with delivery_client(settings) as client:
            started = time.monotonic()
            error = await attempt(client, delivery, settings.webhook_timeout_s)
            took = time.monotonic() - started
    finally:
        server.close()
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
    assert error == "no answer within 1 s"
    assert took < 1 + CLAIM_MARGIN_S / 2
