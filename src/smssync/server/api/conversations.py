"""Conversations (threads by number), search and the opt-out list: the dashboard's reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from smssync.addresses import normalize, normalize_recipient
from smssync.errors import BadRequest, NotFound
from smssync.records import ApiKey, Scope, ThreadMessage
from smssync.serialize import conversation_json, thread_message_json
from smssync.server.api.conversation_models import (
    ConversationOut,
    ConversationPage,
    OptOutOut,
    OptOutPage,
    OptOutReply,
    OptOutRequest,
    ThreadMessageOut,
    ThreadPage,
)
from smssync.server.api.deps import context, require, responses
from smssync.server.api.models import Done
from smssync.server.context import ServerContext
from smssync.store import conversations as store
from smssync.store import optouts
from smssync.store.conversations import ThreadCursor
from smssync.store.rows import to_us

router = APIRouter(tags=["conversations"])

Ctx = Annotated[ServerContext, Depends(context)]
Sender = Annotated[ApiKey, Depends(require(Scope.SEND))]
Reader = Annotated[ApiKey, Depends(require(Scope.READ))]
Limit = Annotated[int, Query(ge=1, le=200)]
Address = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[^\x00]+$", description="The number.")
]
#: A conversations cursor: the last one's time in µs, a dot, its number.
ConversationCursorQ = Annotated[
    str | None, Query(max_length=90, pattern=r"^[0-9]{1,19}\.[^\x00]{1,64}$")
]
#: A thread cursor: the last incoming and outgoing ids shown, by a dot.
ThreadCursorQ = Annotated[str | None, Query(max_length=40, pattern=r"^[0-9]{1,18}\.[0-9]{1,18}$")]


def _thread_cursor(cursor: str | None) -> ThreadCursor | None:
    if cursor is None:
        return None
    in_id, _, out_id = cursor.partition(".")
    return int(in_id), int(out_id)


def _thread_page(found: tuple[list[ThreadMessage], ThreadCursor | None]) -> ThreadPage:
    messages, cursor = found
    return ThreadPage(
        messages=[ThreadMessageOut.model_validate(thread_message_json(m)) for m in messages],
        next_cursor=None if cursor is None else f"{cursor[0]}.{cursor[1]}",
    )


@router.get("/conversations", response_model=ConversationPage, summary="List conversations")
async def list_conversations(
    ctx: Ctx,
    _: Reader,
    number: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00]*$")] = None,
    cursor: ConversationCursorQ = None,
    limit: Limit = 50,
) -> ConversationPage:
    """Threads by the other party's number, newest first, with unread counts; ``number``
    keeps those whose number contains it."""
    before = None
    if cursor is not None:
        at, _dot, address = cursor.partition(".")
        before = (int(at), address)
    found = await store.conversation_page(ctx.store, before, limit, number or None)
    last = found[-1] if found else None
    return ConversationPage(
        conversations=[ConversationOut.model_validate(conversation_json(c)) for c in found],
        next_cursor=(
            f"{to_us(last.last_at)}.{last.address}" if last and len(found) == limit else None
        ),
    )


@router.get(
    "/conversations/{address}/messages",
    response_model=ThreadPage,
    summary="Read one conversation",
    responses=responses(404),
)
async def thread(
    address: Address, ctx: Ctx, _: Reader, cursor: ThreadCursorQ = None, limit: Limit = 50
) -> ThreadPage:
    """Both directions interleaved, newest first, each outgoing SMS with its status."""
    number = normalize(address, ctx.settings.default_region)
    return _thread_page(await store.thread(ctx.store, number, _thread_cursor(cursor), limit))


@router.post(
    "/conversations/{address}/read",
    response_model=Done,
    summary="Mark a conversation read",
    responses=responses(404),
)
async def mark_read(address: Address, ctx: Ctx, _: Sender) -> Done:
    """Set its unread count to zero."""
    number = normalize(address, ctx.settings.default_region)
    if not await store.mark_read(ctx.store, number):
        raise NotFound(f"no conversation with {number}")
    return Done()


@router.get("/search", response_model=ThreadPage, summary="Search SMS by text")
async def search(
    ctx: Ctx,
    _: Reader,
    text: Annotated[str, Query(min_length=1, max_length=100, pattern=r"^[^\x00]+$")],
    cursor: ThreadCursorQ = None,
    limit: Limit = 50,
) -> ThreadPage:
    """SMS of both directions whose text contains ``text``, any case, newest first."""
    found = await store.search_messages(ctx.store, text, _thread_cursor(cursor), limit)
    return _thread_page(found)


@router.get("/opt-outs", response_model=OptOutPage, summary="List the opt-out list")
async def list_opt_outs(
    ctx: Ctx,
    _: Reader,
    cursor: Annotated[str | None, Query(max_length=64, pattern=r"^[^\x00]+$")] = None,
    limit: Limit = 100,
) -> OptOutPage:
    """Numbers every campaign skips, in number order."""
    found = await optouts.list_opt_outs(ctx.store, cursor or "", limit)
    return OptOutPage(
        opt_outs=[OptOutOut(number=a, source=s, since=t) for a, s, t in found],
        next_cursor=found[-1][0] if len(found) == limit else None,
    )


def _number(raw: str, region: str) -> str:
    try:
        return normalize_recipient(raw, region)
    except ValueError as exc:
        raise BadRequest(str(exc), [{"field": "number", "message": str(exc)}]) from None


@router.post("/opt-outs", response_model=OptOutReply, summary="Put a number on the opt-out list")
async def add_opt_out(request: OptOutRequest, ctx: Ctx, _: Sender) -> OptOutReply:
    """Every campaign created from now on skips it."""
    number = _number(request.number, ctx.settings.default_region)
    added = await optouts.add_opt_out(ctx.store, number, "api", datetime.now(UTC))
    return OptOutReply(number=number, changed=added)


@router.delete(
    "/opt-outs/{address}",
    response_model=OptOutReply,
    summary="Take a number off the list",
    responses=responses(404),
)
async def remove_opt_out(address: Address, ctx: Ctx, _: Sender) -> OptOutReply:
    """Campaigns created from now on may send to it again."""
    number = _number(address, ctx.settings.default_region)
    return OptOutReply(number=number, changed=await optouts.remove_opt_out(ctx.store, number))
