"""What a database engine offers the store verbs: a read, a write and a batched write.

A verb is a plain function over one SQLAlchemy ``Connection``; the engine runs it in one
transaction. ``write`` returns only once the transaction is durable, so a caller that answers
a phone after it never acknowledges what a power cut can take back; engines guarantee that
inside these three methods, and never by overriding a verb.
"""

from __future__ import annotations

import abc
import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar

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


class Engine(abc.ABC):
    """Runs verbs: ``read`` and ``write`` one transaction each, ``batch`` many calls in one."""

    #: SQLAlchemy's dialect name: ``sqlite`` or ``postgresql``.
    dialect: str

    def __init__(self) -> None:
        self._batches: dict[Any, GroupCommit[Any, Any]] = {}

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
