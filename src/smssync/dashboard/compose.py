"""Compose: one number, a pasted list or an uploaded CSV whose columns fill the text's
``{placeholders}``; a preview of what will be sent, then one SMS or one campaign.

The page works without its script: *Preview* posts the form and shows the first rendered
SMS, the numbers that cannot be read, the opted-out ones and the fleet's estimate; the CSV
read then travels back in a hidden field, so *Send* needs no second upload. The script adds
the live counter, from ``count`` (``smssync.gsm``, so it says what the phones will send).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import re
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from smssync import compose, regions
from smssync.dashboard.campaigns import campaign_url
from smssync.dashboard.conversations import thread_url
from smssync.dashboard.guard import Visitor, action, context, feed, page, read_form, upload_reader
from smssync.dashboard.render import render
from smssync.dashboard.sessions import same_token
from smssync.records import Role, SendWindow, new_outbound
from smssync.store import campaigns, optouts, queue, release

#: The largest upload (the whole form, CSV included) and the most rows of one bulk send
#: from the dashboard; the API takes more (``MAX_RECIPIENTS``) for a script's lists.
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
MAX_ROWS = 10_000
#: The longest text (the API's bound on a template).
MAX_TEXT = 5000
#: Rendered SMS shown in a preview, and unsendable numbers listed back at most.
PREVIEW = 5
SHOWN_UNSENT = 500
TOO_LARGE = f"The form is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB: split the CSV."
#: A pasted list: numbers one per line, or separated by commas or semicolons.
_SEPARATORS = re.compile(r"[\n,;]+")
ENCODINGS = {"gsm7": "GSM-7", "ucs2": "UCS-2"}


@dataclasses.dataclass(frozen=True)
class Draft:
    """What the person typed, shown again with a preview or a problem."""

    text: str = ""
    to: str = ""
    csv_text: str = ""
    csv_name: str = ""
    region: str = ""
    window_from: str = ""
    window_to: str = ""
    window_tz: str = ""
    name: str = ""


def _field(form: FormData, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


async def _draft(form: FormData, region: str) -> tuple[Draft, list[str]]:
    """Read the form; a new upload replaces the CSV a preview carried."""
    problems: list[str] = []
    csv_text, csv_name = "", ""
    carried = form.get("csv_text")
    if isinstance(carried, str):
        csv_text, csv_name = carried, _field(form, "csv_name")
    upload = form.get("csv")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read()
        try:
            csv_text, csv_name = raw.decode("utf-8-sig"), upload.filename[:200]
        except UnicodeDecodeError:
            problems.append("The CSV is not UTF-8 text: save it as “CSV UTF-8”.")
    text = form.get("text")
    draft = Draft(
        text=text if isinstance(text, str) else "",
        to=_field(form, "to", MAX_UPLOAD_BYTES),  # the body's bound: nothing cut off
        csv_text=csv_text,
        csv_name=csv_name,
        region=_field(form, "region", 10).upper() if "region" in form else region,
        window_from=_field(form, "window_from", 10),
        window_to=_field(form, "window_to", 10),
        window_tz=_field(form, "window_tz", 64),
        name=_field(form, "name", 100),
    )
    return draft, problems


def _window(draft: Draft, problems: list[str]) -> SendWindow | None:
    if not draft.window_from and not draft.window_to:
        if draft.window_tz:
            problems.append("A time zone needs a window: give its start and end.")
        return None
    try:
        span = f"{draft.window_from}-{draft.window_to}"
        return compose.parse_window(span, draft.window_tz or None)
    except ValueError as exc:
        problems.append(f"Send window: {exc}.")
        return None


def _rows(draft: Draft, problems: list[str]) -> list[dict[str, str]]:
    if draft.csv_text.strip() and draft.to.strip():
        # Either would leave the other's numbers out without a word.
        problems.append("Give numbers or a CSV, not both.")
        return []
    if draft.csv_text.strip():
        try:
            rows = compose.read_csv(draft.csv_text)
        except (ValueError, csv.Error) as exc:
            problems.append(f"The CSV cannot be read: {exc}.")
            return []
        if not rows:
            problems.append("The CSV has a header line and no row.")
    else:
        rows = [{"to": n.strip()} for n in _SEPARATORS.split(draft.to) if n.strip()]
        if not rows:
            problems.append("Give a number, a list of numbers or a CSV file.")
    if len(rows) > MAX_ROWS:
        problems.append(f"At most {MAX_ROWS:,} recipients at once ({len(rows):,} given).")
    return rows


def _check(draft: Draft, problems: list[str]) -> None:
    if not draft.text.strip():
        problems.append("Type the text to send.")
    elif len(draft.text) > MAX_TEXT or "\x00" in draft.text:
        problems.append(f"A text has at most {MAX_TEXT} characters.")
    if draft.region and not regions.known(draft.region):
        problems.append(f"{draft.region!r} is not a country code (e.g. KE, GB, US).")


def label(stats: compose.TextStats) -> str:
    """Say a text's counters as the page shows them."""
    parts = stats.segments if stats.characters else 0
    return f"{stats.characters} characters · {ENCODINGS[stats.encoding]} · {parts} SMS"


