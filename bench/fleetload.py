"""The fleet benchmark's load generator: a lean HTTP/1.1 client and the phones' schedule.

httpx costs the generator about as much CPU per request as the server spends answering it,
which at 100,000 phones (~800 requests/s) would make the generator the bottleneck on a
shared machine. Here requests go out as prebuilt bytes over a pool of keep-alive
connections, and httptools (the C parser uvicorn uses) reads the answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import httptools

#: A request without an answer after this long counts as an error (the app's own timeout).
TIMEOUT_S = 30.0


class _Answer:
    """httptools callbacks collecting one response."""

    __slots__ = ("body", "done")

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.done = False

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class Connection:
    """One keep-alive connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, raw: bytes) -> tuple[int, bytes, bool]:
        """Send one request; return status, body and whether the connection stays open."""
        self.writer.write(raw)
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        while not answer.done:
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("closed by the server")
            parser.feed_data(data)
        return parser.get_status_code(), b"".join(answer.body), parser.should_keep_alive()

    def close(self) -> None:
        """Close the socket."""
        self.writer.close()


class Pool:
    """At most ``size`` connections to one server, reused while they stay open."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port = host, port
        self.idle: list[Connection] = []
        self.slots = asyncio.Semaphore(size)

    async def request(self, raw: bytes, timeout_s: float | None = TIMEOUT_S) -> tuple[int, bytes]:
        """Send a request; a reused connection the server closed meanwhile is replaced once."""
        async with self.slots:
            for attempt in range(2):
                reused = bool(self.idle) and attempt == 0
                conn = self.idle.pop() if reused else await self._open()
                try:
                    status, body, keep = await asyncio.wait_for(conn.exchange(raw), timeout_s)
                except TimeoutError:
                    conn.close()  # an OSError too, but not one to retry
                    raise
                except (ConnectionError, OSError) as exc:
                    conn.close()
                    if reused:
                        continue  # the server's keep-alive timeout closed it while idle
                    raise ConnectionError(str(exc)) from exc
                except BaseException:
                    conn.close()
                    raise
                if keep:
                    self.idle.append(conn)
                else:
                    conn.close()
                return status, body
        raise ConnectionError("unreachable")

    async def _open(self) -> Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return Connection(reader, writer)

    def close(self) -> None:
        """Close every idle connection."""
        for conn in self.idle:
            conn.close()
        self.idle.clear()


def get(path: str) -> bytes:
    """Return a GET request as bytes."""
    return f"GET {path} HTTP/1.1\r\nhost: fleet\r\nuser-agent: SMSSync-fleet\r\n\r\n".encode()


def post(path: str, body: bytes, content_type: str, extra: str = "") -> bytes:
    """Return a POST request as bytes."""
    head = (
        f"POST {path} HTTP/1.1\r\nhost: fleet\r\nuser-agent: SMSSync-fleet\r\n{extra}"
        f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclasses.dataclass(slots=True)
class Phone:
    """One registered phone: its Sync URL path, secret and own number."""

    path: str
    secret: str
    number: str


@dataclasses.dataclass(frozen=True)
class Timing:
    """The app's intervals, in seconds (divided by ``--time-scale`` for a compressed run)."""

    send_s: float = 300.0  # task=send (E4), and task=result (E6) half a cycle later
    inbound_s: float = 3600.0  # one incoming SMS per phone (E1)
    outbound_s: float = 3600.0  # one outgoing SMS per phone, queued through the API
    sending_s: float = 1.0  # between task=sent (E5) and the result (E7): the phone sends

    def scaled(self, factor: float) -> Timing:
        """Return the intervals divided by ``factor``."""
        return Timing(*(value / factor for value in dataclasses.astuple(self)))


@dataclasses.dataclass
class Tally:
    """What the phones saw: latency per exchange, errors, counts."""

    latency: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    errors: Counter[str] = dataclasses.field(default_factory=Counter)
    handed_out: int = 0
    lag_max_s: float = 0.0

    def record(self, kind: str, seconds: float) -> None:
        """Add one latency."""
        self.latency.setdefault(kind, []).append(seconds)


