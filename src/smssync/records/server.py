"""The server's records: devices, inbound and outbound SMS as the store holds them."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from typing import Any

from smssync.gsm.segments import count_segments
from smssync.records.values import AckMode, KeyMap, OutboundStatus


@dataclasses.dataclass(frozen=True)
class DeviceSettings:
    """Per-device behaviour, changeable at run time."""

    #: The App's custom keys for E1/E3 (S-5).
    keys: KeyMap = dataclasses.field(default_factory=KeyMap)
    #: Acknowledgement mode (S-23).
    ack_mode: AckMode = AckMode.AUTO
    #: Piggyback queued messages on the E1 reply (E2, S-25).
    reply_from_server: bool = False
    #: Text sent back to every sender, in the E1 reply, when reply_from_server is on.
    auto_reply: str | None = None
    #: Most messages handed out per ``task=send`` (S-22).
    batch_limit: int = 20
    #: Segments per minute the device may send (Android allows 30 by default).
    segments_per_minute: int = 30
    #: How long a handshake lease lasts (S-23).
    lease_s: int = 300
    #: Silence after which the device counts as offline (S-9).
    liveness_s: int = 900
    #: Zone for zone-less timestamps in results (S-34).
    timezone: str = "UTC"

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        data = dataclasses.asdict(self)
        data["ack_mode"] = self.ack_mode.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceSettings:
        """Build from a dict such as ``to_json`` returns; unknown keys raise ValueError."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown device settings: {', '.join(sorted(unknown))}")
        values = dict(data)
        if "keys" in values and isinstance(values["keys"], dict):
            values["keys"] = KeyMap(**values["keys"])
        if "ack_mode" in values:
            values["ack_mode"] = AckMode(values["ack_mode"])
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class Device:
    """A phone or gateway known to the server."""

    id: int
    name: str
    settings: DeviceSettings
    has_secret: bool
    basic_user: str | None
    #: The mode ``auto`` currently runs in: handoff or handshake.
    effective_mode: AckMode
    created_at: datetime
    last_seen_at: datetime | None
    last_user_agent: str | None
    #: When an admin disabled it: refused on its Sync URL while set (None: enabled).
    disabled_at: datetime | None = None


#: How stale a stored ``last_seen`` may be: the server writes a device's last seen at most
#: this often (one write per poll would cost a commit per poll at fleet scale).
LAST_SEEN_EVERY = timedelta(seconds=5)


def is_online(last_seen: datetime | None, liveness_s: int, now: datetime) -> bool:
    """The liveness rule (S-9): a device is online while it polled within its window.

    The window is counted from the stored last seen plus ``LAST_SEEN_EVERY``, since a poll
    after the stored one may not be written yet: a device is judged offline (and its queue
    failed over) at most that much late, never early.
    """
    return (
        last_seen is not None and now - last_seen <= timedelta(seconds=liveness_s) + LAST_SEEN_EVERY
    )


@dataclasses.dataclass(frozen=True)
class Totals:
    """What the store holds, counted for a metrics scrape in one read transaction."""

    #: Incoming SMS stored.
    inbound: int
    #: Outgoing SMS by status, every status present (0 when none).
    outbound: dict[OutboundStatus, int]
    #: Devices registered, and those online now (``is_online``).
    devices: int
    online: int
    #: Webhook deliveries and status callbacks still to be delivered.
    webhooks_pending: int
    #: Open alerts by kind, every kind present (0 when none).
    alerts_open: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Credentials:
    """What the server stores for a device: keyed hashes only (S-7)."""

    token_hash: bytes
    secret_hash: bytes | None
    basic_user: str | None
    basic_password_hash: bytes | None
    #: What the path token is derived from with the server key, so that the Sync URL can
    #: be shown again (``device show``); None for a device registered before (0006).
    token_seed: bytes | None = None


