"""The gateway's SQLite file: one connection, one thread, batched durable commits.

One thread owns the one connection (WAL, ``synchronous=FULL``). Writes queue up and the thread
commits whatever has queued in one ``BEGIN IMMEDIATE`` transaction, so a draining backlog
pays one fsync per batch rather than per SMS, while each caller still resumes only after its
own change is durable. Opening brings a file of an older gateway to the current schema.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event

from smssync.errors import StoreError
from smssync.gateway import queries as q

T = TypeVar("T")


def _engine(path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.StaticPool)

    @event.listens_for(engine, "connect")
    def _connect(dbapi: sqlite3.Connection, record: Any) -> None:
        # Let SQLAlchemy's begin event, not the driver, decide when transactions start.
        dbapi.isolation_level = None
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=10000"):
            dbapi.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class StoreFile:
    """The plumbing under GatewayStore: open, upgrade, read, write, close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "gateway-store")
        self._engine: sa.Engine | None = None
        self._conn: sa.Connection | None = None
        self._queue: list[tuple[Callable[[sa.Connection], Any], asyncio.Future[Any]]] = []
        self._lock = threading.Lock()
        self._draining = False

    # -- plumbing ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the file and schema; settle sends a crash interrupted."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._open_sync)

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._engine = _engine(self.path)
        try:
            self._conn = self._engine.connect()
            with self._conn.begin():
                self._upgrade(self._conn)
                for statement in q.SCHEMA:
                    self._conn.exec_driver_sql(statement)
                self._conn.exec_driver_sql(f"PRAGMA user_version = {q.SCHEMA_VERSION}")
                self._conn.exec_driver_sql(q.RECOVER_TASKS)
                self._conn.exec_driver_sql(q.RECOVER_LOCAL_SENDS)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"{self.path}: {exc.orig if hasattr(exc, 'orig') else exc}") from None

    @staticmethod
    def _upgrade(conn: sa.Connection) -> None:
        """Bring a file made by an older gateway to the current schema, in the open's
        transaction (an interrupted upgrade leaves the old file as it was)."""
        version = int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)
        columns = {row[0] for row in conn.exec_driver_sql(q.TASKS_COLUMNS)}
        if version < 1 and columns and "inbound_id" not in columns:
            for statement in q.UPGRADE_1:
                conn.exec_driver_sql(statement)

    async def close(self) -> None:
        """Close the connection and the store thread."""

        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
            if self._engine is not None:
                self._engine.dispose()

        await asyncio.get_running_loop().run_in_executor(self._executor, _close)
        self._executor.shutdown(wait=True)

    async def _read(self, fn: Callable[[sa.Connection], T]) -> T:
        def run() -> T:
            if self._conn is None:
                raise StoreError("the store is not open")
            try:
                with self._conn.begin():
                    return fn(self._conn)
            except sa.exc.SQLAlchemyError as exc:
                raise StoreError(str(exc)) from None

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def _write(self, fn: Callable[[sa.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._queue.append((fn, future))
            start = not self._draining
            self._draining = True
        if start:
            loop.run_in_executor(self._executor, self._drain, loop)
        return await future

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._draining = False
                    return
            results = self._commit(batch)
            for (_, future), (ok, value) in zip(batch, results, strict=True):
                loop.call_soon_threadsafe(_settle, future, ok, value)

    def _commit(
        self, batch: list[tuple[Callable[[sa.Connection], Any], asyncio.Future[Any]]]
    ) -> list[tuple[bool, Any]]:
        if self._conn is None:
            return [(False, StoreError("the store is not open"))] * len(batch)
        try:
            with self._conn.begin():
                return [(True, fn(self._conn)) for fn, _ in batch]
        except Exception as exc:
            if len(batch) == 1:
                error = StoreError(str(exc)) if isinstance(exc, sa.exc.SQLAlchemyError) else exc
                return [(False, error)]
        # One bad change must not sink the others: commit them one by one.
        return [item for one in batch for item in self._commit([one])]


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
