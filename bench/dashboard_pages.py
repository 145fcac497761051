"""Dashboard pages at 1,000 and 1,000,000 SMS: p50 and p95 latency per page, and the ratio.

Each store (SQLite, PostgreSQL) is filled with N incoming SMS (a third from 5,000 regular
senders, one busy sender with N/100, the rest from numbers seen once) and N/10 outgoing
ones, written straight into the tables and the conversations index as migrations 0010 and
0014 fill it; then each page is requested through the whole app in-process (httpx's ASGI transport,
signed in as an admin) ``--requests`` times after a warm-up, and its p95 printed beside the
same page at the other size. Every list is a keyset page over an index, so the ratio of
each should stay near 1, the text search's too since it reads a trigram index (0014).

    .venv/bin/python bench/dashboard_pages.py [--sizes 1000,1000000] [--store sqlite|postgres|both]
        [--requests 40]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path

import httpx
from sqlalchemy import Connection, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import log, machine_line, percentile, pg_database, table

from smssync.dashboard.passwords import hash_password
from smssync.records import Role
from smssync.server.app import create_app
from smssync.settings import Settings
from smssync.store import open_store, users
from smssync.store.engine import Database
from smssync.store.schema import devices, inbound, outbound

BUSY = "+254700000001"
BATCH = 5_000
T0 = 1_700_000_000_000_000


def _fill(conn: Connection, size: int) -> None:
    conn.execute(
        devices.insert().values(
            name="phone1",
            token_hash=b"bench",
            settings="{}",
            effective_mode="handoff",
            created_at=T0,
        )
    )
    device_id = conn.execute(devices.select()).one().id
    rng = random.Random(size)

    def sender(i: int) -> str:
        if i % 100 == 0:
            return BUSY
        if i % 3 == 0:
            return f"+2547111{i % 5000:05d}"
        return f"+2547{rng.randrange(10**8):08d}"

    rows: list[dict[str, object]] = []
    for i in range(size):
        number = sender(i)
        rows.append(
            {
                "device_id": device_id,
                "dedupe_key": str(i),
                "message_id": str(i),
                "from_raw": number,
                "from_addr": number,
                "to_addr": "",
                "sent_at": T0,
                "content": f"message {i} about the clinic",
                "received_at": T0 + i * 1000,
                "flags": "[]",
                "status": "received",
            }
        )
        if len(rows) == BATCH:
            conn.execute(inbound.insert(), rows)
            rows = []
    if rows:
        conn.execute(inbound.insert(), rows)
    out: list[dict[str, object]] = []
    for i in range(size // 10):
        number = sender(i * 10)
        out.append(
            {
                "uuid": f"00000000-0000-4000-8000-{i:012d}",
                "device_id": device_id,
                "pinned": False,
                "to_addr": number,
                "content": f"reply {i}",
                "segments": 1,
                "status": "delivered",
                "created_at": T0 + i * 10_000 + 500,
                "updated_at": T0 + i * 10_000 + 500,
                "result_listings": 0,
                "claim_rank": 0,
                "wire_id": f"10000000-0000-4000-8000-{i:012d}",
            }
        )
        if len(out) == BATCH:
            conn.execute(outbound.insert(), out)
            out = []
    if out:
        conn.execute(outbound.insert(), out)
    # The conversations index as migrations 0010 and 0014 build it from stored SMS (the
    # search index is kept by its triggers on SQLite, by the GIN indexes on PostgreSQL).
    versions = "smssync.store.migrations.versions."
    conn.execute(text(import_module(versions + "0010_users")._BACKFILL))
    import_module(versions + "0014_thread_search")._fill_threads(conn)
    conn.execute(text("ANALYZE"))  # the planners see the sizes, as after a day of use


@contextlib.contextmanager
def _location(kind: str) -> Iterator[str]:
    if kind == "postgres":
        with pg_database("smssync_bench_pages") as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/pages.db"


@contextlib.asynccontextmanager
async def _signed_in(store: Database) -> AsyncIterator[httpx.AsyncClient]:
    await users.add_user(
        store, "bench", Role.ADMIN, hash_password("bench password"), datetime.now(UTC)
    )
    app = create_app(Settings(), store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            form = await client.get("/dashboard/signin")
            token = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert token is not None
            signed = await client.post(
                "/dashboard/signin",
                data={"csrf": token[1], "name": "bench", "password": "bench password"},
            )
            assert signed.status_code == 303, signed.text
            yield client


async def _pages(client: httpx.AsyncClient) -> dict[str, str]:
    first = await client.get("/dashboard/conversations")
    older = re.search(r'rel="next" href="([^"]+)"', first.text)
    thread = await client.get(f"/dashboard/conversations/{BUSY}")
    cursors = dict(re.findall(r'data-after-(in|hist)="(\d+)"', thread.text))
    pages = {
        "conversations": "/dashboard/conversations",
        "conversations, page 2": older[1].replace("&amp;", "&") if older else "",
        "busy thread": f"/dashboard/conversations/{BUSY}",
        "thread's live feed": f"/dashboard/conversations/{BUSY}/changes"
        f"?after_in={cursors['in']}&after_hist={cursors['hist']}",
        "phones": "/dashboard/phones",
        "search": "/dashboard/conversations?q=clinic+42",
    }
    return {name: path for name, path in pages.items() if path}


async def measure(kind: str, size: int, requests: int) -> dict[str, tuple[float, float]]:
    """Fill a store of ``kind`` with ``size`` SMS; return each page's p50 and p95 in ms."""
    with _location(kind) as url:
        store = open_store(url)
        await store.open()
        try:
            started = time.perf_counter()
            await store.write(_fill, size)
            log(f"{kind}: {size:,} SMS stored in {time.perf_counter() - started:.0f} s")
            async with _signed_in(store) as client:
                found: dict[str, tuple[float, float]] = {}
                for name, path in (await _pages(client)).items():
                    rounds = requests if "search" not in name else max(20, requests // 2)
                    times = []
                    for n in range(rounds + 3):
                        begin = time.perf_counter()
                        reply = await client.get(path)
                        if n >= 3:
                            times.append((time.perf_counter() - begin) * 1000)
                        if reply.status_code != 200:
                            raise SystemExit(f"{path}: {reply.status_code} {reply.text[:200]}")
                    found[name] = (percentile(times, 50), percentile(times, 95))
                return found
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,1000000", help="two SMS counts, small,large")
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--requests", type=int, default=40, help="requests per page")
    args = parser.parse_args()
    small, large = (int(n) for n in args.sizes.split(","))
    kinds = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    print(machine_line())
    for kind in kinds:
        low = asyncio.run(measure(kind, small, args.requests))
        high = asyncio.run(measure(kind, large, args.requests))
        rows = [
            [
                page,
                *(f"{v:.1f}" for v in (low[page][0], high[page][0], low[page][1], high[page][1])),
                f"{high[page][1] / low[page][1]:.1f}×",
            ]
            for page in low
            if page in high
        ]
        print(f"\n{kind}: per page (ms), {small:,} vs {large:,} SMS; ratio of the p95s")
        headers = ["page", f"p50 {small:,}", f"p50 {large:,}", f"p95 {small:,}", f"p95 {large:,}"]
        print(table([*headers, "ratio"], rows))


if __name__ == "__main__":
    main()
