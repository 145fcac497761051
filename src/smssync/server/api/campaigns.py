"""Campaigns (bulk sends): create from a template and a list or CSV, read, pause, resume,
cancel, and export the results."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse, StreamingResponse

from smssync import compose
from smssync.errors import BadRequest, NotFound
from smssync.records import ApiKey, Campaign, Scope, SendWindow
from smssync.serialize import (
    RESULT_COLUMNS,
    campaign_json,
    campaign_result_json,
    plan_json,
    spreadsheet_row,
)
from smssync.server.api.campaign_models import (
    CampaignOut,
    CampaignPage,
    CampaignPlan,
    CampaignReply,
    CampaignRequest,
)
from smssync.server.api.deps import context, require, responses
from smssync.server.context import ServerContext
from smssync.store import campaigns as store
from smssync.store import optouts, release

router = APIRouter(tags=["campaigns"])

Ctx = Annotated[ServerContext, Depends(context)]
Sender = Annotated[ApiKey, Depends(require(Scope.SEND))]
Reader = Annotated[ApiKey, Depends(require(Scope.READ))]
CampaignId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The campaign's id.")]
#: Recipients read per query of the results export.
EXPORT_PAGE = 1000


def campaign_out(campaign: Campaign) -> CampaignOut:
    """Describe a campaign (the one shape: ``serialize.campaign_json``)."""
    return CampaignOut.model_validate(campaign_json(campaign))


def _rows(request: CampaignRequest) -> list[dict[str, str]]:
    if (request.to is None) == (request.csv is None):
        message = "give the recipients as to (a list) or csv, not both"
        raise BadRequest(message, [{"field": "to", "message": message}])
    if request.to is not None:
        return [{"to": number} for number in request.to]
    try:
        rows = compose.read_csv(request.csv or "")
    except (ValueError, csv.Error) as exc:
        raise BadRequest(f"csv: {exc}", [{"field": "csv", "message": str(exc)}]) from None
    if not rows:
        raise BadRequest("the CSV has no rows", [{"field": "csv", "message": "no rows"}])
    if len(rows) > 100_000:
        raise BadRequest("at most 100000 recipients", [{"field": "csv", "message": "too many"}])
    return rows


def _window(request: CampaignRequest) -> SendWindow | None:
    if request.window is None:
        return None
    try:
        return compose.parse_window(
            f"{request.window.start}-{request.window.end}", request.window.tz
        )
    except ValueError as exc:
        raise BadRequest(str(exc), [{"field": "window", "message": str(exc)}]) from None


@router.post(
    "/campaigns",
    status_code=201,
    response_model=CampaignPlan,
    summary="Create a campaign (bulk send), or preview one",
    responses=responses(413),
)
async def create(request: CampaignRequest, ctx: Ctx, key: Sender) -> JSONResponse:
    """Render the template for every recipient and hold them for release at the fleet's
    pacing, inside the window. Numbers that cannot be read are listed in ``invalid``, and
    opted-out numbers counted, never sent. ``dry_run`` answers 200 and stores nothing.
    400 when no recipient can be sent or ``device`` names no device."""
    rows = _rows(request)
    window = _window(request)
    region = request.region or ctx.settings.default_region
    try:
        # In a thread: normalising and rendering 100,000 rows takes seconds of CPU, which on
        # the event loop would stall every phone this process serves.
        plan = await asyncio.to_thread(
            compose.plan,
            request.name,
            request.template,
            rows,
            region,
            column=request.number_column,
            device=request.device,
            window=window,
            api_key_id=key.id,
            preview=request.preview,
        )
    except ValueError as exc:
        raise BadRequest(str(exc), [{"field": "template", "message": str(exc)}]) from None
    numbers = [r.to_addr for r in plan.campaign.recipients if r.to_addr]
    blocked = await optouts.opted_out_among(ctx.store, numbers)
    plan = compose.without(plan, blocked, request.preview)
    phones, per_minute = await store.fleet(ctx.store, request.device)
    answer = plan_json(plan, phones, per_minute)
    if not plan.segments:
        errors = [{"index": i["index"], "message": i["message"]} for i in answer["invalid"]]
        raise BadRequest("no recipient can be sent", errors[:1000])
    if request.dry_run:
        return JSONResponse({"ok": True, "campaign": None} | answer, status_code=200)
    now = datetime.now(UTC)
    try:
        made = await store.create_campaign(ctx.store, plan.campaign, now)
    except NotFound as exc:
        raise BadRequest(exc.message, [{"field": "device", "message": exc.message}]) from None
    # The first minutes go to the queue at once; the server's campaign loop does the rest.
    await ctx.store.write(release.release, made.id, now)
    made = await store.campaign(ctx.store, made.id)
    body = {"ok": True, "campaign": campaign_json(made)} | answer
    return JSONResponse(CampaignPlan.model_validate(body).model_dump(mode="json"), status_code=201)


@router.get("/campaigns", response_model=CampaignPage, summary="List campaigns")
async def list_campaigns(
    ctx: Ctx,
    _: Reader,
    cursor: Annotated[str | None, Query(max_length=10, pattern=r"^[0-9]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> CampaignPage:
    """Newest first, with each campaign's counts."""
    found = await store.list_campaigns(ctx.store, int(cursor) if cursor else None, limit)
    return CampaignPage(
        campaigns=[campaign_out(c) for c in found],
        next_cursor=str(found[-1].id) if len(found) == limit else None,
    )


