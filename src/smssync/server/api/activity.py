"""Activity over a range: SMS in and out per hour or day, and each phone's delivery rate."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from smssync.errors import BadRequest
from smssync.records import ApiKey, Scope
from smssync.serialize import activity_json, device_activity_json, iso
from smssync.server.api.deps import context, require, responses
from smssync.server.api.models import IsoDatetime
from smssync.server.context import ServerContext
from smssync.store import activity

router = APIRouter(tags=["activity"])

Ctx = Annotated[ServerContext, Depends(context)]
Reader = Annotated[ApiKey, Depends(require(Scope.READ))]


class Bucket(enum.StrEnum):
    """How long one bucket of the chart is."""

    HOUR = "hour"
    DAY = "day"


BUCKETS = {Bucket.HOUR: timedelta(hours=1), Bucket.DAY: timedelta(days=1)}


class ActivityOut(BaseModel):
    """SMS in one bucket: received by phones, sent by them (and of those delivered), failed."""

    start: str
    received: int
    sent: int
    delivered: int
    failed: int


class DeviceActivityOut(BaseModel):
    """The outgoing SMS handed to one phone in the range, and how they fared."""

    device: str
    handed_out: int
    sent: int
    delivered: int
    failed: int
    delivery_rate: float | None


class ActivityReply(BaseModel):
    """Buckets oldest first, every one of the range; phones busiest first."""

    since: str
    until: str
    bucket: Bucket
    buckets: list[ActivityOut]
    devices: list[DeviceActivityOut]


@router.get(
    "/activity",
    response_model=ActivityReply,
    summary="Count SMS over time",
    responses=responses(400),
)
async def read_activity(
    ctx: Ctx,
    _: Reader,
    since: IsoDatetime,
    until: IsoDatetime | None = None,
    bucket: Bucket = Bucket.HOUR,
    utc_offset_minutes: Annotated[int, Query(ge=-14 * 60, le=14 * 60)] = 0,
) -> ActivityReply:
    """Buckets start at whole hours or at midnight ``utc_offset_minutes`` from UTC; at most
    a year of hours in one request."""
    start = since
    end = until if until is not None else datetime.now(UTC)
    offset = timedelta(minutes=utc_offset_minutes)
    try:
        found = await activity.activity(ctx.store, start, end, BUCKETS[bucket], offset)
        phones = await activity.device_activity(ctx.store, start, end)
    except ValueError as error:
        raise BadRequest(str(error)) from None
    return ActivityReply(
        since=iso(start),
        until=iso(end),
        bucket=bucket,
        buckets=[ActivityOut.model_validate(activity_json(b)) for b in found],
        devices=[DeviceActivityOut.model_validate(device_activity_json(d)) for d in phones],
    )
