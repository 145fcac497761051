"""The SMSsync endpoint: one Sync URL for every exchange of spec §2.2.

Dispatch is by method and the query's ``task`` first, then by the body (S-1); the device is
identified before the body is validated, so an unauthenticated caller learns nothing.

Every phone request lands here, so this is plain ASGI: it answers before Starlette's router
and exception middleware, and without Starlette's Request and Response objects. Under wrk
those cost more CPU per incoming SMS than parsing and storing it (py-spy, cProfile).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import UTC, datetime

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from smssync.errors import NotFound, ProtocolError, StoreError
from smssync.protocol import replies
from smssync.protocol.body import MAX_BODY_BYTES, parse_fields
from smssync.protocol.query import parse_query
from smssync.protocol.tasks import parse_sent_request
from smssync.records import Device, KeyMap
from smssync.server import exchanges
from smssync.server.auth import Unauthorized, identify, with_secret
from smssync.server.context import ServerContext
from smssync.store import results

log = logging.getLogger("smssync.server")

_CONTENT_TYPE = (b"content-type", replies.CONTENT_TYPE.encode())
#: Methods allowed per ``task`` (None: no task, an upload).
_ALLOWED = {
    None: ("POST", "PUT"),
    "send": ("GET",),
    "sent": ("POST",),
    "result": ("GET", "POST"),
}


class TooLarge(Exception):
    """The body is over the size limit."""


class Throttled(Exception):
    """Too many failed authentications from this address: 429 before any check."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("throttled")
        self.retry_after_s = retry_after_s


class Disconnected(Exception):
    """The client hung up before its body arrived; nobody is left to answer."""


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """A status, an encoded SMSsync reply (S-16) and extra headers."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()

    async def __call__(self, send: Send) -> None:
        headers = [_CONTENT_TYPE, (b"content-length", str(len(self.body)).encode()), *self.headers]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def reply(body: bytes) -> Answer:
    """Answer 200 with an encoded SMSsync reply."""
    return Answer(200, body)


def failure(status: int, error: str, headers: dict[str, str] | None = None) -> Answer:
    """Answer with the S-20 failure body."""
    extra = tuple((k.encode(), v.encode()) for k, v in (headers or {}).items())
    return Answer(status, replies.failure(error), extra)


def too_many(retry_after_s: int) -> Answer:
    """Answer 429: too many failed authentications (throttle.py)."""
    return failure(
        429, "too many failed attempts, retry later", {"retry-after": str(retry_after_s)}
    )


def fail(status: int, error: str) -> Response:
    """The S-20 failure body as a Starlette Response, for the application's own handlers."""
    return Response(replies.failure(error), status, media_type=replies.CONTENT_TYPE)


@dataclasses.dataclass(slots=True)
class SyncRequest:
    """What the exchanges read of an HTTP request: taken from the ASGI scope once."""

    method: str
    query: dict[str, str]
    token: str | None
    content_length: str | None = None
    content_type: str | None = None
    authorization: str | None = None
    user_agent: str | None = None
    #: The client's address, for the brake on guessing (throttle.py).
    address: str | None = None

    @classmethod
    def of(cls, scope: Scope, token: str | None) -> SyncRequest:
        # Everything after the first "?" as sent (S-2); an upload (E1) usually has none.
        raw: bytes = scope.get("query_string", b"")
        query = parse_query(raw.decode("utf-8", "replace")) if raw else {}
        request = cls(scope["method"], query, token)
        client = scope.get("client")
        if client:
            request.address = client[0]
        for name, value in scope["headers"]:
            if name == b"content-length":
                request.content_length = value.decode("latin-1")
            elif name == b"content-type":
                request.content_type = value.decode("latin-1")
            elif name == b"authorization":
                request.authorization = value.decode("latin-1")
            elif name == b"user-agent":
                request.user_agent = value.decode("latin-1")
        return request


async def read_body(request: SyncRequest, receive: Receive) -> bytes:
    """Read the body, refusing more than MAX_BODY_BYTES before reading it all (S-3)."""
    declared = request.content_length
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise TooLarge()
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TooLarge()
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class SyncEndpoint:
    """The Sync URL paths: the base path, and ``/d/TOKEN`` under it (S-6).

    The application calls ``answer`` before Starlette's own middleware sees the request
    (``app.SmssyncApp``): that middleware wraps every ``send`` of every phone request.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.prefix = path + "/d/"

    async def answer(self, ctx: ServerContext, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer a request to a Sync URL path; False, having sent nothing, for other paths."""
        path: str = scope["path"]
        if path == self.path:
            token = None
        elif path.startswith(self.prefix) and "/" not in path[len(self.prefix) :]:
            token = path[len(self.prefix) :]
        else:
            return False
        try:
            answer = await sync_endpoint(ctx, scope, receive, token)
        except Disconnected:
            return True
        except asyncio.CancelledError:
            # uvicorn cancels what still runs when its graceful shutdown times out, and
            # says so once ("Cancel N running task(s)"): no traceback per phone. Nothing
            # was confirmed, so the App retries on the 503 and loses nothing (S-13).
            answer = failure(503, "server stopping, retry later", {"retry-after": "5"})
        except Exception:
            # Never a traceback to the client (S-20); the log keeps it for the operator.
            # The path may hold a device's token: log it masked.
            shown = self.prefix + "***" if token else path
            log.exception("unhandled error on %s %s", scope["method"], shown)
            answer = failure(500, "internal error")
        await answer(send)
        return True