@router.get(
    "/campaigns/{campaign_id}",
    response_model=CampaignReply,
    summary="Read a campaign and its counts",
    responses=responses(404),
)
async def read(campaign_id: CampaignId, ctx: Ctx, _: Reader) -> CampaignReply:
    """Recipients by state (pending, released, invalid, opted_out, cancelled) and the
    released messages by status (queued, sent, delivered, failed…)."""
    return CampaignReply(campaign=campaign_out(await store.campaign(ctx.store, campaign_id)))


@router.post(
    "/campaigns/{campaign_id}/pause",
    response_model=CampaignReply,
    summary="Pause a campaign",
    responses=responses(404, 409, 413),
)
async def pause(campaign_id: CampaignId, ctx: Ctx, _: Sender) -> CampaignReply:
    """Release nothing more; queued messages no phone has taken go back to pending."""
    paused = await store.pause_campaign(ctx.store, campaign_id, datetime.now(UTC))
    return CampaignReply(campaign=campaign_out(paused))


@router.post(
    "/campaigns/{campaign_id}/resume",
    response_model=CampaignReply,
    summary="Resume a paused campaign",
    responses=responses(404, 409, 413),
)
async def resume(campaign_id: CampaignId, ctx: Ctx, _: Sender) -> CampaignReply:
    """Release the pending recipients again."""
    resumed = await store.resume_campaign(ctx.store, campaign_id, datetime.now(UTC))
    return CampaignReply(campaign=campaign_out(resumed))


@router.post(
    "/campaigns/{campaign_id}/cancel",
    response_model=CampaignReply,
    summary="Cancel a campaign",
    responses=responses(404, 409, 413),
)
async def cancel(campaign_id: CampaignId, ctx: Ctx, _: Sender) -> CampaignReply:
    """Cancel pending recipients and queued messages; what a phone took goes on."""
    cancelled = await store.cancel_campaign(ctx.store, campaign_id, datetime.now(UTC))
    return CampaignReply(campaign=campaign_out(cancelled))


@router.get(
    "/campaigns/{campaign_id}/results.csv",
    summary="Export a campaign's results as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **responses(404)},
)
async def results_csv(campaign_id: CampaignId, ctx: Ctx, _: Reader) -> StreamingResponse:
    """One row per recipient, in the input's order: the number as given and normalised,
    its state, the error of a number not sent, and its message's status and times."""
    await store.campaign(ctx.store, campaign_id)  # 404 before the stream starts
    return StreamingResponse(
        export_rows(ctx, campaign_id),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="campaign-{campaign_id}.csv"'},
    )


async def export_rows(ctx: ServerContext, campaign_id: int) -> AsyncIterator[str]:
    """Yield the CSV a page of recipients at a time (a keyset walk)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, RESULT_COLUMNS)
    writer.writeheader()
    after = 0
    while True:
        page = await store.campaign_results(ctx.store, campaign_id, after, EXPORT_PAGE)
        for result in page:
            writer.writerow(spreadsheet_row(campaign_result_json(result)))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(page) < EXPORT_PAGE:
            return
        after = page[-1].id