@dataclasses.dataclass(frozen=True)
class NewInbound:
    """An incoming SMS ready to be stored (raw and normalised values)."""

    device_id: int
    dedupe_key: str
    message_id: str | None
    from_raw: str
    from_addr: str
    to_addr: str
    content: str
    sent_timestamp_raw: str | None
    sent_at: datetime
    device_label: str | None
    received_at: datetime
    flags: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Inbound:
    """A stored incoming SMS."""

    id: int
    device: str
    from_addr: str
    from_raw: str
    to_addr: str
    content: str
    message_id: str | None
    sent_timestamp_raw: str | None
    sent_at: datetime
    received_at: datetime
    flags: tuple[str, ...]
    status: str
    #: Set by routing rules.
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ExportedSms:
    """One stored SMS of either direction as ``smssync export`` writes it: flat, no history."""

    #: ``in`` (incoming) or ``out`` (outgoing).
    direction: str
    #: The phone's ``message_id`` of an incoming SMS (its row id when it sent none); the
    #: uuid of an outgoing one.
    id: str
    device: str
    #: When the server received an incoming SMS, or queued an outgoing one.
    at: datetime
    from_addr: str
    to_addr: str
    content: str
    status: str
    #: When retention emptied ``content`` (``--retention-days``), else None.
    purged_at: datetime | None


@dataclasses.dataclass(frozen=True)
class NewOutbound:
    """An outgoing SMS to queue."""

    message_id: str
    to_addr: str
    content: str
    segments: int
    device: str | None
    created_at: datetime
    expires_at: datetime | None = None
    #: Higher goes first.
    priority: int = 0
    #: Not handed to any device before this moment.
    send_at: datetime | None = None
    #: Where this message's status events go, signed with its API key's secret.
    callback_url: str | None = None
    api_key_id: int | None = None
    #: The campaign that queued it (bulk send).
    campaign_id: int | None = None


@dataclasses.dataclass(frozen=True)
class HistoryEntry:
    """One status change of an outgoing SMS."""

    at: datetime
    status: OutboundStatus
    detail: str | None


@dataclasses.dataclass(frozen=True)
class Outbound:
    """A stored outgoing SMS with its history."""

    message_id: str
    device: str | None
    to_addr: str
    content: str
    segments: int
    status: OutboundStatus
    created_at: datetime
    updated_at: datetime
    reason: str | None
    history: tuple[HistoryEntry, ...]
    priority: int = 0
    send_at: datetime | None = None
    expires_at: datetime | None = None
    callback_url: str | None = None
    #: The row id, which orders messages and makes cursors.
    seq: int = 0
    #: When the phone reported it sent and delivered (the report's time when its timestamp
    #: did not parse), and those timestamps as the phone wrote them (S-34).
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    sent_timestamp_raw: str | None = None
    delivered_timestamp_raw: str | None = None


@dataclasses.dataclass(frozen=True)
class StuckMessage:
    """An outgoing SMS its device accepted long ago without reporting a result (S-30)."""

    message_id: str
    #: None when the device has been removed since.
    device: str | None
    accepted_at: datetime


@dataclasses.dataclass(frozen=True)
class ActivityBucket:
    """SMS in and out in one bucket of time (an hour, a day) that starts at ``start``."""

    start: datetime
    received: int
    #: Sent by a phone in the bucket, of which ``delivered`` were reported delivered.
    sent: int
    delivered: int
    #: Handed out in the bucket and reported failed by the phone.
    failed: int


@dataclasses.dataclass(frozen=True)
class DeviceActivity:
    """How the outgoing SMS handed to one phone in a range fared."""

    device: str
    handed_out: int
    sent: int
    delivered: int
    #: Failed on the phone or undelivered by the network.
    failed: int


def new_outbound(
    to_addr: str, content: str, device: str | None, now: datetime, priority: int = 0
) -> NewOutbound:
    """Build a queued message with a fresh UUID v4 (S-21) and its segment count."""
    return NewOutbound(
        message_id=str(uuid.uuid4()),
        to_addr=to_addr,
        content=content,
        segments=count_segments(content),
        device=device,
        created_at=now,
        priority=priority,
    )
