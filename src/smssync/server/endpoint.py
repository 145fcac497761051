"""The SMSsync endpoint: one Sync URL for every exchange of spec §2.2.

Dispatch is by method and the query's ``task`` first, then by the body (S-1); the device is
identified before the body is validated, so an unauthenticated caller learns nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from smssync.errors import NotFound, ProtocolError, StoreError
from smssync.messages import KeyMap
from smssync.protocol import replies
from smssync.protocol.body import MAX_BODY_BYTES, parse_fields
from smssync.protocol.query import parse_query
from smssync.protocol.tasks import parse_sent_request
from smssync.server import exchanges
from smssync.server.auth import Unauthorized, identify, with_secret
from smssync.server.context import ServerContext
from smssync.store.base import Device

log = logging.getLogger("smssync.server")


class TooLarge(Exception):
    """The body is over the size limit."""


def reply(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Wrap an encoded SMSsync reply (S-16)."""
    return Response(body, status, headers={"content-type": replies.CONTENT_TYPE, **(headers or {})})


def fail(status: int, error: str, headers: dict[str, str] | None = None) -> Response:
    """Answer with the S-20 failure body."""
    return reply(replies.failure(error), status, headers)


async def read_body(request: Request) -> bytes:
    """Read the body, refusing more than MAX_BODY_BYTES before reading it all (S-3)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise TooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def raw_query(request: Request) -> str:
    """Return everything after the first ``?`` as sent (S-2)."""
    raw: bytes = request.scope.get("query_string", b"")
    return raw.decode("utf-8", "replace")


class SyncEndpoint:
    """ASGI middleware answering the Sync URL paths before Starlette's router sees them.

    Every phone request lands here, so it skips the router and the exception middleware:
    under wrk they cost about a quarter of the server's CPU per incoming SMS (py-spy).
    Other paths (the API, the dashboard) go on to the application.
    """

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path
        self.prefix = path + "/d/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path == self.path:
                token = None
            elif path.startswith(self.prefix) and "/" not in path[len(self.prefix) :]:
                token = path[len(self.prefix) :]
            else:
                await self.app(scope, receive, send)
                return
            request = Request(scope, receive)
            request.scope["path_params"] = {"token": token} if token else {}
            try:
                response = await sync_endpoint(request)
            except Exception:
                # Never a traceback to the client (S-20); the log keeps it for the operator.
                # The path may hold a device's token: log it masked.
                shown = self.prefix + "***" if token else path
                log.exception("unhandled error on %s %s", request.method, shown)
                response = fail(500, "internal error")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def sync_endpoint(request: Request) -> Response:
    """Answer one SMSsync exchange."""
    ctx: ServerContext = request.app.state.ctx
    try:
        return await _dispatch(ctx, request)
    except Unauthorized as exc:
        headers = {"www-authenticate": 'Basic realm="smssync"'} if exc.basic_failed else None
        return fail(401 if exc.basic_failed else 403, "unauthorized", headers)
    except TooLarge:
        return fail(413, "body too large")
    except NotFound:
        # The device was removed while its credentials were still cached.
        return fail(403, "unauthorized")
    except StoreError as exc:
        # The App retries on anything but success, so a 503 loses nothing (S-13).
        log.warning("store failed (%s); answered 503", type(exc).__name__)
        return fail(503, "storage unavailable, retry later", {"retry-after": "5"})


async def _dispatch(ctx: ServerContext, request: Request) -> Response:
    query = parse_query(raw_query(request))
    task = query.get("task")
    method = request.method
    token = request.path_params.get("token")
    if method == "GET" and task is None:
        # A health probe (v2.x @20): no auth, no side effects (S-37).
        return reply(replies.success())
    if task is not None and task not in ("send", "sent", "result"):
        return fail(400, f"unknown task {task!r}")
    allowed = {
        None: ("POST", "PUT"),
        "send": ("GET",),
        "sent": ("POST",),
        "result": ("GET", "POST"),
    }[task]
    if method not in allowed:
        return fail(
            405, f"method {method} not allowed for this task", {"allow": ", ".join(allowed)}
        )
    body = await read_body(request) if method in ("POST", "PUT") else b""
    device = await identify(ctx.directory, ctx.key, token, request.headers.get("authorization"))
    now = datetime.now(UTC)
    user_agent = request.headers.get("user-agent")
    if task is None:
        return await _post(ctx, request, device, body, now, user_agent)
    if task == "sent":
        return await _sent(ctx, device, query, body, now, user_agent)
    device = await with_secret(ctx.directory, ctx.key, device, query.get("secret"))
    if device is None:
        raise Unauthorized()
    await ctx.store.touch_device(device.id, now, user_agent)
    if task == "send":
        return reply(await exchanges.task_send(ctx, device, query.get("secret"), now))
    if method == "GET":
        return reply(await exchanges.result_list(ctx, device, now))
    try:
        return reply(await exchanges.result_report(ctx, device, body, now))
    except ProtocolError as exc:
        return fail(400, exc.message)


async def _post(
    ctx: ServerContext,
    request: Request,
    device: Device | None,
    body: bytes,
    now: datetime,
    user_agent: str | None,
) -> Response:
    try:
        fields = parse_fields(body, request.headers.get("content-type"))
        problem = None
    except ProtocolError as exc:
        fields, problem = {}, exc.message
    keys = device.settings.keys if device is not None else KeyMap()
    secret = fields.get(keys.secret, fields.get("secret"))
    device = await with_secret(ctx.directory, ctx.key, device, secret)
    if device is None:
        raise Unauthorized()
    if problem is not None:
        return fail(400, problem)
    await ctx.store.touch_device(device.id, now, user_agent)
    try:
        return reply(await exchanges.post(ctx, device, fields, now))
    except ProtocolError as exc:
        return fail(400, exc.message)


async def _sent(
    ctx: ServerContext,
    device: Device | None,
    query: dict[str, str],
    body: bytes,
    now: datetime,
    user_agent: str | None,
) -> Response:
    # Credentials first (S-1): a bad body from a wrong secret is a 403, not a 400.
    device = await with_secret(ctx.directory, ctx.key, device, query.get("secret"))
    try:
        listed = parse_sent_request(body)
    except ProtocolError as exc:
        if device is None:
            raise Unauthorized() from None
        return fail(400, exc.message)
    if device is None:
        # Lease binding: only the poller was told these uuids (S-26, S-29).
        uuids = [u for u in listed if u]
        owner = await ctx.store.lease_owner(uuids) if uuids else None
        if owner is None:
            raise Unauthorized()
        await ctx.store.touch_device(owner, now, user_agent)
        return reply(await exchanges.acknowledge(ctx, owner, listed, now))
    await ctx.store.touch_device(device.id, now, user_agent)
    return reply(await exchanges.acknowledge(ctx, device.id, listed, now))
