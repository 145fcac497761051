"""The WAL flusher: kernel AIO where it works, a thread where not, one flush at a time."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from smssync.errors import StoreError, StoreUnavailable
from smssync.store import walflush
from smssync.store.walflush import WalFlusher


@pytest.fixture
def wal(tmp_path: Path) -> Path:
    path = tmp_path / "s.db-wal"
    path.write_bytes(b"x" * 4096)
    return path


@pytest.fixture
def fdatasyncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Record every os.fdatasync: the file and the thread that called it."""
    calls: list[tuple[str, str]] = []
    real = os.fdatasync

    def spy(fd: int) -> None:
        calls.append((os.readlink(f"/proc/self/fd/{fd}"), threading.current_thread().name))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", spy)
    yield calls


class RefusingContext:
    """A kernel AIO context whose io_submit refuses fsync (EINVAL), as before Linux 4.18."""

    def __init__(self, **kwargs: Any) -> None:
        self.closed = False

    async def fdsync(self, fd: int) -> None:
        raise ValueError("[EINVAL] the operation specified is invalid for the file descriptor")

    def close(self) -> None:
        self.closed = True


class FailingContext(RefusingContext):
    """A kernel AIO context whose fsync fails on the disk."""

    async def fdsync(self, fd: int) -> None:
        raise SystemError("Input/output error")


def fake_aio(monkeypatch: pytest.MonkeyPatch, context: type[RefusingContext]) -> None:
    module = type("module", (), {"AsyncioContext": context})
    monkeypatch.setattr(walflush, "kernel_aio", module)


async def test_linux_flushes_in_the_kernel_without_a_thread(
    wal: Path, fdatasyncs: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    aio = walflush.kernel_aio
    assert aio is not None  # this suite runs on Linux
    submitted: list[str] = []

    class Recording(aio.AsyncioContext):  # type: ignore[misc, name-defined]
        def fdsync(self, fd: int) -> Any:
            submitted.append(os.readlink(f"/proc/self/fd/{fd}"))
            return super().fdsync(fd)

    monkeypatch.setattr(walflush, "kernel_aio", type("module", (), {"AsyncioContext": Recording}))
    flusher = await WalFlusher.open(wal)
    try:
        assert submitted == [str(wal.resolve())]  # the probe at open
        await flusher.flush()
        await asyncio.gather(*(flusher.flush() for _ in range(5)))
        # One kernel fdatasync of the WAL per flush: the probe, the first, then one for the
        # five asked for together.
        assert submitted == [str(wal.resolve())] * 3
        assert fdatasyncs == []  # not os.fdatasync on a thread
        assert not [t for t in threading.enumerate() if t.name.startswith("smssync-flush")]
    finally:
        await flusher.close()


async def test_without_kernel_aio_a_thread_flushes(
    wal: Path, fdatasyncs: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(walflush, "kernel_aio", None)
    flusher = await WalFlusher.open(wal)
    try:
        await flusher.flush()
        [(path, thread)] = fdatasyncs
        assert path == str(wal.resolve()) and thread.startswith("smssync-flush")
    finally:
        await flusher.close()


async def test_a_kernel_that_cannot_fsync_through_aio_gets_a_thread(
    wal: Path,
    fdatasyncs: list[tuple[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_aio(monkeypatch, RefusingContext)
    with caplog.at_level(logging.INFO, "smssync.store"):
        flusher = await WalFlusher.open(wal)
    try:
        assert "flushing the WAL on a thread" in caplog.text
        await flusher.flush()
        assert len(fdatasyncs) == 1
    finally:
        await flusher.close()


async def test_a_failing_disk_fails_open(wal: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Not a missing feature: a thread's fdatasync would not hear of the lost pages again.
    fake_aio(monkeypatch, FailingContext)
    with pytest.raises(StoreUnavailable, match="Input/output error"):
        await WalFlusher.open(wal)


async def test_a_cancelled_caller_leaves_the_flush_to_the_others(wal: Path) -> None:
    flusher = await WalFlusher.open(wal)
    started, release = asyncio.Event(), asyncio.Event()
    real = flusher.sync
    calls = 0

    async def slow(fd: int) -> None:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        await real(fd)

    flusher.sync = slow
    try:
        gone = asyncio.ensure_future(flusher.flush())
        staying = asyncio.ensure_future(flusher.flush())
        await asyncio.wait_for(started.wait(), 10)
        gone.cancel()
        release.set()
        await asyncio.wait_for(staying, 10)
        assert gone.cancelled() and calls == 1
    finally:
        await flusher.close()


async def test_close_waits_for_the_flush_in_progress(wal: Path) -> None:
    flusher = await WalFlusher.open(wal)
    started = asyncio.Event()
    real = flusher.sync

    async def slow(fd: int) -> None:
        started.set()
        await asyncio.sleep(0.2)
        await real(fd)

    flusher.sync = slow
    pending = asyncio.ensure_future(flusher.flush())
    await asyncio.wait_for(started.wait(), 10)
    await flusher.close()
    assert pending.done() and pending.exception() is None


async def test_a_cancelled_flush_fails_its_waiters(wal: Path) -> None:
    flusher = await WalFlusher.open(wal)
    started = asyncio.Event()

    async def hangs(fd: int) -> None:
        started.set()
        await asyncio.Event().wait()

    flusher.sync = hangs
    waiting = asyncio.ensure_future(flusher.flush())
    await asyncio.wait_for(started.wait(), 10)
    assert flusher._driver is not None
    flusher._driver.cancel()  # as when the loop shuts down
    with pytest.raises(StoreUnavailable, match="closed during a flush"):
        await asyncio.wait_for(waiting, 10)
    # That flush may still fail in the kernel, unheard: nothing may hear success after it.
    with pytest.raises(StoreUnavailable, match="closed during a flush"):
        await flusher.flush()
    await flusher.close()


async def test_a_flush_asked_for_while_closing_is_refused_not_left_waiting(wal: Path) -> None:
    flusher = await WalFlusher.open(wal)
    started, release = asyncio.Event(), asyncio.Event()
    real = flusher.sync

    async def slow(fd: int) -> None:
        started.set()
        await release.wait()
        await real(fd)

    flusher.sync = slow
    first = asyncio.ensure_future(flusher.flush())
    await asyncio.wait_for(started.wait(), 10)
    closing = asyncio.ensure_future(flusher.close())
    await asyncio.sleep(0)
    with pytest.raises(StoreError, match="not open"):
        await asyncio.wait_for(flusher.flush(), 10)
    release.set()
    await asyncio.wait_for(closing, 10)
    assert first.done() and first.exception() is None  # asked for before: flushed
    with pytest.raises(StoreError, match="not open"):
        await flusher.flush()
    await flusher.close()  # twice is harmless


def test_another_event_loop_is_refused(wal: Path) -> None:
    flusher = asyncio.run(WalFlusher.open(wal))
    try:
        with pytest.raises(StoreError, match="another event loop"):
            asyncio.run(flusher.flush())
    finally:
        flusher._close()
