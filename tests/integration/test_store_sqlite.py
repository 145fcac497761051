"""What only the SQLite store has: PRAGMAs, durability, group commit and lock contention."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection

from smssync.errors import Conflict, StoreUnavailable
from smssync.records import Credentials, DeviceSettings
from smssync.store import devices, inbox
from smssync.store.sqlite import SqliteStore
from tests.integration.store_helpers import T0, device, incoming


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """Return an open SQLite store with a short busy timeout."""
    store = SqliteStore(tmp_path / "s.db", busy_timeout_ms=200)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def pragmas(conn: Connection) -> tuple[object, ...]:
    """Return the PRAGMAs the store sets on every connection."""
    names = ("synchronous", "journal_mode", "foreign_keys", "busy_timeout")
    return tuple(conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in names)


async def test_every_connection_is_wal_and_synchronous_full(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "p.db")
    await store.open()
    try:
        expected = (2, "wal", 1, 10_000)
        assert await store.write(pragmas) == expected
        assert await store.read(pragmas) == expected
    finally:
        await store.close()


WRITER = """
import asyncio, os, signal, sys
from datetime import UTC, datetime
from smssync.store.sqlite import SqliteStore
from smssync.records import Credentials, DeviceSettings
from smssync.store import devices, inbox
from tests.integration.store_helpers import incoming

async def main():
    store = SqliteStore(sys.argv[1])
    await store.open()
    device = await devices.add_device(
        store, "a", Credentials(b"t", None, None, None), DeviceSettings(), datetime.now(UTC)
    )
    created, row = await inbox.record_inbound(store, incoming(device.id, "durable"))
    print(row, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no close(), no checkpoint, no atexit

asyncio.run(main())
"""


async def test_acknowledged_write_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == -9, done.stderr
    row = int(done.stdout.strip())
    store = SqliteStore(path)
    await store.open()
    try:
        [message] = await inbox.list_inbound(store)
        assert (message.id, message.message_id, message.device) == (row, "durable", "a")
    finally:
        await store.close()


async def test_one_failing_job_does_not_fail_its_group(sqlite_store: SqliteStore) -> None:
    names = [f"d{i % 150}" for i in range(200)]  # 50 names repeat

    async def add(i: int, name: str) -> str:
        creds = Credentials(f"t{i}".encode(), None, None, None)
        try:
            await devices.add_device(sqlite_store, name, creds, DeviceSettings(), T0)
        except Conflict:
            return "conflict"
        return "ok"

    outcomes = await asyncio.gather(*(add(i, n) for i, n in enumerate(names)))
    assert outcomes.count("ok") == 150 and outcomes.count("conflict") == 50
    assert len(await devices.all_devices(sqlite_store)) == 150


async def test_a_failing_job_is_rolled_back_alone_in_its_transaction(
    sqlite_store: SqliteStore,
) -> None:
    inside, release = threading.Event(), threading.Event()

    def hold(conn: Connection) -> None:
        inside.set()
        release.wait(10)  # the jobs below queue up meanwhile, and form one batch

    def add_then_fail(conn: Connection) -> None:
        creds = Credentials(b"t-bad", None, None, None)
        devices.add_device.run(conn, "bad", creds, DeviceSettings(), T0)
        raise ValueError("a verb's own failure")

    holding = asyncio.ensure_future(sqlite_store.write(hold))
    await asyncio.to_thread(inside.wait, 10)
    jobs = [
        devices.add_device(
            sqlite_store, "x1", Credentials(b"t1", None, None, None), DeviceSettings(), T0
        ),
        sqlite_store.write(add_then_fail),
        devices.add_device(
            sqlite_store, "x2", Credentials(b"t2", None, None, None), DeviceSettings(), T0
        ),
    ]
    pending = asyncio.gather(*jobs, return_exceptions=True)
    await asyncio.sleep(0.1)
    release.set()
    await holding
    x1, failed, x2 = await pending
    assert isinstance(failed, ValueError)
    assert [d.name for d in await devices.all_devices(sqlite_store)] == ["x1", "x2"]  # "bad" undone
    assert x1.name == "x1" and x2.name == "x2"  # type: ignore[union-attr]


async def test_many_concurrent_writes_are_all_committed(sqlite_store: SqliteStore) -> None:
    a = await device(sqlite_store, "a")
    results = await asyncio.gather(
        *(inbox.record_inbound(sqlite_store, incoming(a.id, f"k{i}")) for i in range(1000))
    )
    assert all(created for created, _ in results)
    assert len({row for _, row in results}) == 1000
    assert len(await inbox.list_inbound(sqlite_store, limit=5000)) == 1000


def hold_write_lock(path: Path, seconds: float, locked: threading.Event) -> None:
    """Hold SQLite's write lock from another connection, as another process would."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    locked.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


async def test_write_waits_for_another_writer(sqlite_store: SqliteStore) -> None:
    locked = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(sqlite_store.path, 0.3, locked))
    holder.start()
    locked.wait()
    a = await device(sqlite_store, "a")  # waits out the lock (busy timeout plus retries)
    holder.join()
    assert (await inbox.record_inbound(sqlite_store, incoming(a.id)))[0]