def _view(plan: compose.Plan, phones: int, per_minute: int, csv_rows: bool) -> dict[str, Any]:
    """Describe a plan for the page: counters, preview, what will not be sent, estimate."""
    unsent = [
        {"entry": index + (2 if csv_rows else 1), "to": r.to_raw, "why": r.error or "not sendable"}
        for index, r in plan.invalid
    ]
    opted = sum(1 for _, r in plan.invalid if r.error == compose.OPTED_OUT)
    return {
        "label": label(plan.stats),
        "recipients": len(plan.campaign.recipients),
        "sendable": len(plan.campaign.recipients) - len(plan.invalid),
        "segments": plan.segments,
        "preview": plan.preview,
        "unsent": unsent[:SHOWN_UNSENT],
        "unsent_total": len(unsent),
        "opted_out": opted,
        "invalid": len(unsent) - opted,
        "entry_word": "CSV line" if csv_rows else "entry",
        "phones": phones,
        "per_minute": per_minute,
        "minutes": compose.estimate_minutes(plan.segments, per_minute),
        "region": plan.campaign.region,
    }


def _page(
    request: Request,
    who: Visitor,
    draft: Draft,
    *,
    status: int = 200,
    problems: list[str] | None = None,
    plan: dict[str, Any] | None = None,
    fleet: tuple[int, int] = (0, 0),
) -> Response:
    return render(
        request,
        "compose.html",
        status=status,
        visitor=who,
        draft=draft,
        problems=problems or [],
        plan=plan,
        default_region=context(request).settings.default_region,
        phones=fleet[0],
        per_minute=fleet[1],
        max_rows=MAX_ROWS,
        max_mb=MAX_UPLOAD_BYTES // (1024 * 1024),
    )


@page(Role.OPERATOR)
async def compose_page(request: Request, who: Visitor) -> Response:
    """Show the empty form with the default region and the fleet's pacing."""
    ctx = context(request)
    draft = Draft(region=ctx.settings.default_region, to=request.query_params.get("to", "")[:64])
    return _page(request, who, draft, fleet=await campaigns.fleet(ctx.store))


@action(read=upload_reader(MAX_UPLOAD_BYTES), too_large=TOO_LARGE)
async def submit(request: Request, who: Visitor, form: FormData) -> Response:
    """Preview, or send: one number is one SMS (a conversation's), a list or CSV one
    campaign whose page it leads to."""
    ctx = context(request)
    draft, problems = await _draft(form, ctx.settings.default_region)
    _check(draft, problems)
    window = _window(draft, problems)
    rows = _rows(draft, problems) if not problems else []
    sending = form.get("do") == "send"
    fleet = await campaigns.fleet(ctx.store)
    if problems:
        return _page(request, who, draft, status=400, problems=problems, fleet=fleet)
    name = draft.name or f"{who.user.name} {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    try:
        # In a thread: 10,000 rows take a second of CPU, which would stall every phone.
        plan = await asyncio.to_thread(
            compose.plan, name, draft.text, rows, draft.region, window=window, preview=PREVIEW
        )
    except ValueError as exc:
        return _page(request, who, draft, status=400, problems=[f"{exc}."], fleet=fleet)
    single = not draft.csv_text and len(rows) == 1 and window is None
    if not single:
        numbers = [r.to_addr for r in plan.campaign.recipients if r.to_addr]
        plan = compose.without(plan, await optouts.opted_out_among(ctx.store, numbers), PREVIEW)
    view = _view(plan, *fleet, csv_rows=bool(draft.csv_text))
    if not sending or not plan.segments:
        if sending:
            problems.append("No recipient can be sent: see why below.")
        status = 400 if problems else 200
        return _page(request, who, draft, status=status, problems=problems, plan=view, fleet=fleet)
    now = datetime.now(UTC)
    if single:
        return await _send_one(request, plan, now)
    # No device is named, so no NotFound: the campaign goes through the usual routing.
    made = await campaigns.create_campaign(ctx.store, plan.campaign, now)
    # The first minutes go to the queue at once, as the API does; the loop does the rest.
    await ctx.store.write(release.release, made.id, now)
    return RedirectResponse(campaign_url(made.id), status_code=303)


async def _send_one(request: Request, plan: compose.Plan, now: datetime) -> Response:
    """Queue one SMS as a conversation's reply is, and open that conversation."""
    [recipient] = plan.preview
    to_addr, content = recipient.to_addr or "", recipient.content or ""
    await queue.enqueue(context(request).store, [new_outbound(to_addr, content, None, now)])
    return RedirectResponse(thread_url(to_addr), status_code=303)


@feed
async def count(request: Request, who: Visitor) -> Response:
    """Return the counters of a text (characters, encoding, SMS parts) and its
    placeholders, for the live counter under the compose box."""
    form = await read_form(request)
    if not same_token(who.session, form.get("csrf")):
        return JSONResponse({"ok": False, "error": "bad csrf token", "status": 403}, 403)
    text = form.get("text")
    text = text[:MAX_TEXT] if isinstance(text, str) else ""
    stats = compose.text_stats(text)
    try:
        names, problem = compose.placeholders(text), None
    except ValueError as exc:
        names, problem = [], str(exc)
    return JSONResponse(
        {
            "characters": stats.characters,
            "encoding": stats.encoding,
            "segments": stats.segments if text else 0,
            "label": label(stats),
            "placeholders": names,
            "problem": problem,
        },
        headers={"cache-control": "no-store"},
    )
