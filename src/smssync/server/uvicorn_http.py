"""uvicorn's httptools protocol, sending each response in one write.

uvicorn writes a response's status line and headers as soon as the application sends
``http.response.start``, and the body on ``http.response.body``: two ``send`` syscalls and two
TCP segments for every answer to a phone, and two wake-ups of the client. Measured under wrk
(``bench/ingest.py``), that second write cost the server about 10% of its requests per second.
Here writes are held until the response is complete, and sent then in one write; what a
response that is not complete yet (a stream) wrote is sent at the end of the event loop's
turn, before the loop waits for I/O again. Anything that ends the connection (close, the
client's EOF) sends what is held first, so no byte waits longer than the code running already.

``smssync serve`` passes this class to uvicorn as its ``http`` protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a ``CoalescingTransport``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.coalescing = CoalescingTransport(transport, self.loop)
        wrapped: Any = self.coalescing
        super().connection_made(wrapped)

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
