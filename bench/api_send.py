"""API send throughput: messages/s accepted by ``POST /api/v1/messages``, single vs bulk.

**Single**: concurrent clients each POST one recipient per request. **Bulk**: requests of
``--bulk`` recipients each. Both against a real ``smssync serve`` (SQLite or PostgreSQL); the
ratio bulk/single is printed. Afterwards the stored message count must equal what was
accepted, or the run fails.

    .venv/bin/python bench/api_send.py [--store sqlite|postgres|both] [--single 2000]
        [--bulk 1000] [--bulk-requests 10] [--concurrency 16] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    SmssyncServer,
    log,
    machine_line,
    pg_database,
    table,
)


def numbers(start: int, count: int) -> list[str]:
    """Return distinct Kenyan mobile numbers."""
    return [f"+2547{(start + i) % 100_000_000:08d}" for i in range(count)]


async def run_single(base: str, key: str, total: int, concurrency: int) -> float:
    """POST ``total`` one-recipient requests over ``concurrency`` clients; return msg/s."""
    headers = {"authorization": f"Bearer {key}"}
    queue = iter(numbers(0, total))
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:

        async def worker() -> int:
            done = 0
            for number in queue:
                reply = await client.post(
                    "/api/v1/messages", json={"to": number, "body": "bench single"}
                )
                if reply.status_code != 201:
                    raise RuntimeError(f"single send failed: {reply.status_code} {reply.text}")
                done += 1
            return done

        started = time.perf_counter()
        sent = sum(await asyncio.gather(*(worker() for _ in range(concurrency))))
        return sent / (time.perf_counter() - started)


async def run_bulk(base: str, key: str, size: int, requests: int, concurrency: int) -> float:
    """POST ``requests`` bulk requests of ``size`` recipients; return msg/s."""
    headers = {"authorization": f"Bearer {key}"}
    batches = iter(range(requests))
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:

        async def worker() -> int:
            done = 0
            for batch in batches:
                body = {"to": numbers(10_000_000 + batch * size, size), "body": "bench bulk"}
                reply = await client.post("/api/v1/messages", json=body)
                if reply.status_code != 201 or len(reply.json()["messages"]) != size:
                    raise RuntimeError(f"bulk send failed: {reply.status_code} {reply.text}")
                done += size
            return done

        started = time.perf_counter()
        sent = sum(await asyncio.gather(*(worker() for _ in range(min(concurrency, 4)))))
        return sent / (time.perf_counter() - started)


def measure(args: argparse.Namespace, store: str) -> tuple[float, float]:
    """Run both modes against one fresh server; check the stored count."""
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="smssync-bench-api-"))
        url = stack.enter_context(pg_database("bench_api")) if store == "postgres" else ""
        server = SmssyncServer(Path(tmp), url, workers=args.workers)
        key = json.loads(server.cli("apikey", "create", "--scope", "send", "--json"))["key"]
        server.start()
        stack.callback(server.stop)
        log(f"{store}: single, {args.single} requests, {args.concurrency} clients")
        single = asyncio.run(run_single(server.base, key, args.single, args.concurrency))
        log(f"{store}: bulk, {args.bulk_requests} x {args.bulk} recipients")
        bulk = asyncio.run(
            run_bulk(server.base, key, args.bulk, args.bulk_requests, args.concurrency)
        )
        listing = server.cli("messages", "--direction", "out", "--limit", "100000", "--json")
        expected = args.single + args.bulk * args.bulk_requests
        if len(json.loads(listing)) != expected:
            raise RuntimeError(f"stored {len(json.loads(listing))} messages, accepted {expected}")
        problems = server.log_problems()
        if problems:
            raise RuntimeError("server log has errors:\n" + "\n".join(problems[:10]))
    return single, bulk


def main() -> int:
    """Parse options, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--single", type=int, default=2000)
    parser.add_argument("--bulk", type=int, default=1000)
    parser.add_argument("--bulk-requests", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    rows = []
    try:
        for store in stores:
            single, bulk = measure(args, store)
            rows.append([store, f"{single:,.0f}", f"{bulk:,.0f}", f"{bulk / single:.1f}x"])
    except RuntimeError as exc:
        log(f"FAILED: {exc}")
        return 1
    print(machine_line())
    print(
        f"POST /api/v1/messages, {args.workers} workers: single = 1 recipient/request "
        f"({args.concurrency} clients), bulk = {args.bulk} recipients/request"
    )
    print(table(["store", "single msg/s", "bulk msg/s", "bulk/single"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
