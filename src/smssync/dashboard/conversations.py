"""Conversations: threads by the other party's number, one thread, its reply box, and the
feed the thread's script polls for what changed (read from the store, not from memory)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from smssync.addresses import looks_numeric, normalize_recipient
from smssync.dashboard.guard import Visitor, action, context, feed, page, refused
from smssync.dashboard.render import PREFIX, fragment, render
from smssync.dashboard.thread_query import read_query
from smssync.records import Inbound, Outbound, SearchHits, Thread, ThreadCursor, new_outbound
from smssync.store import conversations, devices, queue, search, threads
from smssync.store.rows import to_us

#: Threads on a page, and SMS of each direction on a thread's page.
THREADS_PER_PAGE = 50
MESSAGES_PER_PAGE = 50
#: The longest reply (the API's bound on a body).
MAX_REPLY = 5000
#: What a redirect back to a page may say went wrong: a code in the URL, never its text,
#: so that no link can make the page say something else.
PROBLEMS = {
    "number": "That is not a phone number.",
    "empty": "Type a reply.",
    "long": f"A reply has at most {MAX_REPLY} characters.",
}


def _problem(request: Request) -> str:
    return PROBLEMS.get(request.query_params.get("error", ""), "")


def _count(value: str | None) -> int | None:
    # A cursor is a row id or a time in microseconds: digits only, or a 400.
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise ValueError(value)
    return int(value)


def thread_url(number: str) -> str:
    """Return the path of a thread's page."""
    return f"{PREFIX}/conversations/{quote(number, safe='+')}"


def item(message: Inbound | Outbound) -> dict[str, Any]:
    """Describe one SMS of a thread for its template."""
    if isinstance(message, Inbound):
        return {
            "key": f"in-{message.id}",
            "direction": "in",
            "text": message.content,
            "at": message.received_at,
            "device": message.device,
            "status": "received",
            "reason": None,
            "history": (),
        }
    return {
        "key": f"out-{message.message_id}",
        "direction": "out",
        "text": message.content,
        "at": message.created_at,
        "device": message.device,
        "status": message.status.value,
        "reason": message.reason,
        "history": message.history,
    }


@page()
async def threads_page(request: Request, who: Visitor) -> Response:
    """List threads, the most recently active first, narrowed to a phone and dates;
    or search them, by number (digits) or by the text of their SMS."""
    ctx = context(request)
    try:
        asked = read_query(request.query_params, ctx.settings.default_region)
    except ValueError as error:
        return refused(request, str(error), 400)
    device_id = None
    if asked.phone:
        device = await devices.device_by_name(ctx.store, asked.phone)
        if device is None:
            return refused(request, f"No phone is named “{asked.phone}”.", 400)
        device_id = device.id
    only = asked.only(device_id)
    older: str | None = None
    hits: SearchHits | None = None
    found: list[Thread] = []
    if asked.search and asked.digits is None:
        hits = await search.search_text(
            ctx.store,
            asked.search,
            only=only,
            before_inbound=asked.before_in,
            before_outbound=asked.before_out,
            limit=THREADS_PER_PAGE,
        )
        if hits.more:
            cursor = {"before_in": hits.before_inbound, "before_out": hits.before_outbound}
            older = f"{PREFIX}/conversations?{urlencode(asked.link(**cursor))}"
    elif asked.search and asked.digits is not None:
        found, after = await search.search_numbers(
            ctx.store, asked.digits, only=only, after=asked.after_number, limit=THREADS_PER_PAGE
        )
        if after is not None:
            query = asked.link(after_phase=after.phase, after_key=after.key)
            older = f"{PREFIX}/conversations?{urlencode(query)}"
    else:
        found, before = await conversations.threads(
            ctx.store, only=only, before=asked.before, limit=THREADS_PER_PAGE
        )
        if before is not None:
            query = asked.link(before_at=before.last_at_us, before_number=before.number)
            older = f"{PREFIX}/conversations?{urlencode(query)}"
    # Only the first page of the whole list watches for new activity; the cursor is the
    # newest thread shown (or the start of time on an empty list).
    newest = (
        ThreadCursor(to_us(found[0].last_at), found[0].number) if found else ThreadCursor(0, "")
    )
    return render(
        request,
        "conversations.html",
        visitor=who,
        threads=[row(t) for t in found],
        hits=[hit(m) for m in hits.hits] if hits is not None else None,
        asked=asked,
        search=asked.search,
        older=older,
        live=asked.first_page and not asked.search and not asked.filtered,
        after=newest,
        error=_problem(request),
    )


def hit(message: Inbound | Outbound) -> dict[str, Any]:
    """Describe one SMS a text search found, with the link to its conversation."""
    number = message.from_addr if isinstance(message, Inbound) else message.to_addr
    return {"number": number, "url": thread_url(number), "last": item(message)}


