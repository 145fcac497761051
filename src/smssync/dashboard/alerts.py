"""Alerts: a phone silent, battery low, sends failing, messages stuck, a webhook endpoint
failing; the same list as ``smssync alerts``, acknowledged by a person."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from smssync.dashboard.guard import Visitor, action, context, page, refused
from smssync.dashboard.render import PREFIX, render
from smssync.errors import NotFound
from smssync.records import Alert, AlertKind
from smssync.store import alerts

#: What each kind means to the person reading the list.
WHAT = {
    AlertKind.DEVICE_SILENT: "Phone silent: not heard from within its liveness window",
    AlertKind.BATTERY_LOW: "Battery low",
    AlertKind.SEND_FAILING: "Sends failing in a row",
    AlertKind.MESSAGES_STUCK: "Messages accepted by the phone, never reported",
    AlertKind.WEBHOOK_FAILING: "Webhook endpoint failing",
}


def _detail(alert: Alert) -> str:
    """The one figure a person needs, from the alert's details."""
    details: dict[str, Any] = alert.details
    if alert.kind is AlertKind.BATTERY_LOW and details.get("battery_percent") is not None:
        return f"{details['battery_percent']} %"
    if alert.kind is AlertKind.SEND_FAILING:
        reasons = ", ".join(sorted(details.get("reasons", {})))
        return f"{details.get('failures', '?')} in a row" + (f" ({reasons})" if reasons else "")
    if alert.kind is AlertKind.MESSAGES_STUCK and "count" in details:
        return f"{details['count']} SMS"
    if alert.kind is AlertKind.WEBHOOK_FAILING and "host" in details:
        return str(details["host"])
    return ""


@page()
async def alerts_page(request: Request, who: Visitor) -> Response:
    """List the open alerts, newest first (every alert with ``?all=1``)."""
    everything = request.query_params.get("all") == "1"
    found = await alerts.list_alerts(context(request).store, include_resolved=everything)
    rows = [
        {"alert": a, "what": WHAT.get(a.kind, a.kind.value), "detail": _detail(a)} for a in found
    ]
    return render(request, "alerts.html", visitor=who, rows=rows, everything=everything)


@action()
async def acknowledge(request: Request, who: Visitor, form: FormData) -> Response:
    """Record that this person saw the alert (the first acknowledgement stays)."""
    raw = request.path_params["alert_id"]
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        return refused(request, "No such alert.", status=404)
    try:
        await alerts.acknowledge(
            context(request).store, int(raw), f"dashboard:{who.user.name}", datetime.now(UTC)
        )
    except NotFound:
        return refused(request, "No such alert.", status=404)
    return RedirectResponse(f"{PREFIX}/alerts", status_code=303)
