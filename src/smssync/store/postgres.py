"""PostgreSQL through psycopg 3: a pooled sync engine, each verb one transaction in a thread.

Measured under ``bench/ingest.py`` (2 workers), the same jobs on the event loop through
SQLAlchemy's ``AsyncConnection.run_sync`` answered half as many incoming SMS per second:
the loop then also runs every statement's Python, which the threads do while the loop serves
HTTP.

Claims lock their rows with ``FOR UPDATE SKIP LOCKED`` (see ``dialects``), so several
processes share one queue and never hand out the same message twice. Every transaction
commits with synchronous_commit on: durably, before ``write`` returns.

Each server process also keeps one connection of its own that LISTENs for the changes other
processes announce (``changes``), so a phone removed or re-keyed through one server is
refused by every server at once; while that connection is down, caches are not trusted.

psycopg is an extra (``smssync[postgres]``); ``open_store`` says so when it is missing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from smssync.errors import ConfigError, StoreError
from smssync.store import changes, migrate
from smssync.store.engine import Database, Job, P, T, retryable, wrap_exceptions

log = logging.getLogger("smssync.store")

#: Attempts at a transaction PostgreSQL chose as a serialization or deadlock victim.
ATTEMPTS = 3
#: The listener's first and longest wait before it connects again.
LISTEN_RETRY_S = 0.5
LISTEN_RETRY_MAX_S = 10.0
#: How long the listener waits for a notification before it checks that its connection
#: still works (a connection cut without a word would otherwise hear nothing, silently).
LISTEN_CHECK_S = 15.0


def engine_url(url: str) -> str:
    """Rewrite a user's ``postgres://`` or ``postgresql://`` URL to use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("postgresql+psycopg://"):
        return url
    raise ConfigError(f"not a PostgreSQL URL: {make_url(url).render_as_string()}")


class PostgresStore(Database):
    """The Store on a PostgreSQL database."""

    dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        super().__init__()
        self.url = engine_url(url)
        self.pool_size = pool_size
        self._engine: Engine | None = None
        self._pool: ThreadPoolExecutor | None = None
        #: True while the LISTEN connection is up: only then are caches to be trusted.
        self._listening = False

    async def open(self) -> None:
        """Connect and migrate, serialised with other processes by an advisory lock."""
        self._engine = create_engine(
            self.url,
            pool_size=self.pool_size,
            max_overflow=0,
            # No ping before each transaction (a round trip each): a connection found dead
            # fails its transaction with StoreUnavailable, and SQLAlchemy then renews the
            # whole pool.
            # Errors must not carry SMS text or credential hashes into logs.
            hide_parameters=True,
        )
        # One thread per pooled connection: no thread ever waits for the pool.
        self._pool = ThreadPoolExecutor(self.pool_size, thread_name_prefix="smssync-pg")
        try:
            await self.write(migrate.upgrade)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop the threads and close the pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    async def fresh(self) -> None:
        """Other processes' changes arrive as notifications (``follow_changes``); without
        a listening connection nothing arrives, so no cache may be trusted."""
        if not self._listening:
            self.changed_all()

    async def follow_changes(self) -> None:
        """LISTEN for announced changes on a connection of its own, until cancelled;
        connect again with a growing pause when it fails. A (re)connection forgets every
        cache: what was announced while nobody listened was not heard."""
        conninfo = make_url(self.url).set(drivername="postgresql")
        delay = LISTEN_RETRY_S
        while True:
            try:
                await self._listen(conninfo.render_as_string(hide_password=False))
            except (psycopg.Error, OSError, TimeoutError) as exc:
                if self._listening:  # it was up: a new outage, retried soon
                    delay = LISTEN_RETRY_S
                log.warning(
                    "not hearing other servers' changes (%s); caches bypassed, retrying in %.1f s",
                    type(exc).__name__,
                    delay,
                )
            except Exception:
                # Never a silent end: caches would stay bypassed for the life of the process.
                log.exception("listening for other servers' changes failed; retrying")
            finally:
                self._listening = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, LISTEN_RETRY_MAX_S)

    async def _listen(self, conninfo: str) -> None:
        async with await psycopg.AsyncConnection.connect(
            conninfo, autocommit=True, connect_timeout=10
        ) as conn:
            await conn.execute(f"LISTEN {changes.CHANNEL}")
            self._listening = True
            self.changed_all()
            while True:
                async for notify in conn.notifies(timeout=LISTEN_CHECK_S):
                    self.changed(notify.payload)
                await asyncio.wait_for(conn.execute("SELECT 1"), LISTEN_CHECK_S)

    async def read(self, job: Job[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        result: T = await self._run(functools.partial(job, **kwargs), args)
        return result

    async def write(self, job: Job[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        # Reads and writes run alike; every transaction commits with synchronous_commit on.
        result: T = await self._run(functools.partial(job, **kwargs), args)
        return result

    async def _run(self, fn: Any, args: tuple[Any, ...]) -> Any:
        if self._pool is None:
            raise StoreError("the store is not open")
        call = functools.partial(self._transaction, fn, args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def _transaction(self, fn: Any, args: tuple[Any, ...]) -> Any:
        if self._engine is None:
            raise StoreError("the store is not open")
        with wrap_exceptions():
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    with self._engine.begin() as conn:
                        return fn(conn, *args)
                except Exception as error:
                    if not retryable(error) or attempt == ATTEMPTS:
                        raise
                time.sleep(0.02 * attempt)
        raise AssertionError("unreachable")
