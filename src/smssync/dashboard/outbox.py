"""Outbox: every outgoing SMS, newest first, with its status, phone and history; an operator
cancels one that no phone has accepted yet, or sends a failed or expired one again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smssync.dashboard.guard import Visitor, action, context, page, refused
from smssync.dashboard.render import PREFIX, render
from smssync.errors import Conflict, NotFound
from smssync.records import OutboundStatus
from smssync.store import devices, messages, results

PAGE = 50
#: What an operator may try to cancel (``results.cancel`` decides: a dispatched SMS only while
#: its phone must still confirm it).
CANCELLABLE = frozenset({OutboundStatus.QUEUED, OutboundStatus.DISPATCHED})
#: What an operator may send again (``results.retry``, as ``POST /messages/{id}/retry``).
RETRYABLE = frozenset(OutboundStatus(s) for s in results.RETRYABLE)
#: The filter choices, by status value ("" is every status).
STATUSES = ["", *(s.value for s in OutboundStatus)]
#: What ``?error=`` may say (a fixed set: a link never puts its own words on the page).
ERRORS = {
    "cancel": "A phone has that SMS already (accepted, or handed out without confirmation):"
    " it can no longer be cancelled.",
    "retry": "Only a failed or expired SMS can be sent again: that one is not (any more).",
}


def _link(**params: str | int) -> str:
    kept = {k: v for k, v in params.items() if v}
    return f"{PREFIX}/outbox" + (f"?{urlencode(kept)}" if kept else "")


@page()
async def outbox_page(request: Request, who: Visitor) -> Response:
    """List outgoing SMS newest first, a page at a time (keyset on the row id), of one
    status or one phone when asked."""
    before_raw = request.query_params.get("before", "")
    status = request.query_params.get("status", "")
    phone = request.query_params.get("phone", "")
    if (
        (before_raw and not before_raw.isdigit())
        or len(before_raw) > 18
        or status not in STATUSES
        or len(phone) > 100
    ):
        return refused(request, "That is not a page of the outbox.", status=400)
    before = int(before_raw) if before_raw else None
    store = context(request).store
    found = await messages.outbound_newest(store, before, PAGE + 1, status or None, phone or None)
    shown = found[:PAGE]
    older = None
    if len(found) > PAGE:
        older = _link(before=shown[-1].seq, status=status, phone=phone)
    return render(
        request,
        "outbox.html",
        visitor=who,
        items=shown,
        older=older,
        chosen=status,
        statuses=STATUSES,
        phones=[d.name for d in await devices.all_devices(store)],
        phone=phone,
        cancellable=CANCELLABLE,
        retryable=RETRYABLE,
        error=ERRORS.get(request.query_params.get("error", "")),
    )


def _back(form: FormData, error: str = "") -> Response:
    # Back to the list the person acted from (its filters are the form's, checked again).
    status, phone = form.get("status", ""), form.get("phone", "")
    status = status if isinstance(status, str) and status in STATUSES else ""
    phone = phone if isinstance(phone, str) and len(phone) <= 100 else ""
    return RedirectResponse(_link(status=status, phone=phone, error=error), status_code=303)


async def _change(
    request: Request, form: FormData, verb: Callable[..., Awaitable[object]], error: str
) -> Response:
    # Cancel and retry alike: the store verb decides; a state it refuses is said on the list.
    message_id = request.path_params["message_id"]
    if len(message_id) > 64:
        return refused(request, "No such SMS.", status=404)
    try:
        await verb(context(request).store, message_id, datetime.now(UTC))
    except NotFound:
        return refused(request, "No such SMS.", status=404)
    except Conflict:
        return _back(form, error)
    return _back(form)


@action()
async def cancel(request: Request, who: Visitor, form: FormData) -> Response:
    """Cancel one outgoing SMS while no phone has accepted it; say so when one has."""
    return await _change(request, form, results.cancel, "cancel")


@action()
async def retry(request: Request, who: Visitor, form: FormData) -> Response:
    """Queue a failed or expired SMS again as a new attempt; say so when it is neither."""
    return await _change(request, form, results.retry, "retry")
