"""The list pages' reads at 1,000 and at 1,000,000 SMS: p95 of each, and the ratio.

Each store (SQLite, PostgreSQL) is filled by bulk insert (sqlite3 ``executemany``,
PostgreSQL ``COPY``) with half incoming and half outgoing SMS over ``size / 10`` numbers,
one SMS a second, then each keyset read of the dashboard's list pages runs through the
store's verbs (``Database.read``, as the server calls them), a first page and a deep page,
``--runs`` times after a warm-up, the sizes in turn (one run at 1k, one at 1M, …) so that
a busy machine slows both alike. A page that costs the same at 1M as at 1k has a ratio near 1.

    .venv/bin/python bench/pages.py [--store sqlite|postgres|both] [--sizes 1000,1000000]
        [--runs 50] [--limit 50]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import log, machine_line, percentile, pg_conninfo, pg_database, table

from smssync.records import Credentials, DeviceSettings, ThreadCursor, ThreadFilter
from smssync.store import conversations, devices, inbox, messages, open_store, search, threads
from smssync.store.engine import Database

#: The first SMS's time (µs); one SMS a second after it.
T0_US = 1_900_000_000 * 1_000_000
INBOUND = (
    "id device_id dedupe_key message_id from_raw from_addr to_addr content sent_timestamp_raw"
    " sent_at device_label received_at flags status"
).split()
OUTBOUND = (
    "id uuid wire_id device_id pinned to_addr content segments status created_at updated_at"
    " result_listings claim_rank"
).split()
HISTORY = ["outbound_id", "at", "status"]
THREADS = (
    "number last_at last_inbound_id last_outbound_id number_reversed last_device_id unread"
).split()


def number(n: int) -> str:
    """The n-th distinct number."""
    return f"+2547{n:08d}"


#: The one SMS (incoming) of every store that says the rare word.
RARE_AT = 500


def content(i: int) -> str:
    """One SMS in five, of both directions, mentions the clinic: the text search's common
    word; one says "fever": its rare word."""
    if i == RARE_AT:
        return f"message {i}: fever since Monday"
    return f"message {i} about the clinic" if i % 5 == 0 else f"message {i}"


def rows(size: int, device_id: int, only: str) -> Iterator[tuple[Any, ...]]:
    """Yield the rows of one table for ``size`` SMS over ``size // 10`` numbers."""
    for name, row in _rows(size, device_id, only):
        if name == only:
            yield row