async def test_a_taken_write_lock_keeps_incoming_sms_waiting_while_the_loop_runs_on(
    sqlite_store: SqliteStore,
) -> None:
    a = await device(sqlite_store, "a")
    locked = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(sqlite_store.path, 0.15, locked))
    holder.start()
    await asyncio.to_thread(locked.wait)  # as another process's writer would
    pending = asyncio.ensure_future(inbox.record_inbound(sqlite_store, incoming(a.id, "k1")))
    started = time.monotonic()
    for _ in range(10):  # the event loop serves others while the SMS waits
        await asyncio.sleep(0.01)
    assert time.monotonic() - started < 1.0 and not pending.done()
    await asyncio.to_thread(holder.join)
    assert await asyncio.wait_for(pending, 10) == (True, 1)
    assert [m.message_id for m in await inbox.list_inbound(sqlite_store)] == ["k1"]


async def test_write_gives_up_with_store_unavailable(sqlite_store: SqliteStore) -> None:
    locked = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(sqlite_store.path, 1.5, locked))
    holder.start()
    locked.wait()
    try:
        with pytest.raises(StoreUnavailable):
            await devices.add_device(
                sqlite_store, "a", Credentials(b"t", None, None, None), DeviceSettings(), T0
            )
    finally:
        holder.join()
    # Once the other writer is gone the store works again.
    assert (await device(sqlite_store, "a")).name == "a"


async def test_a_database_that_cannot_be_opened_fails_open_at_once(tmp_path: Path) -> None:
    (tmp_path / "s.db").mkdir()  # a folder where the file should be
    store = SqliteStore(tmp_path / "s.db")
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(store.open(), 30)  # the writer thread fails, not hangs
    await store.close()


async def test_a_database_behind_a_symbolic_link_keeps_its_wal_beside_the_real_file(
    tmp_path: Path,
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real / "s.db")
    store = SqliteStore(tmp_path / "link")
    await store.open()
    try:
        a = await device(store, "a")
        assert await inbox.record_inbound(store, incoming(a.id, "k1")) == (True, 1)
        assert (real / "s.db-wal").exists()
    finally:
        await store.close()


async def test_the_change_marks_are_read_once_per_turn_of_the_loop(
    sqlite_store: SqliteStore,
) -> None:
    """Lookups in one turn of the event loop share one read of the change marks: a change
    committed by another process during the turn is heard from the next turn on."""
    heard: list[str] = []
    sqlite_store.on_change("devices", lambda: heard.append("devices"))

    def another_process_changes_devices() -> None:
        # Synchronous, as another process's commit during this turn would be.
        with sqlite3.connect(sqlite_store.path, isolation_level=None) as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('changes:devices', randomblob(8))"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            )
        conn.close()

    await asyncio.sleep(0)
    await sqlite_store.fresh()
    another_process_changes_devices()
    await sqlite_store.fresh()
    assert heard == []
    await asyncio.sleep(0)
    await sqlite_store.fresh()
    assert heard == ["devices"]
    another_process_changes_devices()
    await asyncio.sleep(0)
    await sqlite_store.fresh()
    assert heard == ["devices", "devices"]
