"""Group commit in the event loop (``smssync.store.batching``)."""

from __future__ import annotations

import asyncio

import pytest

from smssync.errors import StoreError, StoreUnavailable
from smssync.store.batching import GroupCommit


class Recorder:
    """A run_many that records its batches, and fails on demand."""

    def __init__(self, fail_on: int | None = None, unavailable: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on
        self.unavailable = unavailable
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        await self.release.wait()
        if self.unavailable:
            raise StoreUnavailable("down")
        if self.fail_on in items:
            raise StoreError("bad item")
        return [item * 10 for item in items]


async def test_calls_waiting_on_a_batch_share_the_next_one() -> None:
    run = Recorder()
    run.release.clear()
    batcher = GroupCommit(run, limit=100)
    first = asyncio.ensure_future(batcher(0))
    await asyncio.sleep(0)  # the first batch starts with the one item there is
    rest = [asyncio.ensure_future(batcher(i)) for i in range(1, 6)]
    await asyncio.sleep(0)
    run.release.set()
    assert await first == 0
    assert [await r for r in rest] == [10, 20, 30, 40, 50]
    assert run.batches == [[0], [1, 2, 3, 4, 5]]


async def test_batches_stop_at_the_limit() -> None:
    run = Recorder()
    batcher = GroupCommit(run, limit=3)
    results = await asyncio.gather(*(batcher(i) for i in range(7)))
    assert results == [i * 10 for i in range(7)]
    assert [len(b) for b in run.batches] == [3, 3, 1]


async def test_a_failing_item_fails_alone() -> None:
    run = Recorder(fail_on=2)
    batcher = GroupCommit(run, limit=10)
    results = await asyncio.gather(*(batcher(i) for i in range(4)), return_exceptions=True)
    assert results[:2] == [0, 10] and results[3] == 30
    assert isinstance(results[2], StoreError)
    assert run.batches[0] == [0, 1, 2, 3]  # then each alone
    assert sorted(run.batches[1:]) == [[0], [1], [2], [3]]


async def test_an_unavailable_store_fails_the_batch_without_retries() -> None:
    run = Recorder(unavailable=True)
    batcher = GroupCommit(run, limit=10)
    results = await asyncio.gather(*(batcher(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert run.batches == [[0, 1, 2]]


async def test_a_cancelled_caller_does_not_stop_its_batch() -> None:
    run = Recorder()
    run.release.clear()
    batcher = GroupCommit(run, limit=10)
    leader = asyncio.ensure_future(batcher(1))
    await asyncio.sleep(0)
    follower = asyncio.ensure_future(batcher(2))
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0)
    run.release.set()
    assert await follower == 20
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert run.batches == [[1], [2]]


async def test_batches_in_flight_run_at_once() -> None:
    run = Recorder()
    run.release.clear()
    batcher = GroupCommit(run, limit=10, in_flight=2)
    calls = [asyncio.ensure_future(batcher(i)) for i in range(2)]
    await asyncio.sleep(0)
    calls.append(asyncio.ensure_future(batcher(2)))
    for _ in range(3):  # the call, then the batch it starts
        await asyncio.sleep(0)
    assert len(run.batches) == 2  # a second batch started while the first was running
    run.release.set()
    assert [await c for c in calls] == [0, 10, 20]
