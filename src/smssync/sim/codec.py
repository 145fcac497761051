"""JSON forms of the simulated network's values, for its control server and clients."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from smssync.backends.base import (
    BackendEvent,
    DeliveryReport,
    DeviceStatus,
    InboundSms,
    SendResult,
)
from smssync.errors import BackendError
from smssync.sim.network import Submission


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _moment(raw: Any) -> datetime | None:
    return datetime.fromisoformat(raw) if isinstance(raw, str) else None


def event_to_json(seq: int, event: BackendEvent) -> dict[str, Any]:
    """Describe a pending event with its cursor position."""
    if isinstance(event, InboundSms):
        return {
            "seq": seq,
            "type": "sms",
            "from": event.from_addr,
            "text": event.content,
            "sent_at": _iso(event.sent_at),
            "natural_key": event.natural_key,
            "handle": event.handle,
        }
    return {
        "seq": seq,
        "type": "report",
        "reference": event.reference,
        "delivered_code": event.delivered_code,
        "at": _iso(event.at),
        "handle": event.handle,
    }


def event_from_json(data: dict[str, Any]) -> tuple[int, BackendEvent]:
    """Read what ``event_to_json`` wrote; BackendError when it is not such an object."""
    try:
        if data["type"] == "sms":
            return int(data["seq"]), InboundSms(
                str(data["from"]),
                str(data["text"]),
                _moment(data.get("sent_at")),
                str(data["natural_key"]),
                str(data["handle"]),
            )
        at = _moment(data.get("at"))
        if at is None:
            raise ValueError("report without a time")
        return int(data["seq"]), DeliveryReport(
            str(data["reference"]), int(data["delivered_code"]), at, str(data["handle"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"simulated network sent a bad event: {exc}") from None


def result_to_json(result: SendResult) -> dict[str, Any]:
    """Describe a send result."""
    return {
        "sent_code": result.sent_code,
        "reference": result.reference,
        "at": _iso(result.at),
        "detail": result.detail,
    }


def result_from_json(data: dict[str, Any]) -> SendResult:
    """Read what ``result_to_json`` wrote."""
    try:
        at = _moment(data["at"])
        if at is None:
            raise ValueError("result without a time")
        reference = data.get("reference")
        code = data["sent_code"]
        return SendResult(
            None if code is None else int(code),
            None if reference is None else str(reference),
            at,
            str(data.get("detail", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"simulated network sent a bad result: {exc}") from None


def status_to_json(status: DeviceStatus) -> dict[str, Any]:
    """Describe a phone's status."""
    return {
        "battery_percent": status.battery_percent,
        "charging": status.charging,
        "signal_dbm": status.signal_dbm,
        "signal_level": status.signal_level,
        "registered": status.registered,
    }


def status_from_json(data: dict[str, Any]) -> DeviceStatus:
    """Read what ``status_to_json`` wrote."""
    return DeviceStatus(
        battery_percent=data.get("battery_percent"),
        charging=data.get("charging"),
        signal_dbm=data.get("signal_dbm"),
        signal_level=data.get("signal_level"),
        registered=bool(data.get("registered", True)),
    )


def submission_to_json(item: Submission) -> dict[str, Any]:
    """Describe one SMS a simulated phone sent."""
    return {
        "seq": item.seq,
        "from": item.from_addr,
        "to": item.to_addr,
        "text": item.content,
        "at": _iso(item.at),
        "sent_code": item.sent_code,
        "reference": item.reference,
        "delivered_code": item.delivered_code,
    }
