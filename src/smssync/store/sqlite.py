"""SQLite: one writer thread with group commit, reads on a small pool of threads.

As in datasette, every write goes to one thread that owns one connection and runs jobs in
``BEGIN IMMEDIATE``. It drains whatever jobs are waiting and runs them in one transaction, each
in its own SAVEPOINT so one failing job does not fail the others, then commits once: under
load many verbs share one fsync. Several processes may open the same file, so taking the
write lock waits (busy_timeout), is retried, and finally raises StoreUnavailable.

Incoming SMS, the hottest write, take another way (``_record_inbound_many``): see there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import functools
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc

from smssync.errors import StoreError, StoreUnavailable
from smssync.store import inbox, migrate
from smssync.store.engine import Database, Job, P, T, translate
from smssync.store.files import private_database
from smssync.store.walflush import WalFlusher

log = logging.getLogger("smssync.store")

#: Most jobs the writer commits together.
GROUP_COMMIT = 256
#: Attempts at taking the write lock, each waiting up to busy_timeout.
WRITE_ATTEMPTS = 3
BUSY_TIMEOUT_MS = 10_000


@dataclasses.dataclass
class _WriteJob:
    fn: Any
    args: tuple[Any, ...]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    #: Runs on the driver's connection outside any transaction (``_write_direct``).
    direct: bool = False


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the caller gave up (cancelled); the write still happened
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


_Settlement = tuple["asyncio.Future[Any]", Any, BaseException | None]


def _settle_all(settlements: list[_Settlement]) -> None:
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


#: Commits of the loop's connection between two checkpoints (about 1000 pages of WAL, as
#: SQLite's own automatic checkpoint, at a dozen pages per batch of SMS).
CHECKPOINT_EVERY = 80


#: How long a batch of incoming SMS waits for the write lock before it goes to the writer
#: thread (seconds).
LOOP_LOCK_WAIT = 0.002


def _try_lock(lock: Any) -> bool:
    """Take the write lock if it is free, without waiting; False when it is taken."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as error:
        raise StoreUnavailable(f"database unavailable: {error}") from error


