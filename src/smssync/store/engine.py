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
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
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


class ChangeStamp:
    """A file whose every change means "some cached noun changed": processes on one
    machine (a server's workers, the CLI beside them) share their changes through it.

    Each change appends a byte, so two changes within a clock tick still differ in size;
    the file starts over past a few KiB, which changes its size too.
    """

    LIMIT = 4096

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = self._look()

    def _look(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_size, stat.st_mtime_ns

    def touch(self) -> None:
        """Record a change (not durable: after a crash every cache is gone anyway)."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if os.fstat(fd).st_size >= self.LIMIT:
                os.ftruncate(fd, 0)
            os.write(fd, b".")
        finally:
            os.close(fd)

    def moved(self) -> bool:
        """Tell whether anyone recorded a change since the last call."""
        now = self._look()
        if now == self._seen:
            return False
        self._seen = now
        return True


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
        self._stamp: ChangeStamp | None = None

    def on_change(self, noun: str, forget: Callable[[], None]) -> None:
        """Call ``forget`` after every verb of this process that changes ``noun`` (a cache
        of it goes stale: ``devices``, ``hooks``, ``apikeys``), and, once ``share_changes``
        is on, when ``refresh`` finds that another process changed anything; other
        processes' caches follow within their time to live."""
        self._listeners.setdefault(noun, []).append(forget)

    def changed(self, noun: str) -> None:
        """Tell the caches of ``noun`` that a verb just changed it, here and (``share_changes``)
        in the other processes of this machine."""
        for forget in self._listeners.get(noun, ()):
            forget()
        if self._stamp is not None:
            self._stamp.touch()

    def share_changes(self, path: Path) -> None:
        """Tell the other processes on this machine that use ``path`` of every change, and
        learn of theirs: a CLI's ``device rotate-secret`` reaches a running server's caches
        at its next request, not at the end of their time to live."""
        self._stamp = ChangeStamp(path)

    def refresh(self) -> None:
        """Drop every cache of this process if another one changed something since the
        last look: one ``stat`` when nothing changed, no database read."""
        if self._stamp is not None and self._stamp.moved():
            for forgets in self._listeners.values():
                for forget in forgets:
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

            commit = self._batches[job] = GroupCommit(run_many, limit, linger, job.__name__)
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
