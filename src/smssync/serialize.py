"""One JSON shape per noun, used by the API, the CLI's ``--json`` and webhook payloads alike.

Times are ISO 8601 in UTC with a ``Z``. The API's response models describe these same dicts
(``server/api/models.py``); a test holds the two together. No I/O here.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, overload

from smssync.compose import Plan, estimate_minutes
from smssync.records import (
    ActivityBucket,
    Alert,
    Campaign,
    CampaignResult,
    Delivery,
    Device,
    DeviceActivity,
    ExportedSms,
    Inbound,
    Outbound,
    SendWindow,
    User,
    is_online,
)


@overload
def iso(moment: datetime) -> str: ...
@overload
def iso(moment: None) -> None: ...
def iso(moment: datetime | None) -> str | None:
    """Return a time as ISO 8601 UTC with a Z (None stays None)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def health(device: Device, now: datetime) -> str:
    """Return ``online``, ``offline`` or ``never`` (never seen) (S-9)."""
    if device.last_seen_at is None:
        return "never"
    return (
        "online" if is_online(device.last_seen_at, device.settings.liveness_s, now) else "offline"
    )


def outbound_json(message: Outbound) -> dict[str, Any]:
    """An outbound SMS with its history."""
    return {
        "uuid": message.message_id,
        "to": message.to_addr,
        "body": message.content,
        "segments": message.segments,
        "status": message.status.value,
        "device": message.device,
        "priority": message.priority,
        "send_at": iso(message.send_at),
        "valid_until": iso(message.expires_at),
        "status_callback": message.callback_url,
        "reason": message.reason,
        "created_at": iso(message.created_at),
        "updated_at": iso(message.updated_at),
        "sent_at": iso(message.sent_at),
        "delivered_at": iso(message.delivered_at),
        "sent_timestamp_raw": message.sent_timestamp_raw,
        "delivered_timestamp_raw": message.delivered_timestamp_raw,
        "history": [
            {"at": iso(h.at), "status": h.status.value, "detail": h.detail} for h in message.history
        ],
    }


def inbound_json(message: Inbound) -> dict[str, Any]:
    """A stored inbound SMS."""
    return {
        "id": message.id,
        "device": message.device,
        "from": message.from_addr,
        "from_raw": message.from_raw,
        "to": message.to_addr,
        "body": message.content,
        "message_id": message.message_id,
        "sent_at": iso(message.sent_at),
        "sent_timestamp_raw": message.sent_timestamp_raw,
        "received_at": iso(message.received_at),
        "status": message.status,
        "flags": list(message.flags),
        "tags": list(message.tags),
    }


#: What a spreadsheet takes for a formula at the start of a cell (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9][0-9 ]*")


