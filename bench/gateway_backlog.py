"""Drain a 10,000-SMS gateway backlog into ``smssync serve`` on this machine; print the time.

Usage: .venv/bin/python bench/gateway_backlog.py [--count 10000] [--concurrency 16]

The backlog is built as an outage leaves it: every SMS stored in the gateway's SQLite and
pending for the Sync URL. The clock starts when the gateway starts and stops when the last
pair is confirmed; the server's count is checked afterwards (nothing lost, nothing twice).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from smssync.gateway.config import parse_config
from smssync.gateway.records import InboundRecord
from smssync.gateway.runner import Gateway
from smssync.gateway.store import GatewayStore
from smssync.sim.backend import SimBackend
from smssync.sim.network import SimNetwork

SMSSYNC = [sys.executable, "-m", "smssync"]


def start_server(
    folder: Path, port: int, workers: int
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    env = {
        **os.environ,
        "SMSSYNC_DATA_DIR": str(folder / "server"),
        "SMSSYNC_PORT": str(port),
        "SMSSYNC_WORKERS": str(workers),
    }
    env.pop("SMSSYNC_DATABASE_URL", None)
    added = subprocess.run(
        [*SMSSYNC, "device", "add", "bench", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(added.stdout)
    log = (folder / "server.log").open("ab")
    proc = subprocess.Popen([*SMSSYNC, "serve"], env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/smssync", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    return proc, {**info, "env": json.dumps(env)}


async def fill(store: GatewayStore, count: int) -> None:
    now = time.time()

    async def one(i: int) -> None:
        record = InboundRecord(
            natural_key=f"bench-{i}",
            message_id=str(uuid.uuid4()),
            from_addr=f"+2547{i:08d}",
            content=f"backlog message {i}",
            sent_timestamp=str(int(now * 1000)),
            received_at=now,
        )
        await store.record_inbound(record, {"bench": "pending"})

    for start in range(0, count, 500):
        await asyncio.gather(*(one(i) for i in range(start, min(start + 500, count))))


async def drain(folder: Path, sync_url: str, secret: str, count: int, concurrency: int) -> float:
    config = parse_config(
        f"""
store = "{folder / "gateway.db"}"
[device]
device_id = "bench"
[forward]
concurrency = {concurrency}
[tasks]
interval_s = 3600
[[sync_urls]]
title = "bench"
url = "{sync_url}"
secret = {json.dumps(secret)}
"""
    )
    store = GatewayStore(Path(config.store))
    await store.open()
    await fill(store, count)
    assert await store.pending_count() == count
    gateway = Gateway(config, SimBackend(SimNetwork(), "+254700000100"), store)
    stop = asyncio.Event()
    started = time.monotonic()
    runner = asyncio.create_task(gateway.run(stop))
    last = -1
    while (pending := await store.pending_count()) > 0:
        if pending != last:
            print(f"  {time.monotonic() - started:5.1f} s: {pending} pending", flush=True)
            last = pending
        await asyncio.sleep(1.0)
    elapsed = time.monotonic() - started
    stop.set()
    await runner
    await store.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="smssync serve processes")
    parser.add_argument("--port", type=int, default=18765)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smssync-bench-") as tmp:
        folder = Path(tmp)
        server, info = start_server(folder, args.port, args.workers)
        try:
            elapsed = asyncio.run(
                drain(folder, info["sync_url"], info["secret"] or "", args.count, args.concurrency)
            )
            env = json.loads(info["env"])
            listed = subprocess.run(
                [*SMSSYNC, "messages", "--limit", str(args.count * 2), "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            rows = json.loads(listed.stdout)
        finally:
            server.terminate()
            server.wait(10)
    ids = [r["message_id"] for r in rows]
    print(
        f"gateway backlog: {args.count} SMS drained into smssync serve in {elapsed:.1f} s "
        f"({args.count / elapsed:.0f}/s, concurrency {args.concurrency}, "
        f"{args.workers} server worker(s)); server stored {len(set(ids))}, "
        f"duplicates {len(ids) - len(set(ids))}"
    )
    return 0 if len(set(ids)) == args.count and elapsed <= 30 else 1


if __name__ == "__main__":
    sys.exit(main())
