"""The SMSsync endpoint: one Sync URL for every exchange of spec §2.2.

Dispatch is by method and the query's ``task`` first, then by the body (S-1); the device is
identified before the body is validated, so an unauthenticated caller learns nothing.

A plain ASGI handler, routed by Starlette (``app.create_app``) under the application's
middleware; refusals are exceptions of ``smssync.errors``, rendered in the phone's shape by
``shapes.for_phone``.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

from starlette.types import Receive, Scope, Send

from smssync.errors import (
    BadRequest,
    BodyTooLarge,
    DeviceDisabled,
    Disconnected,
    InternalError,
    MethodNotAllowed,
    NotFound,
    ProtocolError,
    SmssyncError,
    StoreError,
    Throttled,
    Unauthorized,
)
from smssync.protocol import replies
from smssync.protocol.body import MAX_BODY_BYTES, parse_fields
from smssync.protocol.query import parse_query
from smssync.protocol.tasks import parse_sent_request
from smssync.records import Device, KeyMap
from smssync.server import exchanges
from smssync.server.auth import identify, with_secret
from smssync.server.context import ServerContext
from smssync.server.shapes import Answer, for_phone
from smssync.store import results

log = logging.getLogger("smssync.server")

#: Methods allowed per ``task`` (None: no task, an upload).
_ALLOWED = {
    None: ("POST", "PUT"),
    "send": ("GET",),
    "sent": ("POST",),
    "result": ("GET", "POST"),
}


def reply(body: bytes) -> Answer:
    """Answer 200 with an encoded SMSsync reply."""
    return Answer(200, body)


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
        raise BodyTooLarge()
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
            raise BodyTooLarge()
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class SyncEndpoint:
    """The Sync URL paths, as an ASGI app: the base path, and ``/d/{token}`` under it (S-6)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx: ServerContext = scope["app"].state.ctx
        token: str | None = scope.get("path_params", {}).get("token")
        try:
            answer = await sync_endpoint(ctx, scope, receive, token)
        except Disconnected:
            return
        except Exception:
            # Never a traceback to the client (S-20); the log keeps it for the operator.
            # The path may hold a device's token: log it masked.
            shown = scope["path"].rsplit("/", 1)[0] + "/***" if token else scope["path"]
            log.exception("unhandled error on %s %s", scope["method"], shown)
            answer = for_phone(InternalError())
        await answer(send)


async def sync_endpoint(
    ctx: ServerContext, scope: Scope, receive: Receive, token: str | None
) -> Answer:
    """Answer one SMSsync exchange."""
    request = SyncRequest.of(scope, token)
    try:
        return await _dispatch(ctx, request, receive)
    except Disconnected:
        raise
    except Unauthorized as exc:
        if ctx.throttle is not None:
            kind = "basic" if exc.basic_failed else "sync_url"
            wait = ctx.throttle.failed(request.address, exc.target, kind)
            if wait is not None:
                return for_phone(Throttled(wait))
        return for_phone(exc)
    except NotFound:
        # The device was removed while its credentials were still cached.
        return for_phone(Unauthorized())
    except SmssyncError as exc:
        if not (exc.public or isinstance(exc, StoreError)):
            raise  # a bug: logged with its traceback by SyncEndpoint
        return for_phone(exc)


async def _dispatch(ctx: ServerContext, request: SyncRequest, receive: Receive) -> Answer:
    query = request.query
    task = query.get("task")
    method = request.method
    if method == "GET" and task is None:
        # A health probe (v2.x @20): no auth, no side effects (S-37).
        return reply(replies.success())
    allowed = _ALLOWED.get(task)
    if allowed is None:
        raise BadRequest(f"unknown task {task!r}")
    if method not in allowed:
        # Without a task, GET is the health probe, answered above.
        listed = ("GET", *allowed) if task is None else allowed
        raise MethodNotAllowed(f"method {method} not allowed for this task", list(listed))
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
    _enabled(device)
    await ctx.last_seen.touch(device.id, now, user_agent)
    if task == "send":
        return reply(await exchanges.task_send(ctx, device, query.get("secret"), now))
    if method == "GET":
        return reply(await exchanges.result_list(ctx, device, now))
    return reply(await exchanges.result_report(ctx, device, body, now))


def _enabled(device: Device) -> None:
    # Refused as itself, not as a stranger: a 403 that counts toward no throttle, so a
    # disabled phone polling on does not lock out the others behind the same address.
    if device.disabled_at is not None:
        raise DeviceDisabled()


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
        problem: ProtocolError | None = None
    except ProtocolError as exc:
        fields, problem = {}, exc
    keys = device.settings.keys if device is not None else KeyMap()
    secret = fields.get(keys.secret, fields.get("secret"))
    # E1 and E3 always carry the secret; the App's alert (E8) and its stale alert JSON carry
    # none, like E5 (S-6): those get their own answer (S-15, S-36) but store no SMS.
    alert = fields.get("Task", "").strip().lower() == "alert"
    sms = keys.from_addr in fields or keys.content in fields
    device = await with_secret(ctx.directory, ctx.key, device, secret, required=sms and not alert)
    if device is None:
        raise Unauthorized()
    _enabled(device)
    if problem is not None:
        raise problem
    await ctx.last_seen.touch(device.id, now, user_agent)
    return reply(await exchanges.post(ctx, device, fields, now))


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
    except ProtocolError:
        if device is None:
            raise Unauthorized() from None
        raise
    if device is not None:
        _enabled(device)
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
