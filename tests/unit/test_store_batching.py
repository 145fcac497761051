"""Group commit in the event loop (``smssync.store.batching``)."""

from __future__ import annotations

import asyncio
import time

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


class Clients:
    """Closed-loop callers, like phones: each waits for its answer, then comes back after a
    round trip of a few event-loop passes (some fast, some slow) and calls again."""

    def __init__(self, batcher: GroupCommit[int, int], round_trips: list[int]) -> None:
        self.batcher = batcher
        self.round_trips = round_trips

    async def client(self, index: int, calls: int) -> None:
        for call in range(calls):
            assert await self.batcher(index * 1000 + call) == (index * 1000 + call) * 10
            for _ in range(self.round_trips[index]):
                await asyncio.sleep(0)

    async def run(self, calls: int) -> None:
        await asyncio.gather(*(self.client(i, calls) for i in range(len(self.round_trips))))


class SlowRecorder(Recorder):
    """A run_many that takes some event-loop passes, as a commit and its flush do."""

    def __init__(self, passes: int) -> None:
        super().__init__()
        self.passes = passes

    async def __call__(self, items: list[int]) -> list[int]:
        for _ in range(self.passes):
            await asyncio.sleep(0)
        return await super().__call__(items)


async def test_callers_coming_back_share_one_batch_again() -> None:
    run = SlowRecorder(passes=10)
    # Half come back after 1 pass, half after 5: the batch that starts at once holds only
    # the fast half; the wait brings the others in.
    await Clients(GroupCommit(run, limit=100, linger=60), [1, 5] * 4).run(calls=12)
    sizes = [len(b) for b in run.batches]
    assert sum(sizes) == 8 * 12
    assert sizes[-8:] == [8] * 8, sizes


async def test_callers_split_into_halves_come_together_again() -> None:
    # Half the callers start late: the first batch holds only the early half, and without the
    # wait every batch after it would hold a half too. Those that waited during a batch
    # count towards the next one, so the halves merge.
    run = SlowRecorder(passes=10)
    batcher = GroupCommit(run, limit=100, linger=5)
    clients = Clients(batcher, [1] * 8)

    async def late(index: int) -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        await clients.client(index, 12)

    # The early half calls once more: its first batch is the one alone.
    await asyncio.gather(*(clients.client(i, 13) for i in range(4)), *map(late, range(4, 8)))
    assert [len(b) for b in run.batches] == [4] + [8] * 12


async def test_without_the_wait_the_callers_split_into_halves() -> None:
    # The same clients with no wait: the halves take turns, every batch half as big. (This
    # is what the wait is for; it also shows the test above can tell the two apart.)
    run = SlowRecorder(passes=10)
    await Clients(GroupCommit(run, limit=100, linger=0), [1, 5] * 4).run(calls=12)
    assert max(len(b) for b in run.batches[2:]) == 4


async def test_a_lone_caller_never_waits() -> None:
    run = SlowRecorder(passes=2)
    batcher = GroupCommit(run, limit=100, linger=3600)
    # One caller at a time: each batch answers one, and one is all the next waits for.
    await asyncio.wait_for(Clients(batcher, [3]).run(calls=20), timeout=30)
    assert run.batches == [[c] for c in range(20)]


async def test_a_caller_that_does_not_come_back_is_waited_for_at_most_the_linger() -> None:
    run = SlowRecorder(passes=2)
    batcher = GroupCommit(run, limit=100, linger=3600)
    await asyncio.gather(batcher(1), batcher(2))
    # Two were answered; only one comes back, so its batch waits for the other.
    waiting = asyncio.ensure_future(batcher(3))
    for _ in range(50):
        await asyncio.sleep(0)
    assert not waiting.done()
    assert run.batches == [[1, 2]]
    # The other comes back: both go in one batch at once.
    assert list(await asyncio.wait_for(asyncio.gather(waiting, batcher(4)), timeout=30)) == [30, 40]
    assert run.batches == [[1, 2], [3, 4]]

    short = GroupCommit(SlowRecorder(passes=2), limit=100, linger=0.2)
    await asyncio.gather(short(1), short(2))
    # Only one comes back: it waits for the linger, and no longer (the bound is loose, for
    # a busy machine; ten times the linger would break it).
    started = time.monotonic()
    assert await asyncio.wait_for(short(3), timeout=30) == 30
    assert time.monotonic() - started < 1.5


async def test_after_a_quiet_spell_a_call_does_not_wait() -> None:
    batcher = GroupCommit(SlowRecorder(passes=2), limit=100, linger=0.05)
    await asyncio.gather(batcher(1), batcher(2), batcher(3))
    await asyncio.sleep(0.2)  # longer than the linger: those three are not coming back soon
    call = asyncio.ensure_future(batcher(4))
    for _ in range(20):
        await asyncio.sleep(0)
    assert call.done() and call.result() == 40


async def test_a_batch_cancelled_while_it_waits_fails_its_callers() -> None:
    batcher = GroupCommit(SlowRecorder(passes=2), limit=100, linger=3600)
    await asyncio.gather(batcher(1), batcher(2))
    waiting = asyncio.ensure_future(batcher(3))
    for _ in range(10):
        await asyncio.sleep(0)
    [drain] = [t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__name__", "") == "_drain"]
    drain.cancel()  # as when the loop closes
    with pytest.raises(StoreUnavailable):
        await waiting
    # The batcher still works afterwards.
    assert await asyncio.wait_for(batcher(4), timeout=30) == 40
