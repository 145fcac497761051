"""Outbound dispatch: devices polling ``task=send`` and confirming with ``task=sent``.

Per store (SQLite, PostgreSQL or both), on one ``smssync serve --workers 2``:

1. **Throughput**: ``--messages`` unpinned messages are queued; ``--devices`` simulated phones
   (asyncio + httpx, one client and one device each, handshake mode) poll and confirm
   concurrently until the queue is empty. Reported: messages/s dispatched and confirmed, and a
   check that every message went to exactly one device and was confirmed.
2. **Latency versus queue depth**: the same devices poll and confirm in short rounds while the
   queue is kept near a target depth (topped up between rounds, never below half of it);
   reported: p50/p99 of the ``task=send`` round trip with 1k queued and with 1M queued (filled
   through ``store.enqueue`` in batches of 10k, as far as ``--fill-budget`` seconds allow; the
   depth reached is printed). The aim: p99 at 1M within 1.5x of p99 at 1k.

Pacing is raised for the benchmark (see PACING) through the store API, since the CLI caps
``--segments-per-minute``.

Run: ``.venv/bin/python bench/dispatch.py [--store sqlite|postgres|both] [--devices 4]
[--messages 5000]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from benchlib import (
    SmssyncServer,
    log,
    machine_line,
    percentile,
    pg_database,
    table,
    tail,
)

#: Segments per minute per device during the benchmark (the default, 30, would cap the run).
PACING = 100_000
BATCH_LIMIT = 20
SECRET = "bench-dispatch"
FILL_BATCH = 10_000


@dataclasses.dataclass
class Device:
    """One simulated phone."""

    name: str
    sync_url: str
    secret: str
    client: httpx.AsyncClient


@dataclasses.dataclass
class Tally:
    """What the simulated phones saw."""

    polled: list[str] = dataclasses.field(default_factory=list)
    confirmed: list[str] = dataclasses.field(default_factory=list)
    poll_latency: list[float] = dataclasses.field(default_factory=list)
    confirm_latency: list[float] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    polls: int = 0
    empty_polls: int = 0


async def poll_once(device: Device, tally: Tally, measure: bool = True) -> int:
    """One E4 poll and, when it handed out messages, one E5 confirmation. Return the count."""
    start = time.perf_counter()
    response = await device.client.get(
        device.sync_url, params={"task": "send", "secret": device.secret}
    )
    elapsed = time.perf_counter() - start
    tally.polls += 1
    if measure:
        tally.poll_latency.append(elapsed)
    if response.status_code != 200:
        tally.errors.append(f"task=send {response.status_code}: {response.text[:200]}")
        return 0
    payload = response.json().get("payload", {})
    uuids = [m["uuid"] for m in payload.get("messages", [])]
    if not uuids:
        tally.empty_polls += 1
        return 0
    tally.polled.extend(uuids)
    start = time.perf_counter()
    response = await device.client.post(
        device.sync_url,
        params={"task": "sent"},
        content=json.dumps({"queued_messages": uuids}, separators=(",", ":")).encode(),
        headers={"content-type": "application/json; charset=UTF-8"},
    )
    tally.confirm_latency.append(time.perf_counter() - start)
    if response.status_code != 200:
        tally.errors.append(f"task=sent {response.status_code}: {response.text[:200]}")
        return 0
    listed = response.json().get("message_uuids", [])
    if listed != uuids:
        tally.errors.append(f"task=sent listed {len(listed)} of {len(uuids)} uuids")
    tally.confirmed.extend(listed)
    return len(uuids)


async def drain(devices: list[Device], tally: Tally, expected: int, timeout: float) -> float:
    """Poll and confirm with every device until ``expected`` messages are confirmed."""
    deadline = time.monotonic() + timeout

    async def phone(device: Device) -> None:
        while len(tally.confirmed) < expected and time.monotonic() < deadline:
            got = await poll_once(device, tally)
            if got == 0:
                if tally.errors:
                    return
                await asyncio.sleep(0.01)

    start = time.perf_counter()
    await asyncio.gather(*(phone(d) for d in devices))
    return time.perf_counter() - start


async def rounds(devices: list[Device], tally: Tally, polls_per_device: int) -> float:
    """Each device polls and confirms ``polls_per_device`` times, concurrently."""

    async def phone(device: Device) -> None:
        for _ in range(polls_per_device):
            await poll_once(device, tally)

    start = time.perf_counter()
    await asyncio.gather(*(phone(d) for d in devices))
    return time.perf_counter() - start


def make_messages(count: int, now: datetime) -> list[Any]:
    """Build unpinned outbound messages to random Kenyan numbers."""
    from smssync.records import new_outbound

    rng = random.Random()
    return [
        new_outbound(f"+2547{rng.randrange(10**8):08d}", f"Bench message {i}", None, now)
        for i in range(count)
    ]


@dataclasses.dataclass
class LatencyResult:
    """Latency figures at one queue depth."""

    depth: int
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    confirm_p99_ms: float
    msgs_per_s: float
    errors: list[str]


@dataclasses.dataclass
class StoreResult:
    """Everything measured on one store."""

    store: str
    throughput: float = 0.0
    throughput_msgs: int = 0
    throughput_s: float = 0.0
    duplicates: int = 0
    unconfirmed: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    latency: list[LatencyResult] = dataclasses.field(default_factory=list)
    fill_rate: float = 0.0
    fill_target: int = 0
    log_problems: list[str] = dataclasses.field(default_factory=list)


class Bench:
    """The dispatch benchmark on one server."""

    def __init__(self, server: SmssyncServer, args: argparse.Namespace) -> None:
        self.server = server
        self.args = args
        self.store: Any = None
        self.devices: list[Device] = []
        #: Queued messages the bench believes are left (enqueued minus handed out).
        self.depth = 0

    async def open_store(self) -> None:
        from smssync.store import open_store

        self.store = open_store(self.server.store_url)
        await self.store.open()

    async def configure_devices(self, names: list[str]) -> None:
        """Raise pacing, set the batch limit and handshake mode through the store API."""
        from smssync.records import AckMode
        from smssync.store import devices

        for name in names:
            device = await devices.device_by_name(self.store, name)
            assert device is not None, name
            settings = dataclasses.replace(
                device.settings,
                segments_per_minute=PACING,
                batch_limit=BATCH_LIMIT,
                ack_mode=AckMode.HANDSHAKE,
            )
            await devices.update_device(self.store, name, settings=settings)

    async def enqueue(self, count: int) -> None:
        """Queue ``count`` unpinned messages in batches of FILL_BATCH."""
        from smssync.store import queue

        now = datetime.now(UTC)
        left = count
        while left > 0:
            batch = min(FILL_BATCH, left)
            await queue.enqueue(self.store, make_messages(batch, now))
            left -= batch
        self.depth += count

    async def fill_to(self, target: int, budget_s: float) -> tuple[int, float]:
        """Enqueue up to ``target`` queued, within a time budget; return (depth, msgs/s)."""
        start = time.perf_counter()
        added = 0
        while self.depth < target and time.perf_counter() - start < budget_s:
            batch = min(FILL_BATCH, target - self.depth)
            await self.enqueue(batch)
            added += batch
            if added % 100_000 == 0:
                rate = added / (time.perf_counter() - start)
                log(f"  filled {self.depth} ({rate:.0f} msgs/s)")
        elapsed = time.perf_counter() - start
        return self.depth, added / elapsed if elapsed else 0.0

    async def throughput(self, result: StoreResult) -> None:
        """Drain ``--messages`` with all devices; check each went out once, confirmed."""
        count = self.args.messages
        await self.enqueue(count)
        tally = Tally()
        elapsed = await drain(self.devices, tally, count, timeout=600)
        self.depth -= len(tally.polled)
        result.throughput_msgs = len(tally.confirmed)
        result.throughput_s = elapsed
        result.throughput = len(tally.confirmed) / elapsed if elapsed else 0.0
        result.duplicates = len(tally.polled) - len(set(tally.polled))
        result.unconfirmed = len(set(tally.polled) - set(tally.confirmed))
        result.errors.extend(tally.errors[:5])
        if len(tally.confirmed) < count:
            result.errors.append(f"only {len(tally.confirmed)} of {count} confirmed in time")

    async def latency_at(self, depth: int) -> LatencyResult:
        """Poll in rounds with the queue kept between depth/2 and depth."""
        per_round = max(1, depth // 2 // (len(self.devices) * BATCH_LIMIT))
        per_round = min(per_round, 25)
        n_rounds = max(1, -(-self.args.latency_polls // (per_round * len(self.devices))))
        tally = Tally()
        busy = 0.0
        for _ in range(n_rounds):
            if self.depth < depth:
                await self.enqueue(depth - self.depth)
            before = len(tally.polled)
            busy += await rounds(self.devices, tally, per_round)
            self.depth -= len(tally.polled) - before
            if tally.errors:
                break
        ms = [x * 1000 for x in tally.poll_latency]
        return LatencyResult(
            depth=depth,
            samples=len(ms),
            p50_ms=percentile(ms, 50),
            p99_ms=percentile(ms, 99),
            max_ms=max(ms) if ms else float("nan"),
            confirm_p99_ms=percentile([x * 1000 for x in tally.confirm_latency], 99),
            msgs_per_s=len(tally.confirmed) / busy if busy else 0.0,
            errors=tally.errors[:5],
        )

    async def run(self, names: list[str], infos: list[dict[str, Any]], store: str) -> StoreResult:
        result = StoreResult(store)
        await self.open_store()
        try:
            await self.configure_devices(names)
            self.server.start()
            limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
            async with contextlib.AsyncExitStack() as stack:
                for name, info in zip(names, infos, strict=True):
                    client = await stack.enter_async_context(
                        httpx.AsyncClient(
                            timeout=60,
                            limits=limits,
                            headers={"user-agent": "SMSSync-Android/v3.1.1"},
                        )
                    )
                    self.devices.append(Device(name, info["sync_url"], info["secret"], client))

                log(f"[{store}] throughput: {self.args.messages} messages")
                await self.throughput(result)
                log(f"[{store}]   {result.throughput:.0f} msgs/s")
                if result.errors:
                    return result

                small = self.args.small
                log(f"[{store}] latency with {small} queued")
                result.latency.append(await self.latency_at(small))

                large = self.args.large
                log(f"[{store}] filling the queue to {large} (budget {self.args.fill_budget}s)")
                reached, rate = await self.fill_to(large, self.args.fill_budget)
                result.fill_rate = rate
                result.fill_target = large
                log(f"[{store}] latency with {reached} queued")
                result.latency.append(await self.latency_at(reached))
        finally:
            self.server.stop()
            await self.store.close()
        result.log_problems = self.server.log_problems()
        return result


async def run_store(store: str, work: Path, args: argparse.Namespace) -> StoreResult:
    """Set up a fresh server on one store and run the benchmark on it."""
    folder = work / store
    folder.mkdir()
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(pg_database("smssync_bench")) if store == "postgres" else ""
        server = SmssyncServer(folder, url, workers=args.workers)
        stack.callback(server.stop)
        names = [f"phone{i + 1}" for i in range(args.devices)]
        # Secrets identify devices too, so each device gets its own.
        infos = [server.add_device(name, f"{SECRET}-{name}") for name in names]
        bench = Bench(server, args)
        result = await bench.run(names, infos, store)
        if result.errors or result.log_problems:
            log(f"[{store}] server log tail:\n{tail(server.logfile, 30)}")
        return result


def report(results: list[StoreResult], args: argparse.Namespace) -> bool:
    """Print the tables; return whether everything checked out."""
    print(f"\nDispatch: task=send + task=sent ({machine_line()})")
    print(
        f"{args.devices} devices (one httpx client each), handshake mode, batch limit"
        f" {BATCH_LIMIT}, pacing raised to {PACING} segments/min/device for the benchmark,"
        f" smssync serve --workers {args.workers}\n"
    )
    ok = True
    rows: list[list[object]] = []
    for r in results:
        rows.append(
            [
                r.store,
                r.throughput_msgs,
                f"{r.throughput_s:.2f}",
                f"{r.throughput:.0f}",
                r.duplicates,
                r.unconfirmed,
            ]
        )
    print(
        table(["store", "messages", "seconds", "msgs/s", "dispatched twice", "unconfirmed"], rows)
    )
    print()
    rows = []
    for r in results:
        for lat in r.latency:
            rows.append(
                [
                    r.store,
                    lat.depth,
                    lat.samples,
                    f"{lat.p50_ms:.1f}",
                    f"{lat.p99_ms:.1f}",
                    f"{lat.max_ms:.1f}",
                    f"{lat.confirm_p99_ms:.1f}",
                    f"{lat.msgs_per_s:.0f}",
                ]
            )
    print(
        table(
            [
                "store",
                "queued",
                "polls",
                "send p50 ms",
                "send p99 ms",
                "send max ms",
                "sent p99 ms",
                "msgs/s",
            ],
            rows,
        )
    )
    print()
    for r in results:
        if len(r.latency) == 2:
            small, large = r.latency
            ratio = large.p99_ms / small.p99_ms if small.p99_ms else float("nan")
            verdict = "within the 1.5x aim" if ratio <= 1.5 else "ABOVE the 1.5x aim"
            print(
                f"{r.store}: p99 task=send at {large.depth} queued / at {small.depth} queued"
                f" = {ratio:.2f}x  [{verdict}]"
            )
            if large.depth < r.fill_target:
                print(
                    f"{r.store}: NOTE the large queue reached only {large.depth} of"
                    f" {r.fill_target} within the {args.fill_budget}s fill budget"
                    f" (enqueue ran at {r.fill_rate:.0f} msgs/s)"
                )
            else:
                print(f"{r.store}: queue filled with store.enqueue at {r.fill_rate:.0f} msgs/s")
        errors = r.errors + [e for lat in r.latency for e in lat.errors]
        if errors or r.duplicates or r.unconfirmed:
            ok = False
            print(f"{r.store}: PROBLEMS: {'; '.join(errors) or 'see table'}")
        if r.log_problems:
            ok = False
            print(f"{r.store}: server log has {len(r.log_problems)} error lines, e.g.:")
            for line in r.log_problems[:5]:
                print("    " + line[:200])
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--messages", type=int, default=5000, help="throughput phase")
    parser.add_argument("--small", type=int, default=1000, help="small queue depth")
    parser.add_argument("--large", type=int, default=1_000_000, help="large queue depth")
    parser.add_argument("--fill-budget", type=float, default=180, help="seconds to fill large")
    parser.add_argument("--latency-polls", type=int, default=1000, help="polls per depth")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    args = parser.parse_args()
    if not 1 <= args.devices <= 64 or not 1 <= args.messages <= 1_000_000:
        parser.error("--devices must be 1..64 and --messages 1..1000000")
    if not 1 <= args.latency_polls <= 100_000 or args.small < 2 * BATCH_LIMIT:
        parser.error("--latency-polls must be 1..100000 and --small at least 40")
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    results = []
    with tempfile.TemporaryDirectory(prefix="smssync-bench-") as tmp:
        for store in stores:
            results.append(asyncio.run(run_store(store, Path(tmp), args)))
    return 0 if report(results, args) else 1


if __name__ == "__main__":
    sys.exit(main())
