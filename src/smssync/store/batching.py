"""Group commit in the event loop: concurrent calls of one verb share a transaction.

Every incoming SMS must be committed before the phone is answered. One transaction per SMS
costs one durable flush per SMS (an fsync on SQLite, a WAL flush on PostgreSQL), and on SQLite
one trip to the writer thread per statement. Instead, calls that arrive while a batch is in
flight wait for the next batch, which runs as one job (one multi-row statement) in one
transaction: under load many SMS share one flush, and an idle server answers a lone SMS
without any added delay, since a batch starts as soon as nothing is in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from smssync.errors import StoreUnavailable

log = logging.getLogger("smssync.store")

I = TypeVar("I")  # noqa: E741 - an item, as in the typing docs
R = TypeVar("R")


class GroupCommit(Generic[I, R]):
    """Run ``run_many`` on batches of concurrent calls; one result per item, in order.

    When a batch fails for another reason than the database being unavailable, each of its
    items runs alone, so one bad item fails only its own caller.
    """

    def __init__(
        self, run_many: Callable[[list[I]], Awaitable[list[R]]], limit: int, in_flight: int = 1
    ) -> None:
        self.run_many = run_many
        self.limit = limit
        #: Batches allowed to run at once (1: the next batch forms while one commits).
        self.in_flight = in_flight
        self._pending: list[tuple[I, asyncio.Future[R]]] = []
        self._running = 0

    async def __call__(self, item: I) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._running < self.in_flight:
            self._running += 1
            # A task of its own: a caller that is cancelled must not stop the batch it leads.
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.limit]
                del self._pending[: self.limit]
                await self._run(batch)
        finally:
            self._running -= 1

    async def _run(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            results = await self.run_many([item for item, _ in batch])
        except StoreUnavailable as error:
            _fail(batch, error)
            return
        except Exception as error:
            if len(batch) == 1:
                _fail(batch, error)
                return
            log.info("a batch of %d failed (%s); running each alone", len(batch), error)
            for one in batch:
                await self._run([one])
            return
        except BaseException:
            # Cancelled (the loop is closing): nobody may wait forever for an answer.
            _fail(batch, StoreUnavailable("the store is closing"))
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # a cancelled caller; its item is stored all the same
                future.set_result(result)


def _fail(batch: list[tuple[I, asyncio.Future[R]]], error: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
