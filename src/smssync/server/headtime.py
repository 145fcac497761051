"""A deadline on each request head: uvicorn's h11 protocol, wrapped.

uvicorn times a connection out only while it idles after a response (``timeout_keep_alive``).
A connection that sends nothing, or a request line and headers a byte at a time, holds a
socket and its buffers for as long as the client likes, and enough of them exhaust the
server's file descriptors. The head is not the application's to see (it starts only once
the head is whole), so the deadline lives here, around the protocol uvicorn builds for each
connection, which stays uvicorn's own: every call is passed on unchanged.

The head must arrive whole within ``timeout_s`` of the first byte of a request, or of the
connection's opening; then the client gets a 408 and the connection closes. A body's time
is ``RequestLimits``' (``server/limits.py``), the application's own time unbounded.
"""

from __future__ import annotations

import asyncio
import typing
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

#: What a client whose head ran out of time is told, before the close.
TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 36\r\n\r\nrequest head not received in time\r\n\r\n"
)


class HeadDeadline(asyncio.Protocol):
    """uvicorn's ``H11Protocol`` for one connection, with a deadline on each request head.

    Built by uvicorn with the keywords it gives any protocol class, plus ``timeout_s``
    (bound with ``functools.partial`` in ``serve_options``).
    """

    def __init__(self, *, timeout_s: float, **uvicorn: Any) -> None:
        self.inner = H11Protocol(**uvicorn)
        self.timeout_s = timeout_s
        self.timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None

    def _waiting_for_head(self) -> bool:
        # h11's state of the client: IDLE until a request's head is whole, again after
        # each response (keep-alive), until the next head is whole.
        return self.inner.conn.their_state is h11.IDLE

    def _arm(self) -> None:
        if self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(self.timeout_s, self._expired)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expired(self) -> None:
        self.timer = None
        transport = self.transport
        if transport is None or transport.is_closing() or not self._waiting_for_head():
            return
        if self.inner.conn.our_state is h11.IDLE:  # no answer of the previous request pending
            transport.write(TIMED_OUT)
        transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio's classes, but have their methods.
        self.transport = typing.cast(asyncio.Transport, transport)
        self.inner.connection_made(self.transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)
        # A keep-alive connection idle after its response is uvicorn's to close; bytes of a
        # new head start this deadline, a whole head ends it.
        if self._waiting_for_head():
            self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.inner.connection_lost(exc)

    def eof_received(self) -> None:
        self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()