class Fleet:
    """Drive ``phones`` at ``timing`` for ``duration_s``, from random phases."""

    def __init__(
        self, pool: Pool, phones: list[Phone], api_key: str, timing: Timing, seed: int = 1
    ) -> None:
        self.pool = pool
        self.phones = phones
        self.api_auth = f"authorization: Bearer {api_key}\r\n"
        self.timing = timing
        self.random = random.Random(seed)
        self.tally = Tally()
        self.tasks: set[asyncio.Task[None]] = set()

    def intended_rates(self) -> dict[str, float]:
        """Requests per second the schedule asks for, per exchange."""
        n, t = len(self.phones), self.timing
        messages = n / t.outbound_s
        return {
            "E1": n / t.inbound_s,
            "API": messages,
            "E4": n / t.send_s,
            "E5": messages,  # at most: a poll that takes several messages confirms them once
            "E6": n / t.send_s,
            "E7": messages,
        }

    async def run(self, duration_s: float) -> Tally:
        """Send the schedule's requests for ``duration_s``; wait for the last answers."""
        t, n = self.timing, len(self.phones)
        rnd = self.random.random
        heap: list[tuple[float, int, str]] = []
        for i in range(n):
            first = rnd() * t.send_s
            heap.append((first, i, "E4"))
            heap.append(((first + t.send_s / 2) % t.send_s, i, "E6"))
            heap.append((rnd() * t.inbound_s, i, "E1"))
        heapq.heapify(heap)
        periods = {"E4": t.send_s, "E6": t.send_s, "E1": t.inbound_s}
        api_next = self.random.expovariate(n / t.outbound_s)
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            at, i, kind = heap[0]
            if api_next < at:
                at, i, kind = api_next, -1, "API"
                api_next += self.random.expovariate(n / t.outbound_s)
            else:
                heapq.heapreplace(heap, (at + periods[kind], i, kind))
            if at > duration_s:
                break
            delay = start + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                self.tally.lag_max_s = max(self.tally.lag_max_s, -delay)
            self._spawn(self._exchange(kind, i, start + at))
        while self.tasks:
            await asyncio.gather(*list(self.tasks))
        return self.tally

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _timed(
        self, kind: str, raw: bytes, scheduled: float, check: Callable[[bytes], Any] = json.loads
    ) -> Any:
        """Send one request; latency counts from when it was due, so a late generator or a
        full pool shows up instead of being hidden."""
        try:
            status, body = await self.pool.request(raw)
        except (TimeoutError, ConnectionError, OSError) as exc:
            self.tally.errors[f"{kind} {type(exc).__name__}"] += 1
            return None
        elapsed = asyncio.get_running_loop().time() - scheduled
        if not 200 <= status < 300:
            self.tally.errors[f"{kind} HTTP {status}"] += 1
            return None
        self.tally.record(kind, elapsed)
        return check(body)

    async def _exchange(self, kind: str, i: int, scheduled: float) -> None:
        if kind == "API":
            to = f"+2547{self.random.randrange(10**8):08d}"
            body = json.dumps({"to": [to], "body": "Your code is 4711"}).encode()
            raw = post("/api/v1/messages", body, "application/json", self.api_auth)
            await self._timed(kind, raw, scheduled)
            return
        phone = self.phones[i]
        if kind == "E1":
            form = (
                f"secret={phone.secret}&from=%2B254700000001&message=hello%20fleet"
                f"&message_id={uuid.uuid4()}&sent_timestamp={int(time.time() * 1000)}"
                f"&sent_to={phone.number}&device_id=fleet"
            ).encode()
            raw = post(phone.path, form, "application/x-www-form-urlencoded")
            await self._timed(kind, raw, scheduled)
        elif kind == "E6":
            await self._timed(
                kind, get(f"{phone.path}?task=result&secret={phone.secret}"), scheduled
            )
        else:
            await self._poll(phone, scheduled)

    async def _poll(self, phone: Phone, scheduled: float) -> None:
        reply = await self._timed(
            "E4", get(f"{phone.path}?task=send&secret={phone.secret}"), scheduled
        )
        messages = [m["uuid"] for m in (reply or {}).get("payload", {}).get("messages", [])]
        if not messages:
            return
        self.tally.handed_out += len(messages)
        loop = asyncio.get_running_loop()
        sent = json.dumps({"queued_messages": messages}).encode()
        # The app's task=sent carries no secret: its per-device URL names the phone.
        listed = await self._timed(
            "E5", post(f"{phone.path}?task=sent", sent, "application/json"), loop.time()
        )
        uuids = (listed or {}).get("message_uuids", [])
        if not uuids:
            return
        await asyncio.sleep(self.timing.sending_s)
        results = {
            "message_result": [
                {"uuid": u, "sent_result_code": -1, "delivered_result_code": -1} for u in uuids
            ]
        }
        raw = post(
            f"{phone.path}?task=result&secret={phone.secret}",
            json.dumps(results).encode(),
            "application/json",
        )
        await self._timed("E7", raw, loop.time())
