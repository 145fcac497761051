"""Phones: which is online, when each was last seen, its battery and queue; adding one
shows the QR code the SMSsync app scans."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import segno
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from smssync.dashboard.guard import Visitor, action, context, feed, page
from smssync.dashboard.render import fragment, render
from smssync.errors import Conflict
from smssync.records import Role, is_online
from smssync.settings import Settings
from smssync.store import devices, messages
from smssync.store.engine import Database


def unreachable_reason(settings: Settings) -> str | None:
    """Tell why phones cannot reach the URL they are given (a loopback or unspecified
    address), or None when it looks reachable."""
    host = urlsplit(settings.base_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is this machine itself: a phone cannot reach it."
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.is_loopback or address.is_unspecified:
        return f"{host} is this machine itself: a phone cannot reach it."
    return None


async def _phones(store: Database) -> tuple[list[dict[str, Any]], int]:
    now = datetime.now(UTC)
    found = await devices.all_devices(store)
    depths = await messages.queue_depths(store)
    batteries = await devices.battery_levels(store)
    rows = [
        {
            "device": d,
            "online": is_online(d.last_seen_at, d.settings.liveness_s, now),
            "battery": batteries.get(d.id),
            "queue": depths.get(d.name, 0),
        }
        for d in found
    ]
    return rows, depths.get(None, 0)


@page()
async def phones_page(request: Request, who: Visitor) -> Response:
    """List every phone: online or not, last seen, battery, app, queue depth."""
    rows, unassigned = await _phones(context(request).store)
    return render(request, "phones.html", visitor=who, phones=rows, unassigned=unassigned)


@feed
async def phones_rows(request: Request, who: Visitor) -> Response:
    """Return the phones' table rows as they are now (the page refreshes them: a phone
    going online or offline shows without a reload)."""
    rows, unassigned = await _phones(context(request).store)
    return JSONResponse(
        {"html": fragment("phone_rows.html", phones=rows), "unassigned": unassigned},
        headers={"cache-control": "no-store"},
    )


def _add_form(request: Request, who: Visitor, error: str = "", status: int = 200) -> Response:
    return render(
        request,
        "phone_add.html",
        status=status,
        visitor=who,
        error=error,
        warning=unreachable_reason(context(request).settings),
        setup=None,
    )


@page(Role.ADMIN)
async def add_page(request: Request, who: Visitor) -> Response:
    """Show the form that registers a phone."""
    return _add_form(request, who)


@action(Role.ADMIN)
async def add(request: Request, who: Visitor, form: FormData) -> Response:
    """Register a phone and show its Sync URL, secret and QR code (once)."""
    ctx = context(request)
    name = form.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 100:
        return _add_form(request, who, "A phone's name has 1 to 100 characters.", 400)
    try:
        setup = await ctx.add_phone(name.strip())
    except Conflict:
        return _add_form(request, who, f"A phone named {name.strip()!r} exists.", 409)
    qr = segno.make(setup.payload, error="l").png_data_uri(scale=6, border=4)
    return render(
        request,
        "phone_add.html",
        visitor=who,
        error="",
        warning=unreachable_reason(ctx.settings),
        setup=setup,
        qr=qr,
    )
