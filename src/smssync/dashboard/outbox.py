"""Outbox: every outgoing SMS, newest first, with its status, phone and history; an operator
cancels one that no phone has accepted yet."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smssync.dashboard.guard import Visitor, action, context, page, refused
from smssync.dashboard.render import PREFIX, render
from smssync.errors import Conflict, NotFound
from smssync.records import OutboundStatus
from smssync.store import messages, results

PAGE = 50
#: What an operator may still cancel: no phone has accepted it (``results.cancel``).
CANCELLABLE = frozenset({OutboundStatus.QUEUED, OutboundStatus.DISPATCHED})
#: The filter choices, by status value ("" is every status).
STATUSES = ["", *(s.value for s in OutboundStatus)]


@page()
async def outbox_page(request: Request, who: Visitor) -> Response:
    """List outgoing SMS newest first, a page at a time (keyset on the row id)."""
    before_raw = request.query_params.get("before", "")
    status = request.query_params.get("status", "")
    if (before_raw and not before_raw.isdigit()) or status not in STATUSES:
        return refused(request, "That is not a page of the outbox.", status=400)
    before = int(before_raw) if before_raw else None
    found = await messages.outbound_newest(context(request).store, before, PAGE + 1, status or None)
    shown = found[:PAGE]
    older = None
    if len(found) > PAGE:
        older = f"{PREFIX}/outbox?before={shown[-1].seq}" + (f"&status={status}" if status else "")
    return render(
        request,
        "outbox.html",
        visitor=who,
        items=shown,
        older=older,
        chosen=status,
        statuses=STATUSES,
        cancellable=CANCELLABLE,
        error=request.query_params.get("error") == "cancel",
    )


@action()
async def cancel(request: Request, who: Visitor, form: FormData) -> Response:
    """Cancel one outgoing SMS while no phone has accepted it; say so when one has."""
    message_id = request.path_params["message_id"]
    if len(message_id) > 64:
        return refused(request, "No such SMS.", status=404)
    try:
        await results.cancel(context(request).store, message_id, datetime.now(UTC))
    except NotFound:
        return refused(request, "No such SMS.", status=404)
    except Conflict:
        return RedirectResponse(f"{PREFIX}/outbox?error=cancel", status_code=303)
    return RedirectResponse(f"{PREFIX}/outbox", status_code=303)