def spreadsheet_row(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row safe to open in a spreadsheet: a text cell that would start a formula (an
    SMS saying ``=HYPERLINK(…)``) gets a leading ``'``, which spreadsheets show as text;
    numbers such as ``+254700000001`` stay as they are."""
    return {
        key: "'" + value
        if isinstance(value, str)
        and value.startswith(FORMULA_START)
        and not _PLAIN_NUMBER.fullmatch(value)
        else value
        for key, value in row.items()
    }


#: The columns of ``smssync export --format csv``, in order.
EXPORT_COLUMNS = ("direction", "id", "time", "device", "from", "to", "body", "status", "purged_at")


def export_row(sms: ExportedSms) -> dict[str, str]:
    """One SMS as a row of ``smssync export`` (every cell a string; none is empty, not null)."""
    return {
        "direction": sms.direction,
        "id": sms.id,
        "time": iso(sms.at) or "",
        "device": sms.device,
        "from": sms.from_addr,
        "to": sms.to_addr,
        "body": sms.content,
        "status": sms.status,
        "purged_at": iso(sms.purged_at) or "",
    }


def device_json(device: Device, queue_depth: int, now: datetime) -> dict[str, Any]:
    """A device with its health and how many messages wait for it."""
    return {
        "name": device.name,
        "health": health(device, now),
        "last_seen": iso(device.last_seen_at),
        "user_agent": device.last_user_agent,
        "disabled_at": iso(device.disabled_at),
        "queue_depth": queue_depth,
        "ack_mode": device.settings.ack_mode.value,
        "effective_mode": device.effective_mode.value,
        "has_secret": device.has_secret,
        "basic_user": device.basic_user,
        "settings": device.settings.to_json(),
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    """A webhook delivery, with the event body it carries."""
    return {
        "id": delivery.id,
        "url": delivery.url,
        "event": delivery.event,
        "event_id": delivery.event_id,
        "state": delivery.state.value,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "created_at": iso(delivery.created_at),
        "body": json.loads(delivery.body),
    }


def activity_json(bucket: ActivityBucket) -> dict[str, Any]:
    """SMS in and out in one bucket of time."""
    return {
        "start": iso(bucket.start),
        "received": bucket.received,
        "sent": bucket.sent,
        "delivered": bucket.delivered,
        "failed": bucket.failed,
    }


def device_activity_json(found: DeviceActivity) -> dict[str, Any]:
    """How one phone's outgoing SMS fared; the delivery rate is of those it sent."""
    return {
        "device": found.device,
        "handed_out": found.handed_out,
        "sent": found.sent,
        "delivered": found.delivered,
        "failed": found.failed,
        "delivery_rate": round(found.delivered / found.sent, 4) if found.sent else None,
    }


def alert_json(alert: Alert) -> dict[str, Any]:
    """An alert: what, about which device, since when, and who saw it."""
    return {
        "id": alert.id,
        "kind": alert.kind.value,
        "state": alert.state.value,
        "device": alert.device,
        "details": alert.details,
        "raised_at": iso(alert.raised_at),
        "acknowledged_at": iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by,
        "resolved_at": iso(alert.resolved_at),
    }


def status_json(
    devices: list[dict[str, Any]],
    queue_depth: int,
    last_in: Inbound | None,
    last_out: Outbound | None,
    open_alerts: list[Alert],
    counts: dict[str, int],
) -> dict[str, Any]:
    """The server at a glance (``smssync status``): phones, queue, last SMS, open alerts."""
    return {
        "devices": devices,
        "online": sum(1 for d in devices if d["health"] == "online"),
        "queue_depth": queue_depth,
        "last_in": None if last_in is None else inbound_json(last_in),
        "last_out": None if last_out is None else outbound_json(last_out),
        "open_alerts": sum(counts.values()),
        "open_alerts_by_kind": counts,
        "alerts": [alert_json(a) for a in open_alerts],
    }


def user_json(user: User) -> dict[str, Any]:
    """Describe a dashboard user; never the password hash."""
    return {
        "name": user.name,
        "role": user.role.value,
        "created_at": iso(user.created_at),
        "password_changed_at": iso(user.password_changed_at),
    }


def import_payload(title: str, url: str, secret: str | None) -> dict[str, str]:
    """Describe a Sync URL as the SMSsync app imports it (what its QR code holds)."""
    return {"title": title, "url": url, "secret": secret or ""}


def import_text(payload: dict[str, str]) -> str:
    """Return the import payload as the QR code's text: compact JSON."""
    return json.dumps(payload, separators=(",", ":"))


def window_json(window: SendWindow | None) -> dict[str, Any] | None:
    """A daily send window: ``HH:MM`` start and end, and its zone (None: recipients')."""
    if window is None:
        return None
    return {
        "start": window.start.strftime("%H:%M"),
        "end": window.end.strftime("%H:%M"),
        "tz": window.tz,
    }


def campaign_json(campaign: Campaign) -> dict[str, Any]:
    """A campaign with its recipients by state and its released messages by status."""
    released = campaign.recipients.get("released", 0)
    sendable = released + campaign.recipients.get("pending", 0)
    return {
        "id": campaign.id,
        "name": campaign.name,
        "template": campaign.template,
        "status": campaign.status.value,
        "region": campaign.region,
        "device": campaign.device,
        "window": window_json(campaign.window),
        "total": campaign.total,
        "segments": campaign.segments,
        "recipients": dict(campaign.recipients),
        "messages": dict(campaign.messages),
        # Share of the sendable recipients already in the queue: the progress bar.
        "released_ratio": round(released / sendable, 4) if sendable else 1.0,
        "created_at": iso(campaign.created_at),
        "updated_at": iso(campaign.updated_at),
    }


#: The results export's columns, in order.
RESULT_COLUMNS = (
    "to_raw",
    "to",
    "state",
    "error",
    "uuid",
    "status",
    "device",
    "reason",
    "sent_at",
    "delivered_at",
)


def campaign_result_json(result: CampaignResult) -> dict[str, Any]:
    """One recipient of a campaign with its message's fate (a results CSV row)."""
    return {
        "to_raw": result.to_raw,
        "to": result.to_addr,
        "state": result.state.value,
        "error": result.error,
        "uuid": result.message_id,
        "status": result.status,
        "device": result.device,
        "reason": result.reason,
        "sent_at": iso(result.sent_at),
        "delivered_at": iso(result.delivered_at),
    }


def plan_json(plan: Plan, online_phones: int, per_minute: int) -> dict[str, Any]:
    """What a bulk send will do: counters, a preview, the refused numbers, an estimate."""
    return {
        "characters": plan.stats.characters,
        "encoding": plan.stats.encoding,
        "segments_per_message": plan.stats.segments,
        "recipients": len(plan.campaign.recipients),
        "segments": plan.segments,
        "region": plan.campaign.region,
        "preview": [
            {"to": r.to_addr, "body": r.content, "segments": r.segments} for r in plan.preview
        ],
        "invalid": [
            {"index": index, "to": r.to_raw, "message": r.error or "not sendable"}
            for index, r in plan.invalid
        ],
        # At the phones' pacing, not counting the hours outside a window.
        "estimate": {
            "online_phones": online_phones,
            "sms_per_minute": per_minute,
            "minutes": estimate_minutes(plan.segments, per_minute),
        },
    }
