"""What only the SQLite store has: PRAGMAs, durability, group commit and lock contention."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection

from smssync.errors import Conflict, StoreUnavailable
from smssync.records import Credentials, DeviceSettings, InboundPlan
from smssync.store import devices, inbox, rules, walflush
from smssync.store import sqlite as sqlite_module
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
        # Incoming SMS commit on the event loop without waiting for the disk, and are
        # answered only after the store flushes the WAL (tested below).
        await inbox.record_inbound(store, incoming((await device(store, "a")).id))
        assert store._loop_conn is not None
        names = ("synchronous", "journal_mode", "foreign_keys", "busy_timeout")
        loop_pragmas = [store._loop_conn.execute(f"PRAGMA {n}").fetchone()[0] for n in names]
        assert loop_pragmas == [1, "wal", 1, 0]
    finally:
        await store.close()


class FlushSpy:
    """Wraps the flusher's fdatasync: at each flush, how many stored SMS another connection
    sees, and that the file flushed is the database's WAL; ``fail`` makes the next flush
    fail, ``error`` says how (an OSError, or what caio raises for a failed operation)."""

    def __init__(self, path: Path, real: walflush.Sync) -> None:
        self.path = path
        self.visible: list[int] = []
        self.real = real
        self.fail = False
        self.error: Exception = OSError(errno.EIO, "injected")

    async def __call__(self, fd: int) -> None:
        flushed = os.readlink(f"/proc/self/fd/{fd}")
        assert flushed == os.path.realpath(self.path) + "-wal"
        with contextlib.closing(sqlite3.connect(self.path)) as conn:
            self.visible.append(conn.execute("SELECT count(*) FROM inbound").fetchone()[0])
        if self.fail:
            self.fail = False
            raise self.error
        await self.real(fd)


def spy_on_flushes(store: SqliteStore) -> FlushSpy:
    """Wrap the open store's fdatasync in a FlushSpy."""
    flusher = store._flusher
    assert flusher is not None
    spy = FlushSpy(store.path, flusher.sync)
    flusher.sync = spy
    return spy


@pytest.fixture
def flushes(sqlite_store: SqliteStore) -> FlushSpy:
    return spy_on_flushes(sqlite_store)


