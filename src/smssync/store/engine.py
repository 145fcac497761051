"""The Database a store verb runs on: a read, a write and a batched write.

A verb is a plain function over one SQLAlchemy ``Connection``; the engine runs it in one
transaction. ``write`` returns only once the transaction is durable, so a caller that answers
a phone after it never acknowledges what a power cut can take back; engines guarantee that
inside these three methods, and never by overriding a verb.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable
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
        self._listeners: dict[str, list[Callable[[], None]]] = {}

    def on_change(self, noun: str, forget: Callable[[], None]) -> None:
        """Call ``forget`` after every verb of this process that changes ``noun`` (a cache
        of it goes stale: ``devices``, ``hooks``, ``apikeys``); other processes' caches
        follow within their time to live."""
        self._listeners.setdefault(noun, []).append(forget)

    def changed(self, noun: str) -> None:
        """Tell the caches of ``noun`` that a verb just changed it."""
        for forget in self._listeners.get(noun, ()):
            forget()

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

    def __init__(self, run: Job[P, T], *, writes: bool, changes: str | None = None) -> None:
        functools.update_wrapper(self, run)
        self.run = run
        self.writes = writes
        #: The noun whose caches this verb makes stale (``Database.on_change``).
        self.changes = changes

    async def __call__(self, db: Database, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if not self.writes:
            return await db.read(self.run, *args, **kwargs)
        result = await db.write(self.run, *args, **kwargs)
        if self.changes is not None:
            db.changed(self.changes)
        return result


def reads(body: Job[P, T]) -> Verb[P, T]:
    """Make ``body`` a verb that runs in a read transaction."""
    return Verb(body, writes=False)


def writes(body: Job[P, T]) -> Verb[P, T]:
    """Make ``body`` a verb that runs in a write transaction, durable when it returns."""
    return Verb(body, writes=True)


def changes(noun: str) -> Callable[[Job[P, T]], Verb[P, T]]:
    """Make a body a write verb after which this process's caches of ``noun`` are dropped."""

    def verb(body: Job[P, T]) -> Verb[P, T]:
        return Verb(body, writes=True, changes=noun)

    return verb
