"""What one request may make the server hold, kept by a plain ASGI middleware.

uvicorn bounds a request head that is still arriving (``h11_max_incomplete_event_size``,
set to twice ``max_header_bytes`` by ``smssync serve``) and answers one over it with its
own 400.
Everything it hands the application is checked here, so that a refusal is answered in the
error shape of the endpoint the request named (``shapes.for_path``):

- more than ``max_headers`` header fields, or a request line and headers over
  ``max_header_bytes`` that arrived in one read: 431;
- a body not received whole within ``request_timeout_s`` of its head: 408, and the
  application reading it gets the refusal instead of more body, so nothing is stored;
- a request cancelled by the server's shutdown (uvicorn's ``timeout_graceful_shutdown``):
  503 with Retry-After, so the App or the client retries and nothing is lost (S-13).
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smssync.errors import HeadersTooLarge, RequestTimeout, Unavailable
from smssync.server.shapes import for_path
from smssync.settings import Settings


def head_size(scope: Scope) -> int:
    """The bytes of a request's target and header fields, as they came on the wire."""
    target = len(scope.get("raw_path") or scope["path"].encode()) + len(scope["query_string"])
    return target + sum(len(name) + len(value) + 4 for name, value in scope["headers"])


class RequestLimits:
    """Refuse requests over the limits of ``settings``; answer 503 to those cut by shutdown."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_headers = settings.max_headers
        self.max_header_bytes = settings.max_header_bytes
        self.timeout_s = float(settings.request_timeout_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if len(scope["headers"]) > self.max_headers:
            await for_path(path, HeadersTooLarge("too many request header fields"))(send)
            return
        if head_size(scope) > self.max_header_bytes:
            await for_path(path, HeadersTooLarge())(send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        body_done = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # what is left to hear is the disconnect: no deadline on it
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout() from None
            body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, watched_send)
        except asyncio.CancelledError:
            # Cancelled by uvicorn's graceful shutdown once it times out; it says so once
            # ("Cancel N running task(s)"): a 503 to retry on, not a traceback per request.
            # A response already under way cannot change: uvicorn then closes the connection.
            if not started:
                with contextlib.suppress(RuntimeError, OSError):
                    await for_path(path, Unavailable())(send)
