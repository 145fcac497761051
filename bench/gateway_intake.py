"""Take in an SMS flood while the Sync URL is down; print how long the gateway took.

Usage: .venv/bin/python bench/gateway_intake.py [--count 10000] [--first-delay 0.5]

The simulated network (in-process) receives ``--count`` SMS for the gateway's phone as fast
as it can; the Sync URL is a local port nothing listens on, so every upload is refused. The
gateway's intake is done when every SMS is stored (and so acknowledged to the phone); the
figure to watch is how far it trails the network. Upload attempts made meanwhile are printed
too: each one is a refused connection and a failure written to the store.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import time
from pathlib import Path

from smssync.gateway.config import parse_config
from smssync.gateway.runner import Gateway
from smssync.gateway.store import GatewayStore
from smssync.sim.backend import SimBackend
from smssync.sim.network import SimNetwork

GATEWAY_NUMBER = "+254700000100"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def intake(folder: Path, count: int, first_delay_s: float) -> dict[str, float]:
    cfg = parse_config(
        f"""
store = "{folder / "gw.db"}"
[device]
own_number = "{GATEWAY_NUMBER}"
[forward]
first_delay_s = {first_delay_s}
cap_s = {first_delay_s * 4}
[tasks]
enabled = false
[[sync_urls]]
title = "down"
url = "http://127.0.0.1:{closed_port()}/smssync"
""",
        "bench.toml",
    )
    net = SimNetwork(seed=1)
    store = GatewayStore(Path(cfg.store))
    await store.open()
    gateway = Gateway(cfg, SimBackend(net, GATEWAY_NUMBER, poll_s=0.05), store)
    stop = asyncio.Event()
    runner = asyncio.create_task(gateway.run(stop))
    start = time.perf_counter()
    for i in range(count):
        await net.deliver(f"+2547110{i % 100000:05d}", GATEWAY_NUMBER, f"flood {i}")
        if i % 100 == 0:
            await asyncio.sleep(0)  # the radio does not hold the CPU for itself
    network_s = time.perf_counter() - start
    while gateway.progress.received < count:
        await asyncio.sleep(0.05)
    gateway_s = time.perf_counter() - start
    attempts = gateway.progress.failed_attempts
    stop.set()
    await runner
    await store.close()
    return {"network_s": network_s, "gateway_s": gateway_s, "attempts": attempts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--first-delay", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        figures = asyncio.run(intake(Path(folder), args.count, args.first_delay))
    print(
        f"{args.count} SMS: network {figures['network_s']:.1f} s, gateway stored all after "
        f"{figures['gateway_s']:.1f} s, {int(figures['attempts'])} upload attempts meanwhile",
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
