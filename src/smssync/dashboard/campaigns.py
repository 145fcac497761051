"""Campaigns: the list, newest first; a campaign's page with its progress and counts, live
from the store; pause, resume and cancel; and its results as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from smssync.dashboard.guard import Visitor, action, context, feed, page, refused
from smssync.dashboard.render import PREFIX, fragment, render
from smssync.errors import Conflict, NotFound
from smssync.records import FINAL_CAMPAIGN_STATUSES, Campaign
from smssync.serialize import RESULT_COLUMNS, campaign_result_json, spreadsheet_row
from smssync.store import campaigns as store
from smssync.store.engine import Database

#: Campaigns on a page of the list; recipients read per query of the export.
PAGE = 50
EXPORT_PAGE = 1000
#: Unsent recipients listed on a campaign's page (the export has every one).
SHOWN_UNSENT = 100
#: The counts a person sees, each the sum of these recipient states (``r:``) and message
#: statuses (``m:``), in the order shown.
GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("held", "Held", ("r:pending",)),
    ("queued", "Queued", ("m:queued", "m:dispatched", "m:accepted")),
    ("sent", "Sent", ("m:sent", "m:delivery_unknown")),
    ("delivered", "Delivered", ("m:delivered",)),
    ("failed", "Failed", ("m:failed", "m:undelivered", "m:expired")),
    ("cancelled", "Cancelled", ("r:cancelled", "m:cancelled")),
    ("skipped", "Skipped (opted out)", ("r:opted_out",)),
    ("invalid", "Invalid or repeated", ("r:invalid",)),
)
_LARGEST_ID = 2**31 - 1


def campaign_url(campaign_id: int) -> str:
    """Return the path of a campaign's page."""
    return f"{PREFIX}/campaigns/{campaign_id}"


def _id(value: str) -> int | None:
    return int(value) if value.isdigit() and 0 < int(value) <= _LARGEST_ID else None


def counts(campaign: Campaign) -> dict[str, Any]:
    """Describe a campaign's progress and counts for its template."""
    by = {f"r:{k}": v for k, v in campaign.recipients.items()}
    by |= {f"m:{k}": v for k, v in campaign.messages.items()}
    groups = [(key, title, sum(by.get(part, 0) for part in parts)) for key, title, parts in GROUPS]
    released = campaign.recipients.get("released", 0)
    sendable = released + campaign.recipients.get("pending", 0)
    values = {key: value for key, _, value in groups}
    return {
        "campaign": campaign,
        "groups": groups,
        "released": released,
        "sendable": sendable,
        "finished": values["delivered"] + values["failed"],
        "final": campaign.status in FINAL_CAMPAIGN_STATUSES,
    }


@page()
async def campaigns_page(request: Request, who: Visitor) -> Response:
    """List campaigns newest first, a page at a time (keyset on the id)."""
    raw = request.query_params.get("before", "")
    before = _id(raw)
    if raw and before is None:
        return refused(request, "That is not a page of the campaigns.", status=400)
    found = await store.list_campaigns(context(request).store, before, PAGE + 1)
    shown = found[:PAGE]
    older = f"{PREFIX}/campaigns?before={shown[-1].id}" if len(found) > PAGE else None
    return render(
        request,
        "campaigns.html",
        visitor=who,
        rows=[counts(c) for c in shown],
        older=older,
    )


async def _campaign(request: Request) -> Campaign | None:
    campaign_id = _id(request.path_params["campaign_id"])
    if campaign_id is None:
        return None
    try:
        return await store.campaign(context(request).store, campaign_id)
    except NotFound:
        return None


@page()
async def campaign_page(request: Request, who: Visitor) -> Response:
    """Show a campaign: its text, window, progress and counts (live), its actions, and the
    first numbers that will not be sent."""
    found = await _campaign(request)
    if found is None:
        return refused(request, "No such campaign.", status=404)
    unsent = await store.unsent_recipients(context(request).store, found.id, SHOWN_UNSENT)
    return render(
        request,
        "campaign.html",
        visitor=who,
        url=campaign_url(found.id),
        c=counts(found),
        unsent=unsent,
        unsent_total=found.recipients.get("invalid", 0) + found.recipients.get("opted_out", 0),
        error=request.query_params.get("error") == "state",
    )


@feed
async def campaign_counts(request: Request, who: Visitor) -> Response:
    """Return the campaign's progress and counts as the page's live section."""
    found = await _campaign(request)
    if found is None:
        return JSONResponse({"ok": False, "error": "no such campaign", "status": 404}, 404)
    view = counts(found)
    html = fragment("campaign_counts.html", c=view, visitor=who, url=campaign_url(found.id))
    return JSONResponse(
        {"status": found.status.value, "final": view["final"], "html": html},
        headers={"cache-control": "no-store"},
    )


Change = Callable[[Database, int, datetime], Awaitable[Campaign]]


async def _change(request: Request, verb: Change) -> Response:
    campaign_id = _id(request.path_params["campaign_id"])
    if campaign_id is None:
        return refused(request, "No such campaign.", status=404)
    try:
        await verb(context(request).store, campaign_id, datetime.now(UTC))
    except NotFound:
        return refused(request, "No such campaign.", status=404)
    except Conflict:
        # Already paused, resumed, cancelled or done (another person, or another tab).
        return RedirectResponse(f"{campaign_url(campaign_id)}?error=state", status_code=303)
    return RedirectResponse(campaign_url(campaign_id), status_code=303)


@action()
async def pause(request: Request, who: Visitor, form: FormData) -> Response:
    """Pause a running campaign: nothing more is released."""
    return await _change(request, store.pause_campaign)


@action()
async def resume(request: Request, who: Visitor, form: FormData) -> Response:
    """Resume a paused campaign."""
    return await _change(request, store.resume_campaign)


@action()
async def cancel(request: Request, who: Visitor, form: FormData) -> Response:
    """Cancel a campaign: held recipients and queued messages are cancelled."""
    return await _change(request, store.cancel_campaign)


@page()
async def results_csv(request: Request, who: Visitor) -> Response:
    """Stream a campaign's results, one row per recipient in the input's order (the
    columns of the API's export)."""
    found = await _campaign(request)
    if found is None:
        return refused(request, "No such campaign.", status=404)
    return StreamingResponse(
        _export(context(request).store, found.id),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="campaign-{found.id}.csv"',
            "cache-control": "no-store",
        },
    )


async def _export(db: Database, campaign_id: int) -> AsyncIterator[str]:
    # A keyset walk a thousand rows at a time: memory stays flat for 100,000 recipients.
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, RESULT_COLUMNS)
    writer.writeheader()
    after = 0
    while True:
        rows = await store.campaign_results(db, campaign_id, after, EXPORT_PAGE)
        for result in rows:
            writer.writerow(spreadsheet_row(campaign_result_json(result)))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if len(rows) < EXPORT_PAGE:
            return
        after = rows[-1].id