async def sync_endpoint(
    ctx: ServerContext, scope: Scope, receive: Receive, token: str | None
) -> Answer:
    """Answer one SMSsync exchange."""
    request = SyncRequest.of(scope, token)
    try:
        return await _dispatch(ctx, request, receive)
    except Throttled as exc:
        return too_many(exc.retry_after_s)
    except Unauthorized as exc:
        if ctx.throttle is not None:
            kind = "basic" if exc.basic_failed else "sync_url"
            wait = ctx.throttle.failed(request.address, exc.target, kind)
            if wait is not None:
                return too_many(wait)
        headers = {"www-authenticate": 'Basic realm="smssync"'} if exc.basic_failed else None
        return failure(401 if exc.basic_failed else 403, "unauthorized", headers)
    except TooLarge:
        return failure(413, "body too large")
    except NotFound:
        # The device was removed while its credentials were still cached.
        return failure(403, "unauthorized")
    except StoreError as exc:
        # The App retries on anything but success, so a 503 loses nothing (S-13).
        log.warning("store failed (%s); answered 503", type(exc).__name__)
        return failure(503, "storage unavailable, retry later", {"retry-after": "5"})


async def _dispatch(ctx: ServerContext, request: SyncRequest, receive: Receive) -> Answer:
    query = request.query
    task = query.get("task")
    method = request.method
    if method == "GET" and task is None:
        # A health probe (v2.x @20): no auth, no side effects (S-37).
        return reply(replies.success())
    allowed = _ALLOWED.get(task)
    if allowed is None:
        return failure(400, f"unknown task {task!r}")
    if method not in allowed:
        # Without a task, GET is the health probe, answered above.
        listed = ("GET", *allowed) if task is None else allowed
        return failure(
            405, f"method {method} not allowed for this task", {"allow": ", ".join(listed)}
        )
    if ctx.throttle is not None:
        wait = ctx.throttle.blocked(request.address, "sync_url")
        if wait is not None:
            raise Throttled(wait)
    body = await read_body(request, receive) if method in ("POST", "PUT") else b""
    device = await identify(ctx.directory, ctx.key, request.token, request.authorization)
    now = datetime.now(UTC)
    user_agent = request.user_agent
    if task is None:
        return await _post(ctx, request, device, body, now, user_agent)
    if task == "sent":
        return await _sent(ctx, device, query, body, now, user_agent)
    device = await with_secret(ctx.directory, ctx.key, device, query.get("secret"))
    if device is None:
        raise Unauthorized()
    await ctx.last_seen.touch(device.id, now, user_agent)
    if task == "send":
        return reply(await exchanges.task_send(ctx, device, query.get("secret"), now))
    if method == "GET":
        return reply(await exchanges.result_list(ctx, device, now))
    try:
        return reply(await exchanges.result_report(ctx, device, body, now))
    except ProtocolError as exc:
        return failure(400, exc.message)


async def _post(
    ctx: ServerContext,
    request: SyncRequest,
    device: Device | None,
    body: bytes,
    now: datetime,
    user_agent: str | None,
) -> Answer:
    try:
        fields = parse_fields(body, request.content_type)
        problem = None
    except ProtocolError as exc:
        fields, problem = {}, exc.message
    keys = device.settings.keys if device is not None else KeyMap()
    secret = fields.get(keys.secret, fields.get("secret"))
    # E1 and E3 always carry the secret; the App's alert (E8) and its stale alert JSON carry
    # none, like E5 (S-6): those get their own answer (S-15, S-36) but store no SMS.
    alert = fields.get("Task", "").strip().lower() == "alert"
    sms = keys.from_addr in fields or keys.content in fields
    device = await with_secret(ctx.directory, ctx.key, device, secret, required=sms and not alert)
    if device is None:
        raise Unauthorized()
    if problem is not None:
        return failure(400, problem)
    await ctx.last_seen.touch(device.id, now, user_agent)
    try:
        return reply(await exchanges.post(ctx, device, fields, now))
    except ProtocolError as exc:
        return failure(400, exc.message)


async def _sent(
    ctx: ServerContext,
    device: Device | None,
    query: dict[str, str],
    body: bytes,
    now: datetime,
    user_agent: str | None,
) -> Answer:
    # Credentials first (S-1): a bad body from a wrong secret is a 403, not a 400.
    # The App sends no secret on E5 (S-26): one that is sent must still be right.
    device = await with_secret(ctx.directory, ctx.key, device, query.get("secret"), required=False)
    try:
        listed = parse_sent_request(body)
    except ProtocolError as exc:
        if device is None:
            raise Unauthorized() from None
        return failure(400, exc.message)
    public = await exchanges.public_ids(ctx, listed)
    if device is None:
        # Lease binding: only the poller was told these wire ids (S-26, S-29); a public uuid,
        # which API readers and webhook receivers see, binds nothing.
        uuids = list(public.values())
        owner = await results.lease_owner(ctx.store, uuids) if uuids else None
        if owner is None:
            raise Unauthorized()
        await ctx.last_seen.touch(owner, now, user_agent)
        return reply(await exchanges.acknowledge(ctx, owner, listed, public, now))
    await ctx.last_seen.touch(device.id, now, user_agent)
    return reply(await exchanges.acknowledge(ctx, device.id, listed, public, now))