def _rows(size: int, device_id: int, only: str) -> Iterator[tuple[str, tuple[Any, ...]]]:
    people = max(size // 10, 1)
    if only == "threads":
        for n in range(people):
            # The number's SMS are n, n + people, ...: the last of each direction.
            last = n + people * ((size - 1 - n) // people)
            before = last - people
            in_id = last + 1 if last % 2 == 0 else (before + 1 if before >= 0 else None)
            out_id = last + 1 if last % 2 else (before + 1 if before >= 0 else None)
            at = T0_US + last * 1_000_000
            # One conversation in ten has two SMS nobody read yet.
            unread = 2 if n % 10 == 0 else 0
            yield "threads", (number(n), at, in_id, out_id, number(n)[::-1], device_id, unread)
        return
    for i in range(size):
        at = T0_US + i * 1_000_000
        address = number(i % people)
        if i % 2 == 0:
            yield (
                "inbound",
                (
                    i + 1, device_id, f"k{i}", f"k{i}", address, address, "+254700000000",
                    content(i), str(at // 1000), at, "bench", at, "[]", "received",
                ),
            )  # fmt: skip
        else:
            message_id = str(uuid.uuid4()) if only == "outbound" else ""
            yield (
                "outbound",
                (
                    i + 1, message_id, message_id, device_id, False, address, content(i), 1,
                    "delivered", at, at, 0, 0,
                ),
            )  # fmt: skip
            yield "outbound_history", (i + 1, at, "queued")


COLUMNS = {
    "inbound": INBOUND,
    "outbound": OUTBOUND,
    "outbound_history": HISTORY,
    "threads": THREADS,
}


def fill_sqlite(url: str, size: int, device_id: int) -> None:
    """Insert the rows with sqlite3 in one transaction."""
    conn = sqlite3.connect(url)
    conn.execute("PRAGMA synchronous=OFF")
    batches: dict[str, list[tuple[Any, ...]]] = {name: [] for name in COLUMNS}

    def flush(name: str) -> None:
        cols = COLUMNS[name]
        marks = ", ".join("?" for _ in cols)
        conn.executemany(f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({marks})", batches[name])
        batches[name].clear()

    with conn:
        for name in COLUMNS:
            for row in rows(size, device_id, name):
                batches[name].append(row)
                if len(batches[name]) >= 10_000:
                    flush(name)
            flush(name)
    conn.execute("ANALYZE")
    conn.close()


def fill_postgres(url: str, size: int, device_id: int) -> None:
    """Insert the rows with COPY (the text search's GIN indexes built after, as a bulk
    load does), then ANALYZE."""
    import psycopg

    dbname = url.rsplit("/", 1)[1]
    with psycopg.connect(pg_conninfo(dbname)) as conn:
        with conn.cursor() as cur:
            for name in ("inbound", "outbound"):
                cur.execute(f"DROP INDEX ix_{name}_content_trgm")
            for name in COLUMNS:
                columns = ", ".join(COLUMNS[name])
                with cur.copy(f"COPY {name} ({columns}) FROM STDIN") as copy:
                    for row in rows(size, device_id, name):
                        copy.write_row(row)
            for name in ("inbound", "outbound"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT max(id) FROM {name}))"
                )
                cur.execute(
                    f"CREATE INDEX ix_{name}_content_trgm ON {name} "
                    "USING gin (content gin_trgm_ops)"
                )
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")


Read = Callable[[Database], Awaitable[Any]]


def reads(size: int, limit: int, device_id: int) -> dict[str, Read]:
    """The reads timed, by name: first pages and pages deep in the store."""
    people = max(size // 10, 1)
    # Deep: 90 % of the way back, in ids and in time.
    deep_id = size // 10
    deep = size - people + people // 10
    deep_at = T0_US + deep * 1_000_000
    busy = number(people // 2)
    phone = ThreadFilter(device_id=device_id)
    return {
        "outgoing, first page": lambda db: messages.outbound_newest(db, None, limit),
        "outgoing, deep page": lambda db: messages.outbound_newest(db, deep_id, limit),
        "incoming, first page": lambda db: inbox.inbound_newest(db, None, limit),
        "incoming, deep page": lambda db: inbox.inbound_newest(db, deep_id, limit),
        "conversations, first page": lambda db: conversations.threads(db, limit=limit),
        "conversations, deep page": lambda db: conversations.threads(
            db, before=ThreadCursor(deep_at, number(deep % people)), limit=limit
        ),
        "conversations of one phone": lambda db: conversations.threads(db, only=phone, limit=limit),
        "unread total (1 thread in 10)": threads.total_unread,
        "one thread, first page": lambda db: conversations.thread(db, busy, limit=limit),
        "search text (1 SMS in 5)": lambda db: search.search_text(db, "clinic", limit=limit),
        "search text, deep page": lambda db: search.search_text(
            db, "clinic", before_inbound=deep_id, before_outbound=deep_id, limit=limit
        ),
        "search text (1 SMS)": lambda db: search.search_text(db, "fever", limit=limit),
        "search number, first digits": lambda db: search.search_numbers(db, "2547000", limit=limit),
        "search number, last digits": lambda db: search.search_numbers(db, "0042", limit=limit),
    }


async def filled(url: str, size: int, fill: Callable[..., None]) -> tuple[Database, int]:
    """Open a store at ``url``, fill it with ``size`` SMS; return it open, and its phone."""
    store = open_store(url)
    await store.open()
    creds = Credentials(b"bench-token-" + str(size).encode(), None, None, None)
    device = await devices.add_device(store, "bench", creds, DeviceSettings(), datetime.now(UTC))
    started = time.perf_counter()
    await asyncio.to_thread(fill, url, size, device.id)
    log(f"filled {size:,} SMS in {time.perf_counter() - started:.1f} s")
    return store, device.id


async def timed(read: Read, store: Database) -> float:
    """Run one read; return its time in ms."""
    began = time.perf_counter()
    await read(store)
    return (time.perf_counter() - began) * 1000


async def run_store(kind: str, sizes: list[int], runs: int, limit: int) -> list[list[object]]:
    """Fill one store per size, then time each read on all of them in turn, run after run,
    so that the load of a shared machine falls on every size alike; return the table."""
    with contextlib.ExitStack() as stack:
        stores: dict[int, Database] = {}
        phones: dict[int, int] = {}
        try:
            for size in sizes:
                if kind == "sqlite":
                    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="pages-"))
                    url, fill = str(Path(folder) / "smssync.db"), fill_sqlite
                else:
                    url, fill = stack.enter_context(pg_database("bench_pages")), fill_postgres
                log(f"{kind}: {size:,} SMS")
                stores[size], phones[size] = await filled(url, size, fill)
            names = list(reads(sizes[0], limit, phones[sizes[0]]))
            times: dict[tuple[int, str], list[float]] = {}
            for name in names:
                for size, store in stores.items():
                    for _ in range(5):
                        await reads(size, limit, phones[size])[name](store)
                for _ in range(runs):
                    for size, store in stores.items():
                        read = reads(size, limit, phones[size])[name]
                        times.setdefault((size, name), []).append(await timed(read, store))
        finally:
            for store in stores.values():
                await store.close()
    small, large = min(sizes), max(sizes)

    def p(size: int, name: str, q: float) -> float:
        return percentile(times[size, name], q)

    return [
        [
            kind,
            name,
            f"{p(small, name, 50):.2f}",
            f"{p(large, name, 50):.2f}",
            f"{p(small, name, 95):.2f}",
            f"{p(large, name, 95):.2f}",
            f"{p(large, name, 95) / p(small, name, 95):.2f}×",
        ]
        for name in names
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sizes", default="1000,1000000")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    table_rows: list[list[object]] = []
    for kind in kinds:
        table_rows += asyncio.run(run_store(kind, sizes, args.runs, args.limit))
    small, large = f"{min(sizes):,}", f"{max(sizes):,}"
    print(machine_line())
    print(f"ms over {args.runs} runs, pages of {args.limit}; ratio of the p95s")
    headers = ["store", "read", f"p50 @{small}", f"p50 @{large}", f"p95 @{small}"]
    print(table([*headers, f"p95 @{large}", "ratio"], table_rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
