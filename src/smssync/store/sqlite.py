"""SQLite: reads on a pool of threads, every write through one writer thread, as datasette.

One thread owns the one connection that writes. It takes whatever jobs are waiting (group
commit) and runs them in one ``BEGIN IMMEDIATE`` transaction, each job in a SAVEPOINT of its
own so that a failing job is rolled back and fails alone, then commits once: under load many
writes share one commit and its fsync.

The file is in WAL mode with synchronous=FULL: a commit returns only once the WAL is synced,
and other connections see it only after that sync, so neither a writer's caller nor a reader
ever sees what a power cut could take back. SQLite's automatic checkpoint runs in the writer
thread after a commit that leaves the WAL over 1000 pages.

Several processes may open the same file (``serve --workers``): taking the write lock waits
(busy_timeout), is retried, and finally raises StoreUnavailable. They hear of each other's
changes to cached nouns through the change marks in ``meta`` (``changes``), which ``fresh``
compares with what it saw last.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import queue
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy import Engine as SaEngine

from smssync.errors import StoreError, StoreUnavailable
from smssync.store import changes, migrate
from smssync.store.engine import Database, Job, P, T, retryable, translate, wrap_exceptions
from smssync.store.files import private_database

log = logging.getLogger("smssync.store")

#: Most jobs the writer commits together.
GROUP_COMMIT = 256
#: Attempts at a write transaction whose lock is taken, each waiting up to busy_timeout.
WRITE_ATTEMPTS = 3
BUSY_TIMEOUT_MS = 10_000
#: Longest ``fresh`` waits on the event loop for a locked file before the threads take over.
MARKS_WAIT_S = 0.05

#: What a job ends with: its value, or the error its caller gets.
_Outcome = tuple[Any, BaseException | None]


@dataclasses.dataclass
class _WriteJob:
    fn: Any
    args: tuple[Any, ...]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the caller gave up (cancelled); the write still happened
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _settle_all(settlements: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in settlements:
        _settle(future, value, error)


def _take_waiting(
    jobs: queue.SimpleQueue[_WriteJob | None], first: _WriteJob, limit: int
) -> tuple[list[_WriteJob], bool]:
    """``first`` and the jobs already waiting behind it, at most ``limit`` in all; True when
    the stop mark (None) was among them."""
    batch = [first]
    while len(batch) < limit:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            break
        if job is None:
            return batch, True
        batch.append(job)
    return batch, False


class SqliteStore(Database):
    """The Store on one SQLite file, in WAL mode with synchronous=FULL."""

    dialect = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        readers: int = 4,
        synchronous: str = "FULL",
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.readers = readers
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self._writer_engine: SaEngine | None = None
        self._reader_engine: SaEngine | None = None
        self._jobs: queue.SimpleQueue[_WriteJob | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._read_pool: ThreadPoolExecutor | None = None
        #: The change marks last seen, by ``meta`` key.
        self._marks: dict[str, bytes] = {}
        #: A connection of ``fresh``'s own, read on the event loop (see there).
        self._marks_db: sqlite3.Connection | None = None
        #: The loop in whose current turn the marks were read (``fresh``).
        self._marks_read: asyncio.AbstractEventLoop | None = None

    def _engine(self, begin: str, pool_size: int) -> SaEngine:
        engine = create_engine(
            f"sqlite:///{self.path}",
            pool_size=pool_size,
            max_overflow=0,
            connect_args={"check_same_thread": False, "timeout": self.busy_timeout_ms / 1000},
            # Errors must not carry SMS text or credential hashes into logs.
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def configure(dbapi: sqlite3.Connection, record: Any) -> None:
            # Let SQLAlchemy's BEGIN below, not the sqlite3 module, open transactions (and
            # so SAVEPOINTs work: SQLAlchemy's documented recipe for pysqlite).
            dbapi.isolation_level = None
            dbapi.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}").close()
            self._set_wal(dbapi)
            for pragma in (f"synchronous={self.synchronous}", "foreign_keys=ON"):
                dbapi.execute(f"PRAGMA {pragma}").close()

        @event.listens_for(engine, "begin")
        def start(conn: Connection) -> None:
            conn.exec_driver_sql(begin)

        return engine

    def _set_wal(self, dbapi: sqlite3.Connection) -> None:
        # Turning a new file to WAL takes an exclusive lock, and when several connections
        # open it at once SQLite answers "locked" at once, without its busy handler (two
        # readers that both want the write lock would wait for each other): so wait here.
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                dbapi.execute("PRAGMA journal_mode=WAL").close()
                return
            except sqlite3.OperationalError as error:
                if not retryable(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    async def open(self) -> None:
        """Create the file if needed, migrate it and start the writer thread."""
        if sqlite3.sqlite_version_info < (3, 35):
            raise StoreError(f"SQLite {sqlite3.sqlite_version} is too old; 3.35 or newer needed")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            private_database(self.path)
        except OSError as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from None
        self._writer_engine = self._engine("BEGIN IMMEDIATE", 1)
        self._reader_engine = self._engine("BEGIN", self.readers)
        self._read_pool = ThreadPoolExecutor(self.readers, thread_name_prefix="smssync-read")
        self._writer = threading.Thread(target=self._run_writer, name="smssync-write", daemon=True)
        self._writer.start()
        try:
            await self.write(migrate.upgrade)
            self._marks = await self.read(changes.marks)
            self._marks_db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=MARKS_WAIT_S
            )
        except BaseException:
            await self.close()
            raise

    async def fresh(self) -> None:
        """Compare the change marks with those seen last and tell the caches of each noun
        another process (or connection) changed since.

        Every cache lookup asks, so the read is made on the event loop, on a connection of
        its own: one indexed read of a few rows costs some 5 µs there, against some 300 µs
        through the reader threads. A WAL reader waits for nobody, but for the rare moment
        when the file is locked (a checkpoint that resets the WAL) the threads take over
        rather than the loop waiting.

        Read once per turn of the event loop: the lookups of one incoming SMS (its device,
        then the rules) ask in the same turn, as do the requests whose data one poll of the
        sockets brought. Each of those requests arrived before the turn began, so a change
        committed during the turn is concurrent with them all (PostgreSQL's notifications
        come later still). The second read and its release of the GIL to the writer cost
        some 10 µs of the loop's CPU per incoming SMS (bench/README.md).
        """
        loop = asyncio.get_running_loop()
        if self._marks_db is None or self._marks_read is loop:
            return
        try:
            seen = dict(self._marks_db.execute(changes.MARKS_SQL).fetchall())
        except sqlite3.OperationalError:
            seen = await self.read(changes.marks)  # a later turn: nothing to remember
        else:
            # Applied below in this same step, before any other caller can ask. The loop,
            # not a flag: a loop closed before its next turn leaves no stale "read".
            self._marks_read = loop
            loop.call_soon(self._next_turn)
        for key, mark in seen.items():
            if self._marks.get(key) != mark:
                self._marks[key] = mark
                self.changed(key.removeprefix(changes.PREFIX))

    def _next_turn(self) -> None:
        self._marks_read = None

    async def follow_changes(self) -> None:
        """Nothing to follow: ``fresh`` reads the marks when a cache asks."""

    async def close(self) -> None:
        """Finish queued writes, then stop the threads and close every connection."""
        if self._marks_db is not None:
            self._marks_db.close()
            self._marks_db = None
        if self._writer is not None:
            self._jobs.put(None)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._read_pool is not None:
            self._read_pool.shutdown(wait=True)
            self._read_pool = None
        for engine in (self._writer_engine, self._reader_engine):
            if engine is not None:
                engine.dispose()
        self._writer_engine = self._reader_engine = None

    async def read(self, job: Job[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._read_pool is None:
            raise StoreError("the store is not open")
        call = functools.partial(self._read_now, functools.partial(job, **kwargs), args)
        return await asyncio.get_running_loop().run_in_executor(self._read_pool, call)

    def _read_now(self, fn: Any, args: tuple[Any, ...]) -> Any:
        if self._reader_engine is None:
            raise StoreError("the store is not open")
        with wrap_exceptions(), self._reader_engine.connect() as conn, conn.begin():
            return fn(conn, *args)

    async def write(self, job: Job[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._writer is None:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_WriteJob(functools.partial(job, **kwargs), args, loop, future))
        return await future

    def _run_writer(self) -> None:
        if self._writer_engine is None:
            return
        try:
            conn = self._writer_engine.connect()
        except Exception as error:
            # Nobody may wait forever for a writer that never started.
            self._fail_jobs(translate(error))
            return
        with conn:
            stopping = False
            while not stopping:
                first = self._jobs.get()
                if first is None:
                    break
                batch, stopping = _take_waiting(self._jobs, first, GROUP_COMMIT)
                outcomes = self._transaction(conn, batch)
                # One wake-up per event loop for the whole batch, not one per job.
                by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
                for job, (value, failure) in zip(batch, outcomes, strict=True):
                    by_loop.setdefault(job.loop, []).append((job.future, value, failure))
                for loop, settlements in by_loop.items():
                    try:
                        loop.call_soon_threadsafe(_settle_all, settlements)
                    except RuntimeError:  # the caller's loop is closed; nobody is waiting
                        pass

    def _fail_jobs(self, error: BaseException) -> None:
        """Fail every queued job, and any queued later, until the store closes."""
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job.loop.call_soon_threadsafe(_settle, job.future, None, error)
            except RuntimeError:  # the caller's loop is closed; nobody is waiting
                pass

    def _transaction(self, conn: Connection, batch: list[_WriteJob]) -> list[_Outcome]:
        """Run the jobs in one transaction and commit once; retry it while the database is
        locked by another process, up to WRITE_ATTEMPTS times."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with conn.begin():
                    if len(batch) == 1:
                        # Alone, a job needs no SAVEPOINT: when it raises, the transaction
                        # is rolled back (below), which is all its changes.
                        return [(batch[0].fn(conn, *batch[0].args), None)]
                    return [_run_job(conn, job) for job in batch]
            except Exception as error:
                if retryable(error) and attempt < WRITE_ATTEMPTS:
                    log.warning("database is locked; retrying (attempt %d)", attempt)
                    time.sleep(0.05 * attempt)
                    continue
                # BEGIN, COMMIT or a lone job failed: nothing of the batch is stored.
                failure = translate(error)
                return [(None, failure)] * len(batch)
        raise AssertionError("unreachable")  # pragma: no cover


def _run_job(conn: Connection, job: _WriteJob) -> _Outcome:
    """Run one job in its own SAVEPOINT: when it raises, only its own changes are undone."""
    savepoint = conn.begin_nested()
    try:
        value = job.fn(conn, *job.args)
    except Exception as error:
        savepoint.rollback()
        if retryable(error):
            raise  # the lock was lost: the whole transaction runs again
        return None, translate(error)
    savepoint.commit()
    return value, None
