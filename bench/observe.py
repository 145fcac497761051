"""What the request id and the metrics add to every request: ``Observe`` around a bare app.

In-process, no HTTP: the same E1-shaped ASGI call, alone and inside ``server.observe.Observe``,
in paired rounds (best of ``--rounds``, so that the machine's other work counts least), with
prometheus-client keeping its values in memory (one process) and in the workers' files
(``serve --workers N``: a child process started with ``PROMETHEUS_MULTIPROC_DIR``, which
prometheus-client reads when first imported). A phone's request costs some milliseconds of
server CPU (README, "How many phones per server?"): the added cost is to stay a small part.

Run: ``.venv/bin/python bench/observe.py [--calls 30000] [--rounds 8]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

HEADERS = [
    (b"host", b"sms.example.org"),
    (b"user-agent", b"SMSSync-Android/v3.1.1"),
    (b"content-type", b"application/x-www-form-urlencoded"),
    (b"content-length", b"200"),
]


async def bare(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})
    await send({"type": "http.response.body", "body": b'{"payload":{"success":true}}'})


async def sink(message: Any) -> None:
    return None


async def nothing() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def per_call_us(app: Any, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        scope = {"type": "http", "method": "POST", "path": "/smssync/d/t", "query_string": b""}
        scope["headers"] = HEADERS
        await app(scope, nothing, sink)
    return (time.perf_counter() - started) / calls * 1e6


async def measure(calls: int, rounds: int) -> tuple[float, float]:
    from smssync.server.observe import Observe
    from smssync.settings import Settings

    observed = Observe(bare, Settings())
    alone, inside = [], []
    for _ in range(rounds):
        alone.append(await per_call_us(bare, calls))
        inside.append(await per_call_us(observed, calls))
    return min(alone), min(inside)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=30000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    alone, inside = asyncio.run(measure(args.calls, args.rounds))
    mode = "workers' files" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else "in memory"
    print(
        f"{mode:15} bare {alone:6.2f} µs  observed {inside:6.2f} µs  added {inside - alone:6.2f} µs"
    )
    if args.child:
        return
    with tempfile.TemporaryDirectory(prefix="smssync-bench-metrics-") as folder:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
        command = [sys.executable, __file__, "--child", f"--calls={args.calls}"]
        subprocess.run([*command, f"--rounds={args.rounds}"], env=env, check=True)


if __name__ == "__main__":
    main()
