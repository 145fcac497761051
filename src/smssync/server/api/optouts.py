"""The opt-out list: numbers every campaign skips (a STOP from the number puts it there)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from smssync.addresses import normalize_recipient
from smssync.errors import BadRequest
from smssync.records import ApiKey, Scope
from smssync.server.api.deps import context, require, responses
from smssync.server.api.models import Number, Strict
from smssync.server.context import ServerContext
from smssync.store import optouts

router = APIRouter(tags=["opt-outs"])

Ctx = Annotated[ServerContext, Depends(context)]
Sender = Annotated[ApiKey, Depends(require(Scope.SEND))]
Reader = Annotated[ApiKey, Depends(require(Scope.READ))]
Limit = Annotated[int, Query(ge=1, le=200)]
Address = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[^\x00]+$", description="The number.")
]


class OptOutRequest(Strict):
    """``POST /opt-outs``: a number every campaign is to skip."""

    number: Number


class OptOutOut(BaseModel):
    """A number on the opt-out list."""

    number: str
    source: str = Field(description="stop (an incoming STOP), cli or api.")
    since: datetime


class OptOutPage(BaseModel):
    """The list in number order; pass ``next_cursor`` as ``cursor``."""

    ok: Literal[True] = True
    opt_outs: list[OptOutOut]
    next_cursor: str | None


class OptOutReply(BaseModel):
    """A number put on the list or taken off it."""

    ok: Literal[True] = True
    number: str
    changed: bool = Field(description="False when it was already so.")


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


@router.post(
    "/opt-outs",
    response_model=OptOutReply,
    summary="Put a number on the opt-out list",
    responses=responses(413),
)
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
