"""uvicorn's httptools protocol, sending each response in one write.

uvicorn writes a response's status line and headers as soon as the application sends
``http.response.start``, and the body on ``http.response.body``: two ``send`` syscalls and two
TCP segments for every answer to a phone, and two wake-ups of the client. Measured under wrk
(``bench/ingest.py``), that second write cost the server about 10% of its requests per second.
Here writes are held until the response is complete, and sent then in one write; what a
response that is not complete yet (a stream) wrote is sent at the end of the event loop's
turn, before the loop waits for I/O again. Anything that ends the connection (close, the
client's EOF) sends what is held first, so no byte waits longer than the code running already.

It also bounds what a client may make the server hold before the application sees a
request, which uvicorn's httptools protocol does not: the request line and headers
(``max_header_bytes``, ``max_headers``: 431) and the time from a request's first byte, or the
connection's, to its last (``request_timeout_s``: 408). A refused client is answered, its
further bytes read and dropped for a moment, then closed: closing with bytes unread would
reset the connection and lose the answer.

``smssync serve`` passes this class to uvicorn as its ``http`` protocol.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from smssync.protocol import replies
from smssync.server.api.app import API_PREFIX, error_body
from smssync.settings import Settings

#: How long a refused client's further bytes are read and dropped before the close.
LINGER_S = 2.0


class CoalescingTransport:
    """A transport whose writes of one event-loop turn reach the socket as one write.

    Everything but the writes, ``close`` and ``get_write_buffer_size`` is the wrapped
    transport's own, so flow control (pause and resume) and ``get_extra_info`` work unchanged;
    ``abort`` drops what is held, as it drops the wrapped transport's buffer.
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data``; the first write of a turn schedules the flush at its end."""
        if self._pending is None:
            self._pending = [bytes(data)]
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        """Queue each chunk, as ``write`` does."""
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        """Hand what was written so far to the socket, in one write."""
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def write_eof(self) -> None:
        """Flush, then half-close."""
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        """Flush, then close: a response followed by ``connection: close`` is not lost."""
        try:
            self.flush()
        finally:
            self._transport.close()

    def is_closing(self) -> bool:
        """The wrapped transport's own answer (asked after every response: spelled out, as
        ``__getattr__`` is reached only after a failed lookup has built an AttributeError)."""
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        """Bytes not yet sent, here and in the wrapped transport."""
        pending = sum(map(len, self._pending)) if self._pending else 0
        return pending + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


@dataclasses.dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one connection may make the server hold before its request is complete."""

    #: Request line and headers together, in bytes.
    max_header_bytes: int = Settings.model_fields["max_header_bytes"].default
    max_headers: int = Settings.model_fields["max_headers"].default
    #: From a request's first byte (the connection's, for the first one) to its last.
    request_timeout_s: float = Settings.model_fields["request_timeout_s"].default


@functools.cache
def process_limits() -> HttpLimits:
    """The limits of this server process: ``smssync serve`` exports its settings as
    ``SMSSYNC_*`` variables before uvicorn builds a protocol per connection."""
    settings = Settings.from_env()
    return HttpLimits(settings.max_header_bytes, settings.max_headers, settings.request_timeout_s)


class RequestRefused(Exception):
    """Raised from a parser callback to stop parsing a request that is over a limit."""


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a ``CoalescingTransport``, with ``HttpLimits``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = process_limits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.coalescing = CoalescingTransport(transport, self.loop)
        wrapped: Any = self.coalescing
        #: Bytes received while a head was incomplete, and the head's parsed bytes and lines.
        self.head_received = 0
        self.head_parsed = 0
        self.header_count = 0
        self.in_head = True
        #: Heads and requests that ended so far on this connection.
        self.boundaries = 0
        self.refused = False
        self.pending_refusal: tuple[int, str] | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.start_deadline()
        super().connection_made(wrapped)

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_deadline()
        super().connection_lost(exc)

    def start_deadline(self) -> None:
        """Start the clock of a request (or of the wait for the first one)."""
        self.deadline = self.loop.call_later(self.limits.request_timeout_s, self.timed_out)

    def cancel_deadline(self) -> None:
        """Stop the request's clock."""
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return  # lingering: read and dropped
        in_head = self.in_head
        if in_head and self.deadline is None:
            # The first byte after a response (even a stray CRLF, which begins no message).
            self.start_deadline()
        boundaries = self.boundaries
        super().data_received(data)
        if self.refused or not (in_head and self.in_head) or self.boundaries != boundaries:
            return
        # The same head before and after the chunk, still incomplete: all of the chunk is
        # head. A chunk in which a head or a request ended may hold a body too, so it is not
        # counted; the callbacks below count such a head exactly.
        self.head_received += len(data)
        if self.head_received > self.limits.max_header_bytes:
            self.refuse(431, "request header fields too large")

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every parser error here, those raised by the callbacks below too.
        status, error = self.pending_refusal or (400, "invalid HTTP request")
        self.refuse(status, error)

    def refuse(self, status: int, error: str) -> None:
        """Answer in the error shape of the path (the API's or S-20), drop what else arrives
        for LINGER_S, then close."""
        self.refused = True
        self.cancel_deadline()
        if self.cycle is not None and not self.cycle.response_complete:
            # The application is waiting for the body: it hears a disconnect instead.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
            if self.cycle.response_started:
                self.transport.close()
                return
        # The request line may be incomplete: its start tells which endpoint it was for.
        url: bytes = getattr(self, "url", b"")
        api = url.startswith(API_PREFIX.encode() + b"/") or url == API_PREFIX.encode()
        body = error_body(status, error) if api else replies.failure(error)
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: ",
                    replies.CONTENT_TYPE.encode(),
                    b"\r\ncontent-length: ",
                    str(len(body)).encode(),
                    b"\r\nconnection: close\r\n\r\n",
                    body,
                ]
            )
        )
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()

    def timed_out(self) -> None:
        """The request did not arrive whole in time: 408."""
        self.deadline = None
        if not self.transport.is_closing():
            self.refuse(408, "request timeout")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_parsed = 0
        self.header_count = 0
        if self.deadline is None:  # a pipelined request, begun in its predecessor's chunk
            self.start_deadline()

    def on_url(self, url: bytes) -> None:
        self.count_head(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.count_head(len(name) + len(value) + 4, 1)
        super().on_header(name, value)

    def count_head(self, size: int, lines: int) -> None:
        """Count a parsed part of the head; stop the parser when it is over a limit."""
        self.head_parsed += size
        self.header_count += lines
        if self.header_count > self.limits.max_headers:
            self.pending_refusal = (431, "too many request header fields")
            raise RequestRefused()
        if self.head_parsed > self.limits.max_header_bytes:
            self.pending_refusal = (431, "request header fields too large")
            raise RequestRefused()

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.boundaries += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.cancel_deadline()
        self.boundaries += 1
        self.in_head = True
        self.head_received = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # The last write of a response: send it now, not at the end of the turn. A client
        # that half-closed after its request would otherwise have its connection closed
        # (eof_received, in the next turn's I/O) before the flush.
        self.coalescing.flush()
        super().on_response_complete()

    def eof_received(self) -> None:
        # The transport closes itself after this: send what is held first, as the wrapped
        # transport sends its own buffer before it closes.
        self.coalescing.flush()
        super().eof_received()


#: What ``smssync serve`` gives uvicorn as ``http`` (an import string: workers unpickle it).
PROTOCOL = f"{__name__}:{CoalescingHttpToolsProtocol.__name__}"