def spy_on_writer_thread(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record the jobs handed to the writer thread outside a transaction (``_write_direct``)."""
    handed: list[object] = []
    real = store._write_direct

    async def spy(fn: Any, *args: Any) -> Any:
        handed.append(fn)
        return await real(fn, *args)

    monkeypatch.setattr(store, "_write_direct", spy)
    return handed


async def test_an_sms_is_answered_after_a_flush_that_follows_its_commit(
    sqlite_store: SqliteStore, flushes: FlushSpy
) -> None:
    a = await device(sqlite_store, "a")
    assert await inbox.record_inbound(sqlite_store, incoming(a.id, "k1")) == (True, 1)
    assert flushes.visible == [1]
    # A retry finds the row and is answered after a flush too: the first attempt's commit
    # may belong to another worker whose flush has not finished.
    assert await inbox.record_inbound(sqlite_store, incoming(a.id, "k1")) == (False, 1)
    assert flushes.visible == [1, 1]


async def test_a_routed_duplicate_and_a_listing_wait_for_a_flush(
    sqlite_store: SqliteStore, flushes: FlushSpy
) -> None:
    a = await device(sqlite_store, "a")
    await inbox.record_inbound(sqlite_store, incoming(a.id, "k1"))
    del flushes.visible[:]
    routed = await rules.record_inbound_routed(
        sqlite_store, incoming(a.id, "k1"), InboundPlan(device="a")
    )
    assert routed == (False, 1) and flushes.visible == [1]
    assert [m.message_id for m in await inbox.list_inbound(sqlite_store)] == ["k1"]
    assert flushes.visible == [1, 1]


async def test_a_taken_write_lock_sends_incoming_sms_to_the_writer_thread(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await device(sqlite_store, "a")
    handed = spy_on_writer_thread(sqlite_store, monkeypatch)
    lock_path = sqlite_store.path.with_name(sqlite_store.path.name + ".write-lock")
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as another process's writer would
        pending = asyncio.ensure_future(inbox.record_inbound(sqlite_store, incoming(a.id, "k1")))
        started = time.monotonic()
        await asyncio.sleep(0.3)
        # The event loop kept running all along; the SMS waits in the writer thread.
        assert time.monotonic() - started < 1.0 and not pending.done()
        assert handed == [inbox.record_inbound_autocommit]  # after LOOP_LOCK_WAIT (2 ms)
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert await asyncio.wait_for(pending, 10) == (True, 1)
    assert [m.message_id for m in await inbox.list_inbound(sqlite_store)] == ["k1"]


WRITER = """
import asyncio, os, signal, sys
from datetime import UTC, datetime
from smssync.store.sqlite import SqliteStore
from smssync.records import Credentials, DeviceSettings
from smssync.records import InboundPlan
from tests.integration.store_helpers import incoming

async def main():
    store = SqliteStore(sys.argv[1])
    await store.open()
    device = await store.add_device(
        "a", Credentials(b"t", None, None, None), DeviceSettings(), datetime.now(UTC)
    )
    created, row = await store.record_inbound(incoming(device.id, "durable"))
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


@pytest.mark.parametrize(
    "error", [OSError(errno.EIO, "injected"), SystemError("Input/output error")], ids=repr
)
async def test_a_failed_flush_answers_no_success_until_restart(
    sqlite_store: SqliteStore, flushes: FlushSpy, error: Exception
) -> None:
    a = await device(sqlite_store, "a")
    flushes.fail, flushes.error = True, error  # caio reports a failed fsync as SystemError
    with pytest.raises(StoreUnavailable):
        await inbox.record_inbound(sqlite_store, incoming(a.id, "k1"))
    # The SMS is committed, but whether the disk holds it is unknown: neither the phone's
    # retry nor anything new may hear success, though the next flush would succeed.
    for key in ("k1", "k2"):
        with pytest.raises(StoreUnavailable):
            await inbox.record_inbound(sqlite_store, incoming(a.id, key))
    assert len(flushes.visible) == 1


async def test_the_wal_flushed_is_the_real_one_behind_a_symbolic_link(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real / "s.db")
    store = SqliteStore(tmp_path / "link")
    await store.open()
    try:
        spy = spy_on_flushes(store)  # checks the flushed file is real/s.db-wal
        a = await device(store, "a")
        assert await inbox.record_inbound(store, incoming(a.id, "k1")) == (True, 1)
        assert spy.visible == [1]
    finally:
        await store.close()


async def test_a_database_that_cannot_be_opened_fails_open_at_once(tmp_path: Path) -> None:
    (tmp_path / "s.db").mkdir()  # a folder where the file should be
    store = SqliteStore(tmp_path / "s.db")
    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(store.open(), 30)  # the writer thread fails, not hangs
    await store.close()


async def test_flushes_asked_for_during_a_flush_share_the_next_one(
    sqlite_store: SqliteStore,
) -> None:
    a = await device(sqlite_store, "a")
    flusher = sqlite_store._flusher
    assert flusher is not None
    started, release = asyncio.Event(), asyncio.Event()
    calls: list[int] = []
    real = flusher.sync

    async def slow_first(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            started.set()
            await release.wait()
        await real(fd)

    flusher.sync = slow_first
    first = asyncio.ensure_future(inbox.record_inbound(sqlite_store, incoming(a.id, "k0")))
    await asyncio.wait_for(started.wait(), 10)
    # Three listings that see k0 while its flush runs: none of them may ride on that flush,
    # which may have started before k0's commit for all they know.
    later = [asyncio.ensure_future(inbox.list_inbound(sqlite_store)) for _ in range(3)]
    while len(flusher._waiting) < 3:
        await asyncio.sleep(0.01)
    assert not any(f.done() for f in later)
    release.set()
    assert await first == (True, 1)
    assert [len(found) for found in await asyncio.gather(*later)] == [1, 1, 1]
    assert len(calls) == 2  # the first flush, then one for the three that waited


async def test_a_batch_waits_for_the_write_lock_while_the_loop_runs_on(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await device(sqlite_store, "a")
    handed = spy_on_writer_thread(sqlite_store, monkeypatch)
    monkeypatch.setattr(sqlite_module, "LOOP_LOCK_WAIT", 10.0)
    with sqlite_store._lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as another worker's INSERT
        pending = asyncio.ensure_future(inbox.record_inbound(sqlite_store, incoming(a.id, "k1")))
        started = time.monotonic()
        for _ in range(10):  # the event loop serves others while the batch waits
            await asyncio.sleep(0.01)
        assert time.monotonic() - started < 1.0 and not pending.done()
        fcntl.flock(lock, fcntl.LOCK_UN)
        assert await asyncio.wait_for(pending, 10) == (True, 1)
    assert handed == []  # inserted on the loop once the lock was free


async def test_flushes_queued_behind_a_failed_one_fail_too(sqlite_store: SqliteStore) -> None:
    a = await device(sqlite_store, "a")
    flusher = sqlite_store._flusher
    assert flusher is not None
    started, release = asyncio.Event(), asyncio.Event()
    calls: list[int] = []

    async def fails_once(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            started.set()
            await release.wait()
            raise OSError(errno.EIO, "injected")
        # Later calls succeed, as Linux's do once it has reported the lost pages.

    flusher.sync = fails_once
    first = asyncio.ensure_future(inbox.record_inbound(sqlite_store, incoming(a.id, "k0")))
    await asyncio.wait_for(started.wait(), 10)
    listing = asyncio.ensure_future(inbox.list_inbound(sqlite_store))  # sees k0, waits for a flush
    while len(flusher._waiting) < 1:
        await asyncio.sleep(0.01)
    release.set()
    with pytest.raises(StoreUnavailable):
        await first
    # k0 may be lost: a listing must not show it as stored, though fdatasync would say 0.
    with pytest.raises(StoreUnavailable):
        await listing
    assert len(calls) == 1


async def test_the_loop_does_not_wait_for_its_own_writer_thread(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await device(sqlite_store, "a")
    inside, release = threading.Event(), threading.Event()

    def slow_job(conn: Connection) -> None:
        inside.set()
        release.wait(10)  # a long transaction of this process's writer, under the lock

    writing = asyncio.ensure_future(sqlite_store.write(slow_job))
    await asyncio.to_thread(inside.wait, 10)
    handed = spy_on_writer_thread(sqlite_store, monkeypatch)
    monkeypatch.setattr(sqlite_module, "LOOP_LOCK_WAIT", 10.0)
    pending = asyncio.ensure_future(inbox.record_inbound(sqlite_store, incoming(a.id, "k1")))
    await asyncio.sleep(0.1)
    assert handed == [inbox.record_inbound_autocommit]  # queued for the writer at once
    release.set()
    await writing
    assert await asyncio.wait_for(pending, 10) == (True, 1)


async def test_a_store_that_does_not_flush_still_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY", 2)
    store = SqliteStore(tmp_path / "n.db", synchronous="NORMAL")
    await store.open()
    try:
        assert store._flusher is None
        started: list[asyncio.Future[None]] = []
        real = store._start_checkpoint

        def spy() -> asyncio.Future[None]:
            started.append(real())
            return started[-1]

        monkeypatch.setattr(store, "_start_checkpoint", spy)
        a = await device(store, "a")
        for key in ("k1", "k2", "k3"):
            await inbox.record_inbound(store, incoming(a.id, key))
        assert len(started) == 1  # after the second commit
        await started[0]
    finally:
        await store.close()
