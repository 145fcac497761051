"""The Database a store verb runs on: a read, a write and a batched write.

A verb is a plain function over one SQLAlchemy ``Connection``; the engine runs it in one
transaction. ``write`` returns only once the transaction is durable, so a caller that answers
a phone after it never acknowledges what a power cut can take back; engines guarantee that
inside these three methods, and never by overriding a verb.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc

from smssync.errors import SmssyncError, StoreError, StoreUnavailable
from smssync.store.batching import LINGER_S, GroupCommit

P = ParamSpec("P")
T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - an item, as in the typing docs
R = TypeVar("R")

#: A verb body: runs inside one transaction on the connection it is given.
Job = Callable[Concatenate[Connection, P], T]


def translate(error: Exception) -> Exception:
    """Turn a driver error into the project's own; leave ours alone."""
    if isinstance(error, SmssyncError):
        return error
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return StoreUnavailable(f"database unavailable: {getattr(error, 'orig', error)}")
    if isinstance(error, sa_exc.DBAPIError):
        return StoreError(f"database error: {error.orig}")
    if isinstance(error, sa_exc.SQLAlchemyError):
        return StoreError(f"database error: {error}")
    return error


class Database(abc.ABC):
    """Runs verbs: ``read`` and ``write`` one transaction each, ``batch`` many calls in one."""

    #: SQLAlchemy's dialect name: ``sqlite`` or ``postgresql``.
    dialect: str

    def __init__(self) -> None:
        self._batches: dict[Any, GroupCommit[Any, Any]] = {}
        #: The key the database's credential hashes are made with, once known
        #: (``serverkey.use_server_key``); kept here because it belongs to this database.
        self.key: bytes | None = None

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and apply migrations."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and threads."""

    @abc.abstractmethod
    async def read(self, job: Job[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``job`` in a read transaction."""

    @abc.abstractmethod
    async def write(self, job: Job[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``job`` in a write transaction, committed durably before returning."""

    async def batch(
        self,
        job: Callable[[Connection, list[I]], list[R]],
        item: I,
        *,
        limit: int = 1000,
        linger: float = LINGER_S,
    ) -> R:
        """Write ``item`` with whatever concurrent calls of ``job`` are waiting: one
        transaction and one durable commit for the lot (group commit, see ``batching``);
        ``job`` returns one result per item, in order."""
        commit = self._batches.get(job)
        if commit is None:

            async def run_many(items: list[Any]) -> list[Any]:
                return await self.write(job, items)

            commit = self._batches[job] = GroupCommit(run_many, limit, linger)
        result: R = await commit(item)
        return result


class Verb(Generic[P, T]):
    """A store verb: ``await verb(db, ...)`` runs its body in one transaction of ``db``;
    ``verb.run(conn, ...)`` runs the body inside a transaction another verb already holds."""

    def __init__(self, run: Job[P, T], *, writes: bool) -> None:
        functools.update_wrapper(self, run)
        self.run = run
        self.writes = writes

    def __call__(
        self, db: Database, /, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, T]:
        if self.writes:
            return db.write(self.run, *args, **kwargs)
        return db.read(self.run, *args, **kwargs)


def reads(body: Job[P, T]) -> Verb[P, T]:
    """Make ``body`` a verb that runs in a read transaction."""
    return Verb(body, writes=False)


def writes(body: Job[P, T]) -> Verb[P, T]:
    """Make ``body`` a verb that runs in a write transaction, durable when it returns."""
    return Verb(body, writes=True)
