"""What every request leaves behind: an id on its log lines and its answer, a count, a time.

A plain ASGI middleware, outermost but for Starlette's error handler, so that it sees every
answer, the refusals of ``RequestLimits`` too. Its cost per request is a few microseconds
(a header scan, a context variable, two metric updates): a phone's request costs some
milliseconds, and the ingest path is measured (``bench/ingest.py``).

The request id is the client's ``X-Request-Id`` when it is sane (1 to 128 characters of
letters, digits and ``-._:+/=@``: a proxy's or a load balancer's id), otherwise a new random
one; either way the answer carries it back in ``X-Request-Id``.
"""

from __future__ import annotations

import itertools
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smssync.server.logs import REQUEST_ID
from smssync.server.metrics import observe_request
from smssync.server.shapes import is_api
from smssync.settings import Settings

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:+/=@-]{1,128}")

#: The kinds of a Sync URL request, by its ``task`` (bytes as the query carries them).
_TASKS = {b"send": "sync_send", b"sent": "sync_sent", b"result": "sync_result"}
_FIXED = {"/healthz": "health", "/readyz": "health", "/metrics": "metrics"}


#: A new id is this process's random prefix and a serial: unique across workers and
#: restarts, and cheaper than a random id per request.
_PREFIX = os.urandom(6).hex()
_serial = itertools.count(1)


def request_id(scope: Scope) -> str:
    """The request's id: its sane ``X-Request-Id``, or a new one."""
    for name, value in scope["headers"]:
        if name == HEADER:
            if _SANE.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return f"{_PREFIX}-{next(_serial):x}"


def sync_kind(method: str, query: bytes) -> str:
    """The kind of a Sync URL request: its task, or an upload (POST, PUT) or a probe (GET)."""
    if query:
        # As the endpoint reads it (S-2): a second "?" is a "&", the first "task" wins.
        for part in query.replace(b"?", b"&").split(b"&"):
            if part.startswith(b"task="):
                return _TASKS.get(part[5:], "sync_other")
    return "sync_probe" if method in ("GET", "HEAD") else "sync_upload"


class Observe:
    """Give each request an id (for its log lines and in its answer); count and time it."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.sync_path = settings.sync_path
        self.device_prefix = settings.sync_path + "/d/"

    def kind(self, scope: Scope) -> str:
        """Which endpoint a request is for: a label of bounded values."""
        path: str = scope["path"]
        if path == self.sync_path or path.startswith(self.device_prefix):
            return sync_kind(scope["method"], scope["query_string"])
        if is_api(path):
            return "api"
        fixed = _FIXED.get(path)
        if fixed is not None:
            return fixed
        if path == "/dashboard" or path.startswith("/dashboard/"):
            return "dashboard"
        return "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        kind = self.kind(scope)  # before routing, which may rewrite the scope
        rid = request_id(scope)
        echoed = (HEADER, rid.encode())
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), echoed]}
            await send(message)

        token = REQUEST_ID.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            status = status or 500
            # The id stays set: Starlette's error handler, outside this middleware and in
            # this task, logs the crash and answers with it (app.crashed).
            raise
        else:
            REQUEST_ID.reset(token)
        finally:
            observe_request(kind, status, time.perf_counter() - started)
