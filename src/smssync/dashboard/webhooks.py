"""Webhooks: the receivers of signed events, added and removed by an admin; each one's
recent deliveries, and the dead letters (retries ran out) with a button that sends one
again.

The receivers are not paged (every server process holds them all to route each event);
deliveries and dead letters are, newest first by keyset (``store.deliveries``). A new
receiver's signing secret is shown once, as ``smssync webhook add`` prints it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smssync.dashboard.guard import Visitor, action, context, page, refused, row_id
from smssync.dashboard.render import PREFIX, render
from smssync.errors import NotFound
from smssync.records import DeliveryListing, Event, Role, WebhookEndpoint
from smssync.store import deliveries, rules, webhooks

PAGE = 50
#: What the API takes for a receiver's URL (``models.Url``).
URL = re.compile(r"^https?://[^\s\x00]+$")
URL_MAX = 2000
#: Delivery ids are 64-bit on PostgreSQL.
DELIVERY_IDS = 2**63


async def _endpoints(request: Request) -> list[WebhookEndpoint]:
    return list((await rules.hook_config(context(request).store)).endpoints)


def _before(request: Request) -> tuple[bool, int | None]:
    """Read the keyset cursor ``before``: (valid, value)."""
    raw = request.query_params.get("before", "")
    if not raw:
        return True, None
    found = row_id(raw, DELIVERY_IDS)
    return found is not None, found


def _older(path: str, shown: list[DeliveryListing], more: bool) -> str | None:
    return f"{PREFIX}{path}?before={shown[-1].id}" if more and shown else None


async def _page(
    request: Request,
    who: Visitor,
    *,
    error: str = "",
    url: str = "",
    chosen: frozenset[str] = frozenset(),
    created: dict[str, object] | None = None,
    status: int = 200,
) -> Response:
    valid, before = _before(request)
    if not valid:
        return refused(request, "That is not a page of dead letters.", status=400)
    dead = await deliveries.dead_letters(context(request).store, before, PAGE + 1)
    shown = dead[:PAGE]
    return render(
        request,
        "webhooks.html",
        status=status,
        visitor=who,
        endpoints=await _endpoints(request),
        dead=shown,
        older=_older("/webhooks", shown, len(dead) > PAGE),
        events=[e.value for e in Event],
        error=error,
        url=url,
        chosen=chosen,
        created=created,
        notice=request.query_params.get("done", ""),
    )


@page(Role.ADMIN)
async def webhooks_page(request: Request, who: Visitor) -> Response:
    """List the receivers and the dead letters, with the form that adds a receiver."""
    return await _page(request, who)


@action(Role.ADMIN)
async def add(request: Request, who: Visitor, form: FormData) -> Response:
    """Register a receiver and show its signing secret (only now)."""
    ctx = context(request)
    raw = form.get("url")
    url = raw.strip() if isinstance(raw, str) else ""
    picked = frozenset(v for v in form.getlist("events") if isinstance(v, str))
    known = {e.value for e in Event}
    problem = None
    if not URL.match(url) or len(url) > URL_MAX:
        problem = f"Give an http:// or https:// URL of at most {URL_MAX} characters."
    elif not picked <= known:
        problem = "Choose events from the list."
    else:
        problem = ctx.settings.egress.check_url(url)
    if problem is not None:
        return await _page(request, who, error=problem, url=url, chosen=picked, status=400)
    events = sorted(picked or known)
    secret = ctx.signing_secret()
    endpoint_id = await webhooks.add_webhook(ctx.store, url, events, secret, datetime.now(UTC))
    created = {"id": endpoint_id, "url": url, "secret": secret}
    return await _page(request, who, created=created)


@action(Role.ADMIN)
async def remove(request: Request, who: Visitor, form: FormData) -> Response:
    """Remove a receiver and its deliveries; rules forwarding to it forward nowhere."""
    endpoint_id = row_id(request.path_params["endpoint_id"])
    if endpoint_id is None:
        return refused(request, "No such webhook.", status=404)
    try:
        await webhooks.remove_webhook(context(request).store, endpoint_id)
    except NotFound:
        return refused(request, "No such webhook.", status=404)
    return RedirectResponse(f"{PREFIX}/webhooks?done=removed", status_code=303)


@page(Role.ADMIN)
async def endpoint_page(request: Request, who: Visitor) -> Response:
    """Show one receiver and its deliveries, newest first, a page at a time."""
    endpoint_id = row_id(request.path_params["endpoint_id"])
    endpoint = next((e for e in await _endpoints(request) if e.id == endpoint_id), None)
    if endpoint is None:
        return refused(request, "No such webhook.", status=404)
    valid, before = _before(request)
    if not valid:
        return refused(request, "That is not a page of deliveries.", status=400)
    found = await deliveries.endpoint_deliveries(
        context(request).store, endpoint.id, before, PAGE + 1
    )
    shown = found[:PAGE]
    return render(
        request,
        "webhook.html",
        visitor=who,
        endpoint=endpoint,
        items=shown,
        older=_older(f"/webhooks/{endpoint.id}", shown, len(found) > PAGE),
    )


@action(Role.ADMIN)
async def redeliver(request: Request, who: Visitor, form: FormData) -> Response:
    """Put one dead letter back in the queue with a fresh retry window."""
    ctx = context(request)
    delivery_id = row_id(request.path_params["delivery_id"], DELIVERY_IDS)
    if delivery_id is None:
        return refused(request, "No such delivery.", status=404)
    if not await webhooks.redrive(ctx.store, [delivery_id], datetime.now(UTC)):
        return refused(request, "That delivery is not a dead letter (any more).", status=409)
    # This process sends it at once; the others' dispatchers find it within a second.
    ctx.wake_hooks()
    return RedirectResponse(f"{PREFIX}/webhooks?done=redelivered", status_code=303)
