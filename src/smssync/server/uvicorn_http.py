"""uvicorn's httptools protocol, sending each response in one write.

uvicorn writes a response's status line and headers as soon as the application sends
``http.response.start``, and the body on ``http.response.body``: two ``send`` syscalls and two
TCP segments for every answer to a phone, and two wake-ups of the client. Measured under wrk
(``bench/ingest.py``), that second write cost the server about 10% of its requests per second.
Here every write made during one turn of the event loop is joined and sent at the end of that
turn, before the loop waits for I/O again: a small response leaves in one piece, and nothing
waits longer than the code that is running already.

``smssync serve`` passes this class to uvicorn as its ``http`` protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CoalescingTransport:
    """A transport whose writes of one event-loop turn reach the socket as one write.

    Everything but ``write``, ``close`` and ``get_write_buffer_size`` is the wrapped
    transport's own, so flow control (pause and resume) and ``get_extra_info`` work unchanged.
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

    def flush(self) -> None:
        """Hand what was written so far to the socket, in one write."""
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        """Flush, then close: a response followed by ``connection: close`` is not lost."""
        self.flush()
        self._transport.close()

    def get_write_buffer_size(self) -> int:
        """Bytes not yet sent, here and in the wrapped transport."""
        pending = sum(map(len, self._pending)) if self._pending else 0
        return pending + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a ``CoalescingTransport``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        wrapped: Any = CoalescingTransport(transport, self.loop)
        super().connection_made(wrapped)


#: What ``smssync serve`` gives uvicorn as ``http`` (an import string: workers unpickle it).
PROTOCOL = f"{__name__}:{CoalescingHttpToolsProtocol.__name__}"
