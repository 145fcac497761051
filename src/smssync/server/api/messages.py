"""Messages, inbox and devices: send, list, read, cancel, retry."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from fastapi.responses import JSONResponse

from smssync.addresses import normalize_recipient
from smssync.errors import BadRequest, Conflict, NotFound
from smssync.gsm.segments import count_segments
from smssync.records import (
    ApiKey,
    Inbound,
    NewOutbound,
    Outbound,
    OutboundQuery,
    OutboundStatus,
    Scope,
)
from smssync.serialize import device_json, inbound_json, outbound_json
from smssync.server.api.deps import context, require, responses
from smssync.server.api.models import (
    DeviceList,
    DeviceOut,
    InboundOut,
    InboxPage,
    IsoDatetime,
    MessageOut,
    MessagePage,
    MessageReply,
    Queued,
    SendRequest,
    SendResponse,
)
from smssync.server.context import ServerContext
from smssync.store import (
    apikeys,
    results,
)
from smssync.store import (
    devices as devices_store,
)
from smssync.store import (
    inbox as inbox_store,
)
from smssync.store import (
    messages as messages_store,
)

router = APIRouter(tags=["messages"])

Ctx = Annotated[ServerContext, Depends(context)]
Sender = Annotated[ApiKey, Depends(require(Scope.SEND))]
Reader = Annotated[ApiKey, Depends(require(Scope.READ))]
Cursor = Annotated[
    str | None, Query(max_length=18, pattern=r"^[0-9]+$", description="next_cursor of a page")
]
Limit = Annotated[int, Query(ge=1, le=1000)]
MessageId = Annotated[str, Path(max_length=64, description="The message's uuid.")]


def message_out(message: Outbound) -> MessageOut:
    """Describe an outbound SMS (the one shape: ``serialize.outbound_json``)."""
    return MessageOut.model_validate(outbound_json(message))


def inbound_out(message: Inbound) -> InboundOut:
    """Describe an inbound SMS (the one shape: ``serialize.inbound_json``)."""
    return InboundOut.model_validate(inbound_json(message))


def _recipients(request: SendRequest, region: str) -> tuple[list[str], list[dict[str, Any]]]:
    numbers = [request.to] if isinstance(request.to, str) else request.to
    good: list[str] = []
    bad: list[dict[str, Any]] = []
    for index, raw in enumerate(numbers):
        try:
            good.append(normalize_recipient(raw, region))
        except ValueError as exc:
            bad.append({"index": index, "field": "to", "message": str(exc)})
    return good, bad


@router.post(
    "/messages",
    status_code=201,
    response_model=SendResponse,
    summary="Send an SMS to one or many recipients",
    responses=responses(409, 413),
)
async def send(
    request: SendRequest,
    ctx: Ctx,
    key: Sender,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=255, pattern=r"^[\x21-\x7e]+$", description="Retry-safe request id."),
    ] = None,
) -> Response:
    """Queue the text for every valid recipient in one transaction; refuse the others.

    400 when no recipient is valid or ``device`` names no device; 409 when the
    ``Idempotency-Key`` was used with a different request.
    """
    if request.status_callback is not None:
        blocked = ctx.settings.egress.check_url(request.status_callback)
        if blocked is not None:
            raise BadRequest(blocked, [{"field": "status_callback", "message": blocked}])
    numbers, refused = _recipients(request, ctx.settings.default_region)
    if not numbers:
        raise BadRequest("no valid recipient", refused)
    now = datetime.now(UTC)
    segments = count_segments(request.body)
    queued = [
        NewOutbound(
            message_id=str(uuid.uuid4()),
            to_addr=number,
            content=request.body,
            segments=segments,
            device=request.device,
            created_at=now,
            expires_at=request.valid_until,
            priority=request.priority,
            send_at=request.send_at,
            callback_url=request.status_callback,
            api_key_id=key.id,
        )
        for number in numbers
    ]
    answer = SendResponse(
        messages=[
            Queued(uuid=m.message_id, to=m.to_addr, status=OutboundStatus.QUEUED) for m in queued
        ],
        errors=refused,  # type: ignore[arg-type]
    ).model_dump_json()
    digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
    try:
        created, stored_hash, status, body = await apikeys.submit(
            ctx.store, key.id, idempotency_key, digest, queued, 201, answer, now
        )
    except NotFound as exc:
        raise BadRequest(exc.message, [{"field": "device", "message": exc.message}]) from None
    if stored_hash != digest:
        raise Conflict("this Idempotency-Key was used with a different request")
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return Response(body, status_code=status, media_type="application/json", headers=headers)


@router.get("/messages", response_model=MessagePage, summary="List outgoing SMS")
async def list_messages(
    ctx: Ctx,
    _: Reader,
    status: OutboundStatus | None = None,
    device: Annotated[str | None, Query(max_length=100)] = None,
    to: Annotated[str | None, Query(max_length=64)] = None,
    since: IsoDatetime | None = None,
    until: IsoDatetime | None = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> MessagePage:
    """Filter by status, device, recipient and creation time; oldest first, by cursor."""
    number = to
    if to is not None:
        try:
            number = normalize_recipient(to, ctx.settings.default_region)
        except ValueError:
            number = to
    query = OutboundQuery(
        status=None if status is None else status.value,
        device=device,
        to_addr=number,
        since=since,
        until=until,
        after_id=int(cursor or 0),
        limit=limit,
    )
    found = await messages_store.outbound_page(ctx.store, query)
    more = len(found) == limit
    return MessagePage(
        messages=[message_out(m) for m in found],
        next_cursor=str(found[-1].seq) if found and more else None,
    )


@router.get(
    "/messages/{uuid}",
    response_model=MessageReply,
    summary="Read one SMS and history",
    responses=responses(404),
)
async def read_message(uuid: MessageId, ctx: Ctx, _: Reader) -> MessageReply:
    """Return one outgoing SMS with every status change."""
    found = await messages_store.list_outbound(ctx.store, message_id=uuid, limit=1)
    if not found:
        raise NotFound(f"no message {uuid!r}")
    return MessageReply(message=message_out(found[0]))


@router.delete(
    "/messages/{uuid}",
    response_model=MessageReply,
    summary="Cancel an SMS",
    responses=responses(404, 409),
)
async def cancel_message(uuid: MessageId, ctx: Ctx, _: Sender) -> MessageReply:
    """Cancel a message no phone has accepted yet; 409 once one has."""
    return MessageReply(
        message=message_out(await results.cancel(ctx.store, uuid, datetime.now(UTC)))
    )


@router.post(
    "/messages/{uuid}/retry",
    response_model=MessageReply,
    summary="Send a failed or expired SMS again",
    responses=responses(404, 409, 413),
)
async def retry_message(uuid: MessageId, ctx: Ctx, _: Sender) -> MessageReply:
    """Queue a failed or expired message again as a new attempt (same uuid, new wire id);
    409 in any other status."""
    return MessageReply(
        message=message_out(await results.retry(ctx.store, uuid, datetime.now(UTC)))
    )


@router.get("/inbox", response_model=InboxPage, summary="List incoming SMS")
async def inbox(
    ctx: Ctx,
    _: Reader,
    device: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> JSONResponse:
    """Incoming SMS, oldest first, by cursor."""
    found = await inbox_store.list_inbound(
        ctx.store, device=device, limit=limit, after_id=int(cursor or 0)
    )
    page = InboxPage(
        messages=[inbound_out(m) for m in found],
        next_cursor=str(found[-1].id) if len(found) == limit else None,
    )
    return JSONResponse(json.loads(page.model_dump_json(by_alias=True)))


@router.get("/devices", response_model=DeviceList, summary="List devices")
async def devices(ctx: Ctx, _: Reader) -> DeviceList:
    """Every device with its health and queue depth."""
    now = datetime.now(UTC)
    found = await devices_store.all_devices(ctx.store)
    depths = await messages_store.queue_depths(ctx.store)
    return DeviceList(
        devices=[
            DeviceOut.model_validate(device_json(d, depths.get(d.name, 0), now)) for d in found
        ]
    )