def row(thread: Thread) -> dict[str, Any]:
    """Describe one thread of the list for its template."""
    return {"thread": thread, "url": thread_url(thread.number), "last": item(thread.last)}


@feed
async def threads_changes(request: Request, who: Visitor) -> Response:
    """Return the threads active since the cursor, as list rows to put on top."""
    try:
        at = _count(request.query_params.get("after_at")) or 0
    except ValueError:
        return JSONResponse({"ok": False, "error": "bad cursor", "status": 400}, 400)
    after = ThreadCursor(at, request.query_params.get("after_number", "")[:100])
    store = context(request).store
    found, cursor = await conversations.threads_since(store, after)
    return JSONResponse(
        {
            "after_at": cursor.last_at_us,
            "after_number": cursor.number,
            # Each row carries its own count; the header's total changes with them.
            "unread": threads.unread_label(await threads.total_unread(store)),
            "items": [
                {"key": t.number, "html": fragment("thread_row.html", t=row(t))} for t in found
            ],
        },
        headers={"cache-control": "no-store"},
    )


@page()
async def start(request: Request, who: Visitor) -> Response:
    """Open the thread of a number typed by the person (a new conversation)."""
    raw = request.query_params.get("to", "")
    try:
        number = normalize_recipient(raw, context(request).settings.default_region)
    except ValueError:
        return RedirectResponse(f"{PREFIX}/conversations?error=number", status_code=303)
    return RedirectResponse(thread_url(number), status_code=303)


@page()
async def thread_page(request: Request, who: Visitor) -> Response:
    """Show one thread, both directions interleaved, the oldest first, and a reply box."""
    number = request.path_params["number"]
    try:
        before_in = _count(request.query_params.get("before_in"))
        before_out = _count(request.query_params.get("before_out"))
    except ValueError:
        return refused(request, "That page link is broken.", 400)
    found = await conversations.thread(
        context(request).store,
        number,
        before_inbound=before_in,
        before_outbound=before_out,
        limit=MESSAGES_PER_PAGE,
    )
    newest_page = before_in is None and before_out is None
    if newest_page and await threads.mark_read(context(request).store, number):
        # The header's total was read before this page read the conversation.
        found_unread = await threads.total_unread(context(request).store)
        request.state.unread = threads.unread_label(found_unread)
    older = None
    if found.before_inbound is not None or found.before_outbound is not None:
        query = {"before_in": found.before_inbound or 0, "before_out": found.before_outbound or 0}
        older = f"{thread_url(number)}?{urlencode(query)}"
    return render(
        request,
        "thread.html",
        visitor=who,
        number=number,
        url=thread_url(number),
        items=[item(m) for m in conversations.merged(found)],
        older=older,
        # Only the newest page watches for more: an older page is history.
        live=newest_page,
        # An alphanumeric sender (a bank, an operator) cannot be answered by SMS.
        can_reply=looks_numeric(number),
        after_in=found.after_inbound,
        after_hist=found.after_history,
        error=_problem(request),
    )


@feed
async def changes(request: Request, who: Visitor) -> Response:
    """Return the thread's new and changed SMS since the cursors, as HTML to insert."""
    number = request.path_params["number"]
    try:
        after_in = _count(request.query_params.get("after_in")) or 0
        after_hist = _count(request.query_params.get("after_hist")) or 0
    except ValueError:
        return JSONResponse({"ok": False, "error": "bad cursor", "status": 400}, 400)
    store = context(request).store
    found = await conversations.thread_changes(store, number, after_in, after_hist)
    if found.inbound:
        # The page shows them to the person watching: read, as when opening the thread.
        await threads.mark_read(store, number)
    return JSONResponse(
        {
            "after_in": found.after_inbound,
            "after_hist": found.after_history,
            "items": [
                {"key": view["key"], "html": fragment("message.html", m=view)}
                for view in (item(m) for m in conversations.merged(found))
            ],
        },
        headers={"cache-control": "no-store"},
    )


@action()
async def reply(request: Request, who: Visitor, form: FormData) -> Response:
    """Queue the reply through the usual routing (sticky to the phone that talked to the
    number, any healthy phone otherwise), then show the thread again."""
    ctx = context(request)
    number = request.path_params["number"]
    text = form.get("text")
    back = thread_url(number)
    if not isinstance(text, str) or not text.strip():
        return RedirectResponse(f"{back}?error=empty", 303)
    if len(text) > MAX_REPLY or "\x00" in text:
        return RedirectResponse(f"{back}?error=long", 303)
    try:
        to_addr = normalize_recipient(number, ctx.settings.default_region)
    except ValueError:
        return refused(request, f"{number!r} is not a number an SMS can be sent to.", 400)
    await queue.enqueue(ctx.store, [new_outbound(to_addr, text, None, datetime.now(UTC))])
    return RedirectResponse(thread_url(to_addr), status_code=303)
