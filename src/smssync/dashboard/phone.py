"""One phone's page: its state, battery, last alerts, app, queue and send rate; an admin
rotates its secret, disables or enables it, or removes it (after a confirmation step).

The actions call the store verbs the CLI calls (``smssync device rotate-secret``,
``devices.set_disabled``, ``devices.remove_device``), which announce the change to every
process: a rotated secret or a disabled phone is refused at once by every server.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import segno
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smssync.dashboard.guard import Visitor, action, context, page, refused
from smssync.dashboard.phones import unreachable_reason
from smssync.dashboard.render import PREFIX, render
from smssync.errors import NotFound
from smssync.records import Device, Role, is_online
from smssync.store import activity, devices, messages
from smssync.store.engine import Database

#: How many of the phone's own alerts (E8) the page lists.
LAST_ALERTS = 5
#: The send rate's window.
RATE_WINDOW = timedelta(hours=1)


def phone_path(name: str) -> str:
    """Return the page of the phone named ``name``."""
    return f"{PREFIX}/phones/{quote(name, safe='')}"


async def _device(request: Request) -> Device | None:
    name: str = request.path_params["name"]
    if not name or len(name) > 100:
        return None
    return await devices.device_by_name(context(request).store, name)


async def _facts(store: Database, device: Device) -> dict[str, Any]:
    now = datetime.now(UTC)
    batteries = await devices.battery_levels(store)
    depths = await messages.queue_depths(store)
    alerts = await devices.device_events(store, device.name, LAST_ALERTS, kind="alert")
    hour = await activity.device_activity(store, now - RATE_WINDOW, now)
    rate = next((a for a in hour if a.device == device.name), None)
    return {
        "device": device,
        "online": is_online(device.last_seen_at, device.settings.liveness_s, now),
        "battery": batteries.get(device.id),
        "queue": depths.get(device.name, 0),
        "alerts": alerts,
        "rate": rate,
    }


def _page(request: Request, who: Visitor, facts: dict[str, Any], **extra: Any) -> Response:
    shown: dict[str, Any] = {"setup": None, "confirm": False, **facts, **extra}
    return render(
        request, "phone.html", visitor=who, path=phone_path(facts["device"].name), **shown
    )


@page()
async def phone_page(request: Request, who: Visitor) -> Response:
    """Show one phone: online or not, last seen, battery, last alerts, app, queue, rate."""
    device = await _device(request)
    if device is None:
        return refused(request, "No such phone.", status=404)
    facts = await _facts(context(request).store, device)
    # ``?remove=1`` is the confirmation step before removing (admins only).
    confirm = request.query_params.get("remove") == "1" and who.may(Role.ADMIN.value)
    return _page(request, who, facts, confirm=confirm)


@action(Role.ADMIN)
async def rotate(request: Request, who: Visitor, form: FormData) -> Response:
    """Give the phone a new secret (and a new Sync URL when asked); show them once."""
    ctx = context(request)
    device = await _device(request)
    if device is None:
        return refused(request, "No such phone.", status=404)
    try:
        setup = await ctx.rotate_phone(device.name, form.get("new_url") == "1")
    except NotFound:
        return refused(request, "No such phone.", status=404)
    qr = segno.make(setup.payload, error="l").png_data_uri(scale=6, border=4)
    updated = await devices.device_by_name(ctx.store, device.name) or device
    facts = await _facts(ctx.store, updated)
    return _page(request, who, facts, setup=setup, qr=qr, warning=unreachable_reason(ctx.settings))


async def _set_disabled(request: Request, disabled: bool) -> Response:
    device = await _device(request)
    if device is None:
        return refused(request, "No such phone.", status=404)
    try:
        await devices.set_disabled(context(request).store, device.name, disabled, datetime.now(UTC))
    except NotFound:
        return refused(request, "No such phone.", status=404)
    return RedirectResponse(phone_path(device.name), status_code=303)


@action(Role.ADMIN)
async def disable(request: Request, who: Visitor, form: FormData) -> Response:
    """Refuse the phone on its Sync URL until enabled; its unpinned queue goes to others."""
    return await _set_disabled(request, True)


@action(Role.ADMIN)
async def enable(request: Request, who: Visitor, form: FormData) -> Response:
    """Accept the phone on its Sync URL again."""
    return await _set_disabled(request, False)


@action(Role.ADMIN)
async def remove(request: Request, who: Visitor, form: FormData) -> Response:
    """Delete the phone once its name is typed again; its queued SMS go to the others."""
    device = await _device(request)
    if device is None:
        return refused(request, "No such phone.", status=404)
    if form.get("confirm") != device.name:
        # The confirmation step: a stray click or a replayed form removes nothing.
        return RedirectResponse(phone_path(device.name) + "?remove=1", status_code=303)
    try:
        await devices.remove_device(context(request).store, device.name)
    except NotFound:
        return refused(request, "No such phone.", status=404)
    return RedirectResponse(f"{PREFIX}/phones", status_code=303)
