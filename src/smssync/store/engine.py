"""The Database a store verb runs on: a read, a write and a batched write.

A verb is a plain function over one SQLAlchemy ``Connection``; the engine runs it in one
transaction. ``write`` returns only once the transaction is durable, so a caller that answers
a phone after it never acknowledges what a power cut can take back; engines guarantee that
inside these three methods, and never by overriding a verb.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc

from smssync.errors import SmssyncError, StoreError, StoreUnavailable
from smssync.store import changes as announcements
from smssync.store.batching import LINGER_S, GroupCommit

P = ParamSpec("P")
T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - an item, as in the typing docs
R = TypeVar("R")

#: A verb body: runs inside one transaction on the connection it is given.
Job = Callable[Concatenate[Connection, P], T]

#: SQLite's primary result codes of a lock held elsewhere; worth waiting and trying again.
_SQLITE_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
#: PostgreSQL's SQLSTATEs worth trying again: serialization failure and deadlock.
_PG_RETRYABLE = {"40001", "40P01"}


def translate(error: BaseException) -> BaseException:
    """Turn a driver error into the project's own; leave ours, and anything else, alone.

    The message names the driver's complaint only: statements run with
    ``hide_parameters``, and of PostgreSQL's report only the primary message is kept, as its
    DETAIL quotes the values of a violated key (credential hashes, SMS keys).
    """
    if isinstance(error, SmssyncError):
        return error
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return StoreUnavailable(f"database unavailable: {_describe(error)}")
    if isinstance(error, sa_exc.SQLAlchemyError):
        return StoreError(f"database error: {_describe(error)}")
    return error


def _describe(error: sa_exc.SQLAlchemyError) -> str:
    orig = getattr(error, "orig", None)
    if orig is None:
        return str(error)
    diag = getattr(orig, "diag", None)  # psycopg's
    primary = getattr(diag, "message_primary", None)
    return str(primary) if primary else str(orig)


@contextlib.contextmanager
def wrap_exceptions() -> Iterator[None]:
    """Raise the project's own error for any driver error raised inside (``translate``)."""
    try:
        yield
    except Exception as error:
        translated = translate(error)
        if translated is error:
            raise
        raise translated from error


def retryable(error: BaseException) -> bool:
    """Tell whether a transaction that raised ``error`` may succeed when run again: SQLite
    found the database locked by another connection, or PostgreSQL chose it as the victim
    of a serialization failure or a deadlock."""
    orig = getattr(error, "orig", error)
    if isinstance(orig, sqlite3.Error):
        return getattr(orig, "sqlite_errorcode", 0) & 0xFF in _SQLITE_BUSY
    return getattr(orig, "sqlstate", None) in _PG_RETRYABLE


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
        #: How many times each noun's caches were told to forget (``generation``).
        self._generations: dict[str, int] = {}

    def on_change(self, noun: str, forget: Callable[[], None]) -> None:
        """Call ``forget`` whenever ``noun`` changed (a cache of it goes stale: ``devices``,
        ``hooks``, ``apikeys``): at once after this process's verbs, and for other
        processes' by ``fresh`` and ``follow_changes``."""
        self._listeners.setdefault(noun, []).append(forget)

    def changed(self, noun: str) -> None:
        """Tell the caches of ``noun`` that it changed."""
        self._generations[noun] = self._generations.get(noun, 0) + 1
        for forget in self._listeners.get(noun, ()):
            forget()

    def changed_all(self) -> None:
        """Tell every cache to forget: changes may have been missed."""
        for noun in list(self._listeners):
            self.changed(noun)

    def generation(self, noun: str) -> int:
        """A number that moves whenever ``noun``'s caches are told to forget: a cache reads
        it before a lookup and keeps the answer only if it has not moved meanwhile, so
        that a read started before a change never lands in the cache after it."""
        return self._generations.get(noun, 0)

    @abc.abstractmethod
    async def fresh(self) -> None:
        """Make the caches forget whatever any process changed before this call (a cache
        calls it before it trusts an entry)."""

    @abc.abstractmethod
    async def follow_changes(self) -> None:
        """Hear other processes' changes until cancelled, where the engine needs a
        connection of its own for that (PostgreSQL's LISTEN); return at once if not."""

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

            commit = self._batches[job] = GroupCommit(run_many, limit, linger, job.__name__)
        result: R = await commit(item)
        return result


class Verb(Generic[P, T]):
    """A store verb: ``await verb(db, ...)`` runs its body in one transaction of ``db``;
    ``verb.run(conn, ...)`` runs the body inside a transaction another verb already holds."""

    def __init__(self, run: Job[P, T], *, writes: bool, changes: str | None = None) -> None:
        functools.update_wrapper(self, run)
        self.run = run if changes is None else _announcing(run, changes)
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


def _announcing(body: Job[P, T], noun: str) -> Job[P, T]:
    """``body``, then the announcement of its change in the same transaction: every process
    hears of it when, and only when, it commits (``changes``)."""

    @functools.wraps(body)
    def run(conn: Connection, /, *args: P.args, **kwargs: P.kwargs) -> T:
        result = body(conn, *args, **kwargs)
        announcements.announce(conn, noun)
        return result

    return run


def reads(body: Job[P, T]) -> Verb[P, T]:
    """Make ``body`` a verb that runs in a read transaction."""
    return Verb(body, writes=False)


def writes(body: Job[P, T]) -> Verb[P, T]:
    """Make ``body`` a verb that runs in a write transaction, durable when it returns."""
    return Verb(body, writes=True)


def changes(noun: str) -> Callable[[Job[P, T]], Verb[P, T]]:
    """Make a body a write verb that changes ``noun``: every process's caches of it are
    dropped (this one's at once, the others' as ``Database.fresh`` says)."""

    def verb(body: Job[P, T]) -> Verb[P, T]:
        return Verb(body, writes=True, changes=noun)

    return verb