def _is_busy(error: sa_exc.OperationalError | sqlite3.OperationalError) -> bool:
    text = str(error.orig if isinstance(error, sa_exc.OperationalError) else error).lower()
    return "locked" in text or "busy" in text


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
        self._writer_engine: Engine | None = None
        self._reader_engine: Engine | None = None
        self._jobs: queue.SimpleQueue[_WriteJob | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._read_pool: ThreadPoolExecutor | None = None
        #: Incoming SMS written on the event loop's thread (``_insert_locked``).
        self._loop_conn: sqlite3.Connection | None = None
        self._loop_lock: Any = None
        #: Flushes the WAL for answers (``_flush_wal``); None unless synchronous is FULL+.
        self._flusher: WalFlusher | None = None
        #: The thread that checkpoints for the loop's connection, and when.
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpointing: asyncio.Future[None] | None = None
        #: The writer thread is taking or holding the write lock (read on the event loop; a
        #: stale value only costs a wait or a trip to the writer, never correctness).
        self._writer_busy = False
        self._commits_since_checkpoint = 0
        #: FULL and EXTRA promise that whatever is answered survives a power cut.
        self._flush = synchronous.upper() in ("FULL", "EXTRA", "2", "3")

    def _engine(self, begin: str, pool_size: int) -> Engine:
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
            # Let SQLAlchemy's BEGIN below, not the sqlite3 module, open transactions.
            dbapi.isolation_level = None
            dbapi.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}").close()
            self._set_wal(dbapi)
            for pragma in (f"synchronous={self.synchronous}", "foreign_keys=ON"):
                dbapi.execute(f"PRAGMA {pragma}").close()

        @event.listens_for(engine, "begin")
        def start(conn: Connection) -> None:
            conn.exec_driver_sql(begin)

        return engine

    @property
    def _lock_path(self) -> Path:
        """The file every smssync writer of this database locks (see ``_run_writer``)."""
        return self.path.with_name(self.path.name + ".write-lock")

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
                if not _is_busy(error) or time.monotonic() > deadline:
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
        self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="smssync-checkpoint")
        self._writer = threading.Thread(target=self._run_writer, name="smssync-write", daemon=True)
        self._writer.start()
        try:
            await self.write(migrate.upgrade)
            wal = self._open_loop_connection()
            if self._flush:
                self._flusher = await WalFlusher.open(wal)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Finish queued writes, then stop the threads and close every connection."""
        if self._writer is not None:
            self._jobs.put(None)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._read_pool is not None:
            self._read_pool.shutdown(wait=True)
            self._read_pool = None
        if self._flusher is not None:
            await self._flusher.close()
            self._flusher = None
        if self._checkpointer is not None:
            self._checkpointer.shutdown(wait=True)
            self._checkpointer = None
        if self._loop_conn is not None:
            self._loop_conn.close()
            self._loop_conn = None
        if self._loop_lock is not None:
            self._loop_lock.close()
            self._loop_lock = None
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
        try:
            with self._reader_engine.connect() as conn, conn.begin():
                return fn(conn, *args)
        except Exception as error:
            raise translate(error) from error

    async def write(self, job: Job[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        result: T = await self._submit(functools.partial(job, **kwargs), args, direct=False)
        return result

    async def _submit(self, fn: Any, args: tuple[Any, ...], *, direct: bool) -> Any:
        if self._writer is None:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put(_WriteJob(fn, args, loop, future, direct=direct))
        return await future

    async def _write_direct(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(sqlite3_connection, *args)`` in the writer, outside a transaction.

        For a job whose every statement is atomic and durable by itself (autocommit); it
        still runs under the write lock, after the batch's transaction.
        """
        result: T = await self._submit(fn, args, direct=True)
        return result

    async def _take_lock_on_loop(self) -> bool:
        """Take the write lock for the loop's INSERT, trying once per pass of the event loop
        for at most LOOP_LOCK_WAIT; False when the batch is for the writer thread.

        The other workers hold the lock only for their INSERT (a few hundred microseconds):
        waiting that long costs less than the writer thread, which also flushes under the
        lock; with a single try, one batch in five went there under wrk. The loop serves
        other requests between tries (it slept in ``time.sleep`` here before: 8 to 12% fewer
        SMS per second, paired runs). A pass, not a timer: uvloop's timers count whole
        milliseconds, longer than the other worker's INSERT.
        """
        if self._loop_lock is None:
            raise StoreError("the store is not open")
        deadline = time.monotonic() + LOOP_LOCK_WAIT
        while True:
            # This process's own writer thread commits with a flush under the lock, which
            # often takes longer than the wait: then the batch goes to the writer at once.
            if self._writer_busy:
                return False
            if _try_lock(self._loop_lock):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0)

    def _insert_locked(self, rows: list[inbox.InboundRow]) -> list[tuple[bool, int]] | None:
        """Run the INSERT under the write lock taken by ``_take_lock_on_loop``, and release
        it; None when SQLite is busy (the batch is then for the writer thread)."""
        conn, lock = self._loop_conn, self._loop_lock
        if conn is None or lock is None:
            raise StoreError("the store is not open")
        before = conn.total_changes
        try:
            return inbox.record_inbound_autocommit(conn, rows)
        except sqlite3.OperationalError as error:
            # Busy before the commit (a writer that does not take our lock, such as the
            # sqlite3 shell): the writer thread waits for it. Busy after it, while reading
            # back the ids of duplicates: the SMS are stored, and the phone's retry says so.
            if _is_busy(error) and conn.total_changes == before:
                return None
            raise StoreUnavailable(f"database unavailable: {error}") from error
        except sqlite3.Error as error:
            raise StoreError(f"database error: {error}") from error
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            self._commits_since_checkpoint += conn.total_changes != before

    def _open_loop_connection(self) -> Path:
        """Open the loop's connection; return where its WAL is (``_flush_wal``)."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            # No busy wait on the event loop: a busy database sends the batch to the writer.
            # Checkpoints wait for the disk, so they run elsewhere (``_checkpoint``).
            for pragma in ("busy_timeout=0", "foreign_keys=ON", "wal_autocheckpoint=0"):
                conn.execute(f"PRAGMA {pragma}").close()
            synchronous = "NORMAL" if self._flush else self.synchronous
            conn.execute(f"PRAGMA synchronous={synchronous}").close()
            (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
            if mode != "wal":
                raise StoreError(f"the database is in journal mode {mode}, not wal")
            # SQLite resolves symbolic links: its WAL sits beside the real file.
            [(_, _, main_file)] = [
                r for r in conn.execute("PRAGMA database_list") if r[1] == "main"
            ]
        except BaseException:
            conn.close()
            raise
        self._loop_conn = conn
        self._loop_lock = self._lock_path.open("a")
        return Path(main_file + "-wal")

    async def _flush_wal(self) -> None:
        """Make every commit so far durable (fdatasync of the WAL, ``walflush``), and start
        a checkpoint when one is due; StoreUnavailable for good once a flush failed."""
        if self._flush:
            if self._flusher is None:
                raise StoreError("the store is not open")
            await self._flusher.flush()
        if self._commits_since_checkpoint >= CHECKPOINT_EVERY and self._checkpointing is None:
            self._commits_since_checkpoint = 0
            self._checkpointing = self._start_checkpoint()

    def _start_checkpoint(self) -> asyncio.Future[None]:
        """Start a PASSIVE checkpoint on its own thread; it never blocks writers."""
        future = asyncio.get_running_loop().run_in_executor(self._checkpointer, self._checkpoint)
        future.add_done_callback(self._checkpoint_done)
        return future

    def _checkpoint_done(self, future: asyncio.Future[None]) -> None:
        self._checkpointing = None
        if not future.cancelled() and future.exception() is not None:
            log.warning("WAL checkpoint failed: %s", future.exception())

    def _checkpoint(self) -> None:
        # The loop's connection does not checkpoint by itself; this keeps the WAL short.
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=0").close()
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").close()
        finally:
            conn.close()

    def _run_writer(self) -> None:
        if self._writer_engine is None:
            return
        try:
            conn = self._writer_engine.connect()
        except Exception as error:
            # Nobody may wait forever for a writer that never started.
            self._fail_jobs(translate(error))
            return
        with conn, self._lock_path.open("a") as lock:
            stopping = False
            while not stopping:
                first = self._jobs.get()
                if first is None:
                    break
                batch, stopping = _take_waiting(self._jobs, first, GROUP_COMMIT)
                # Writers of other processes on the same file (uvicorn --workers) queue on this
                # lock, which the kernel hands over at once; SQLite's own busy handler would
                # poll with sleeps of up to 100 ms instead.
                self._writer_busy = True
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    outcomes = self._run_all(conn, batch)
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
                    self._writer_busy = False
                # One wake-up per event loop for the whole batch, not one per job.
                by_loop: dict[asyncio.AbstractEventLoop, list[_Settlement]] = {}
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

    def _run_all(
        self, conn: Connection, batch: list[_WriteJob]
    ) -> list[tuple[Any, BaseException | None]]:
        """The transactional jobs in one transaction, then each direct job; in batch order."""
        outcomes: list[tuple[Any, BaseException | None]] = [(None, None)] * len(batch)
        in_transaction = [i for i, job in enumerate(batch) if not job.direct]
        if in_transaction:
            done = self._run_batch(conn, [batch[i] for i in in_transaction])
            for i, outcome in zip(in_transaction, done, strict=True):
                outcomes[i] = outcome
        for i, job in enumerate(batch):
            if job.direct:
                outcomes[i] = self._run_direct(conn, job)
        return outcomes

    def _run_direct(self, conn: Connection, job: _WriteJob) -> tuple[Any, BaseException | None]:
        dbapi = conn.connection.driver_connection
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return job.fn(dbapi, *job.args), None
            except sqlite3.OperationalError as error:
                if _is_busy(error) and attempt < WRITE_ATTEMPTS:
                    log.warning("database is locked; retrying (attempt %d)", attempt)
                    time.sleep(0.05 * attempt)
                    continue
                return None, StoreUnavailable(f"database unavailable: {error}")
            except sqlite3.Error as error:
                return None, StoreError(f"database error: {error}")
            except Exception as error:
                return None, translate(error)
        raise AssertionError("unreachable")  # pragma: no cover

    def _run_batch(
        self, conn: Connection, batch: list[_WriteJob]
    ) -> list[tuple[Any, BaseException | None]]:
        """Run the jobs in one transaction; if one fails, run each in its own instead.

        The common case (nothing fails) costs one BEGIN and one COMMIT for the whole batch;
        a failing job is rare, and then its neighbours must not share its fate.
        """
        if len(batch) > 1:
            try:
                return self._transaction(conn, batch)
            except _JobFailed:
                pass
        outcomes: list[tuple[Any, BaseException | None]] = []
        for job in batch:
            try:
                outcomes.extend(self._transaction(conn, [job]))
            except _JobFailed as failed:
                outcomes.append((None, failed.error))
        return outcomes

    def _transaction(
        self, conn: Connection, batch: list[_WriteJob]
    ) -> list[tuple[Any, BaseException | None]]:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with conn.begin():
                    values = [self._run_job(conn, job) for job in batch]
                return [(value, None) for value in values]
            except sa_exc.OperationalError as error:
                if _is_busy(error) and attempt < WRITE_ATTEMPTS:
                    log.warning("database is locked; retrying (attempt %d)", attempt)
                    time.sleep(0.05 * attempt)
                    continue
                unavailable = StoreUnavailable(f"database unavailable: {error.orig}")
                return [(None, unavailable)] * len(batch)
            except _JobFailed:
                raise
            except Exception as error:  # a failed COMMIT: nothing of the batch is stored
                return [(None, translate(error))] * len(batch)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _run_job(conn: Connection, job: _WriteJob) -> Any:
        try:
            return job.fn(conn, *job.args)
        except sa_exc.OperationalError as error:
            if _is_busy(error):
                raise  # the whole transaction retries
            raise _JobFailed(translate(error)) from error
        except Exception as error:
            raise _JobFailed(translate(error)) from error


class _JobFailed(Exception):
    """One job of a batch raised; the transaction is rolled back."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error
