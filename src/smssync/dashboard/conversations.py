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
from smssync.records import Inbound, Outbound, Thread, ThreadCursor, new_outbound
from smssync.store import conversations, queue
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
    """List threads, the most recently active first, optionally searched."""
    search = request.query_params.get("q", "").strip()[:100]
    try:
        at = _count(request.query_params.get("before_at"))
    except ValueError:
        return refused(request, "That page link is broken.", 400)
    number = request.query_params.get("before_number", "")
    before = ThreadCursor(at, number) if at is not None else None
    found, cursor = await conversations.threads(
        context(request).store, search=search or None, before=before, limit=THREADS_PER_PAGE
    )
    older = None
    if cursor is not None:
        query = {"q": search, "before_at": cursor.last_at_us, "before_number": cursor.number}
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
        search=search,
        older=older,
        live=before is None and not search,
        after=newest,
        error=_problem(request),
    )


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
    found, cursor = await conversations.threads_since(context(request).store, after)
    return JSONResponse(
        {
            "after_at": cursor.last_at_us,
            "after_number": cursor.number,
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
        live=before_in is None and before_out is None,
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
    found = await conversations.thread_changes(context(request).store, number, after_in, after_hist)
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
