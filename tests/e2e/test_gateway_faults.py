"""N SMS in, exactly N stored: a fault-injecting proxy, and ``kill -9`` of server and gateway.

The proxy sits between gateway and server and, per request, drops the connection before or
after forwarding, answers 503 itself, truncates the reply, or delays it. Meanwhile the server
and then the gateway are killed with SIGKILL and restarted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import random
import threading
import time
from pathlib import Path

import httpx
import pytest

from smssync.protocol import body as wire_body
from tests.e2e.serverproc import Server, free_port
from tests.e2e.test_gateway_e2e import GatewayProc, SimProc, gateway_toml, wait_for

N = 300
#: What the proxy can do to a request.
KINDS = ("before", "after", "503", "truncate", "delay")


@dataclasses.dataclass
class FaultCounts:
    """What the proxy did."""

    requests: int = 0
    dropped_before: int = 0
    dropped_after: int = 0
    errors_503: int = 0
    truncated: int = 0
    delayed: int = 0
    #: message_id → E1 POSTs whose 200 reached the gateway intact.
    confirmed: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    #: E1 POSTs sent after the gateway had received a confirmation for that message_id.
    after_confirmed: int = 0
    #: "kind task" → faults, e.g. "after sent": a ``task=sent`` reply lost after forwarding.
    by_task: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


class FaultProxy:
    """An HTTP/1.1 proxy with faults, in its own thread and event loop."""

    def __init__(
        self,
        upstream: str,
        seed: int = 7,
        rate: float = 0.35,
        kinds: tuple[str, ...] = KINDS,
        lose_every_sent: int = 0,
    ) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.rate = rate
        self.kinds = list(kinds)
        #: Also drop, after forwarding, the reply of every Nth ``task=sent`` (0: none), so
        #: that a run loses acknowledgements whatever the random faults hit.
        self.lose_every_sent = lose_every_sent
        self._sent_seen = 0
        self.random = random.Random(seed)
        self.counts = FaultCounts()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> None:
        """Listen on 127.0.0.1:port."""
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(10)

    async def _start(self) -> None:
        self._client = httpx.AsyncClient(base_url=self.upstream, timeout=30)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def stop(self) -> None:
        """Stop listening and end the thread."""

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            # Finish the connections still open: a handler left pending would be destroyed
            # with the loop and surface as an error in whichever test runs next.
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await self._client.aclose()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            lowered = {k.lower(): v for k, v in headers.items()}
            length = int(lowered.get("content-length", "0"))
            content = await reader.readexactly(length) if length else b""
            await self._answer(method, target, lowered, content, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        except asyncio.CancelledError:
            # stop() ends the connections still open; asyncio's stream callback would log a
            # cancelled handler as an error.
            pass
        finally:
            with contextlib.suppress(ConnectionError, RuntimeError):
                writer.close()

    async def _answer(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        content: bytes,
        writer: asyncio.StreamWriter,
    ) -> None:
        counts = self.counts
        counts.requests += 1
        message_id = None
        if method == "POST" and "?" not in target:
            with contextlib.suppress(Exception):
                message_id = wire_body.parse_fields(content, headers.get("content-type")).get(
                    "message_id"
                )
        if message_id and counts.confirmed[message_id]:
            counts.after_confirmed += 1
        roll = self.random.random()
        fault = roll < self.rate
        kind = self.random.choice(self.kinds)
        task = target.partition("task=")[2].partition("&")[0] or method.lower()
        if task == "sent" and self.lose_every_sent:
            self._sent_seen += 1
            if self._sent_seen % self.lose_every_sent == 0:
                fault, kind = True, "after"
        if fault:
            counts.by_task[f"{kind} {task}"] += 1
        if fault and kind == "before":
            counts.dropped_before += 1
            return
        if fault and kind == "503":
            counts.errors_503 += 1
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        if fault and kind == "delay":
            counts.delayed += 1
            await asyncio.sleep(self.random.uniform(0.05, 0.5))
        send_headers = {
            k: v for k, v in headers.items() if k in ("content-type", "authorization", "user-agent")
        }
        try:
            reply = await self._client.request(
                method, target, content=content, headers=send_headers
            )
        except httpx.HTTPError:
            return  # the server is down (killed): the gateway sees a dropped connection
        if fault and kind == "after":
            counts.dropped_after += 1
            return
        payload = reply.content
        head = (
            f"HTTP/1.1 {reply.status_code} X\r\nContent-Type: "
            f"{reply.headers.get('content-type', 'application/json')}\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        ).encode()
        if fault and kind == "truncate":
            counts.truncated += 1
            writer.write(head + payload[: len(payload) // 2])
            await writer.drain()
            return
        writer.write(head + payload)
        await writer.drain()
        if message_id and reply.status_code == 200 and b'"success":true' in payload:
            counts.confirmed[message_id] += 1


# Above the default bound: under pytest-xdist it shares the machine with another worker.
@pytest.mark.timeout(300)
def test_n_in_n_stored_through_faults_and_kill_9(tmp_path: Path) -> None:
    server = Server(tmp_path)
    device = server.add_device("gw", "--secret", "fault")
    server.start()
    sim = SimProc(tmp_path)
    sim.start()
    proxy = FaultProxy(server.base)
    proxy.start()
    path = httpx.URL(device["sync_url"]).path
    config = gateway_toml(tmp_path, sim, f"http://127.0.0.1:{proxy.port}{path}", "fault")
    gateway = GatewayProc(config)
    gateway.start()
    queued = []
    try:
        for i in range(N):
            sim.sms(f"fault {i:04d}")
            if i % 30 == 0:
                queued.append(server.cli_json("send", "--to", "+254722000002", f"task {i}"))
            if i == N // 3:
                server.kill()
                time.sleep(1.0)
                server.start()
            if i == 2 * N // 3:
                gateway.kill()
                gateway.start()

        def stored() -> list[str]:
            return [r["body"] for r in server.cli_json("messages", "--limit", "100000")]

        wait_for(lambda: len(set(stored())) >= N, 120, f"{N} SMS on the server")
        time.sleep(2.0)
        bodies = stored()
        status = gateway.status()
        sent_tasks = [r["text"] for r in sim.outbox() if r["text"].startswith("task ")]
    finally:
        gateway.stop()
        proxy.stop()
        sim.stop()
        server.stop()
    duplicates = len(bodies) - len(set(bodies))
    lost = N - len(set(bodies))
    counts = proxy.counts
    print(
        f"\nfault test: sent {N}, stored {len(set(bodies))}, duplicated {duplicates}, "
        f"lost {lost}; proxy: {counts.requests} requests, {counts.dropped_before} dropped "
        f"before, {counts.dropped_after} dropped after, {counts.errors_503} 503, "
        f"{counts.truncated} truncated, {counts.delayed} delayed; uploads after a confirmed "
        f"success: {counts.after_confirmed}; tasks queued {len(queued)}, sent "
        f"{len(sent_tasks)} ({len(set(sent_tasks))} distinct)"
    )
    assert lost == 0
    assert duplicates == 0
    assert status[0]["pending"] == 0 and status[0]["forwarded"] == N
    # A confirmation can only be "lost" if the gateway dies between the server's reply and its
    # own commit: at most the uploads in flight when it was killed (concurrency 8), and the
    # server deduplicates them (duplicates == 0 above).
    assert counts.after_confirmed <= 8
    assert counts.dropped_before and counts.dropped_after and counts.truncated
    # A task SMS is never sent twice, whatever was lost on the way.
    assert len(sent_tasks) == len(set(sent_tasks))
