"""The store interface: domain verbs over SQLite or PostgreSQL.

Every verb is one transaction. Writes are committed durably before the verb returns, so a
caller that answers a phone after ``await store.record_inbound(...)`` never acknowledges
something a power cut can take back.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from smssync.messages import AckMode, KeyMap, OutboundStatus, SendOutcome
from smssync.store.integration import (
    ApiKey,
    Delivery,
    DeliveryOutcome,
    HookConfig,
    InboundPlan,
    NewRule,
    OutboundQuery,
    Rule,
)


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


@dataclasses.dataclass(frozen=True)
class Credentials:
    """What the server stores for a device: keyed hashes only (S-7)."""

    token_hash: bytes
    secret_hash: bytes | None
    basic_user: str | None
    basic_password_hash: bytes | None


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
class Claimed:
    """A message handed to a device by ``claim_outbound``."""

    message_id: str
    to_addr: str
    content: str


class Store(Protocol):
    """Domain verbs; each one transaction, committed durably before it returns."""

    async def open(self) -> None:
        """Connect and apply migrations."""

    async def close(self) -> None:
        """Release connections and threads."""

    async def use_server_key(self, data_dir: Path, given: str = "") -> bytes:
        """Take the key for keyed hashes from outside the database (hex ``given``, else
        ``data_dir/server.key``), checked against the database; ConfigError on a mismatch."""

    async def server_key(self) -> bytes:
        """Return the secret key for keyed hashes."""

    async def add_device(
        self, name: str, credentials: Credentials, settings: DeviceSettings, now: datetime
    ) -> Device:
        """Create a device; Conflict when the name, token or Basic user is taken."""

    async def add_devices(
        self, entries: list[tuple[str, Credentials, DeviceSettings]], now: datetime
    ) -> int:
        """Create many devices (name, credentials, settings) in one transaction, all or
        none; Conflict when a unique value is taken. Return how many."""

    async def update_device(
        self,
        name: str,
        *,
        settings: DeviceSettings | None = None,
        credentials: Credentials | None = None,
    ) -> Device:
        """Change a device's settings or credentials; NotFound, Conflict."""

    async def remove_device(self, name: str) -> None:
        """Delete a device and unassign its queued messages; NotFound."""

    async def devices(self) -> list[Device]:
        """Return every device, by name."""

    async def device_by_name(self, name: str) -> Device | None:
        """Return the named device."""

    async def device_by_token(self, token_hash: bytes) -> Device | None:
        """Look a device up by keyed hash of its path token."""

    async def device_by_secret(self, secret_hash: bytes) -> Device | None:
        """Look a device up by keyed hash of its secret; None when several share it."""

    async def device_by_basic_user(self, user: str) -> tuple[Device, bytes | None] | None:
        """Return the device of a Basic user and its password hash."""

    async def device_credentials(self, device_id: int) -> Credentials:
        """Return the stored hashes of a device (to check a presented secret)."""

    async def touch_device(self, device_id: int, now: datetime, user_agent: str | None) -> None:
        """Record an authenticated request: last seen and User-Agent (S-9).

        May be coalesced (written at most every few seconds per device)."""

    async def record_event(
        self, device_id: int, kind: str, detail: dict[str, Any], now: datetime
    ) -> None:
        """Record a device event (E3 test, E8 alert, liveness change)."""

    async def events(self, device: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Return recent device events, newest first."""

    async def record_inbound(self, message: NewInbound) -> tuple[bool, int]:
        """Store an incoming SMS unless (device, dedupe_key) exists: (created, id) (S-10)."""

    async def inbound(
        self, device: str | None = None, limit: int = 1000, after_id: int = 0
    ) -> list[Inbound]:
        """Return stored incoming SMS, oldest first, after ``after_id``."""

    async def enqueue(self, messages: list[NewOutbound]) -> None:
        """Queue outgoing SMS in one transaction; NotFound for an unknown device name.

        Unpinned messages are assigned to the sticky device of their recipient when it is
        healthy (routing); the assignment is soft and moves on failover."""

    async def claim_outbound(
        self, device_id: int, limit: int, now: datetime, *, piggyback: bool = False
    ) -> list[Claimed]:
        """Hand up to ``limit`` queued messages to the device, oldest first, in one atomic
        transaction (S-22): messages pinned to it, assigned to it, unassigned, or assigned to
        a device silent past its liveness window. Applies the device's pacing and its ack
        mode (lease in handshake mode), sweeps expired leases and validities first, and
        records the recipient's sticky route. Two devices or processes never get the same
        message. ``piggyback`` dispatches at-most-once regardless of mode (S-25)."""

    async def acknowledge(self, device_id: int, message_ids: list[str], now: datetime) -> list[str]:
        """E5: mark the listed messages dispatched to this device and still wanted as
        ``accepted`` and return them in request order (S-27); switch an ``auto`` device to
        handshake. Others are left alone (S-28)."""

    async def lease_owner(self, message_ids: list[str]) -> int | None:
        """E5 lease binding (S-26): the one device all the given dispatched uuids belong to,
        or None when none are dispatched or they belong to several devices."""

    async def wire_ids(self, message_ids: list[str]) -> dict[str, str]:
        """Return the wire id of each known public uuid: what E2 and E4 tell the phone, and
        what it names in E5, E6 and E7, so that a public uuid never confirms a message."""

    async def message_ids(self, wire_ids: list[str]) -> dict[str, str]:
        """Return the public uuid of each known wire id; unknown ones are left out."""

    async def awaiting_results(
        self, device_id: int, now: datetime, limit: int, max_listings: int, max_age_s: int
    ) -> list[str]:
        """E6 (S-31): uuids dispatched, accepted or sent to the device, oldest first; count
        each listing; past the limits a message becomes ``delivery_unknown`` instead."""

    async def record_results(
        self, device_id: int, outcomes: list[tuple[str, SendOutcome]], now: datetime
    ) -> int:
        """E7 (S-33, S-35): apply outcomes of this device's messages, idempotently, never
        replacing a final status by a non-final one; return how many changed."""

    async def cancel(self, message_id: str, now: datetime) -> Outbound:
        """Cancel a message no device has accepted; NotFound, Conflict."""

    async def outbound(
        self,
        message_id: str | None = None,
        device: str | None = None,
        status: OutboundStatus | None = None,
        limit: int = 1000,
    ) -> list[Outbound]:
        """Return outgoing SMS with history, oldest first."""

    async def queue_depths(self) -> dict[str | None, int]:
        """Return the number of queued messages per assigned device name (None: unassigned)."""

    # The application API (issue 5): keys, idempotent submission, webhooks, rules.

    async def add_api_key(
        self, name: str, key_hash: bytes, prefix: str, scopes: list[str], secret: str, now: datetime
    ) -> ApiKey:
        """Store a new API key by its keyed hash."""

    async def api_keys(self, key_hash: bytes | None = None) -> list[ApiKey]:
        """Return every API key, or the one with this hash (revoked ones too)."""

    async def revoke_api_key(self, key_id: int, now: datetime) -> ApiKey:
        """Revoke a key; NotFound."""

    async def submit(
        self,
        api_key_id: int,
        idempotency_key: str | None,
        request_hash: str,
        messages: list[NewOutbound],
        status_code: int,
        response: str,
        now: datetime,
    ) -> tuple[bool, str, int, str]:
        """Queue messages and remember the answer under the idempotency key, in one
        transaction: (created, request hash, status code, response) — the stored ones when
        the key was used before, in which case nothing is queued."""

    async def outbound_page(self, query: OutboundQuery) -> list[Outbound]:
        """Return outgoing SMS matching the filters after the cursor, oldest first."""

    async def add_webhook(self, url: str, events: list[str], secret: str, now: datetime) -> int:
        """Register a webhook endpoint; return its id."""

    async def remove_webhook(self, endpoint_id: int) -> None:
        """Delete an endpoint and its pending deliveries; NotFound."""

    async def add_rule(self, rule: NewRule, now: datetime) -> Rule:
        """Add a rule (at the end unless a position is given); NotFound for the endpoint."""

    async def remove_rule(self, rule_id: int) -> None:
        """Delete a rule; NotFound."""

    async def hook_config(self) -> HookConfig:
        """Return the rules in order and the webhook endpoints."""

    async def record_inbound_routed(
        self, message: NewInbound, plan: InboundPlan, now: datetime
    ) -> tuple[bool, int]:
        """``record_inbound``, and when new: tag it, queue replies and write its events, in
        the same transaction."""

    async def claim_deliveries(self, now: datetime, limit: int, hold_s: int) -> list[Delivery]:
        """Take due deliveries for ``hold_s`` seconds, never a later event of a lane before an
        earlier one is delivered; two processes never take the same delivery."""

    async def finish_deliveries(self, outcomes: list[DeliveryOutcome], now: datetime) -> None:
        """Record attempts: delivered, retry later, or dead."""

    async def deliveries(self, state: str, limit: int = 100) -> list[Delivery]:
        """Return deliveries in a state (``dead``: the dead-letter list), oldest first."""

    async def redrive(self, delivery_ids: list[int] | None, now: datetime) -> int:
        """Put dead deliveries (all when None) back in the queue; return how many."""

    async def check_liveness(self, now: datetime) -> list[tuple[str, bool]]:
        """Record devices that went online or offline, with their events, exactly once
        across processes, and release the queued soft assignments of those found
        offline to every device (failover); return the transitions."""

    async def claim_run(self, job: str, now: datetime, every_s: float) -> bool:
        """Take the time slot of ``now`` (``every_s`` long) for a periodic job, once
        across processes; False when another process already took it."""

    async def alert_stuck(
        self, now: datetime, older_than_s: int, limit: int = 500
    ) -> list[StuckMessage]:
        """S-30: mark up to ``limit`` messages ``accepted`` at least ``older_than_s`` ago
        and not alerted yet, with a device event per device and ``message.stuck`` for
        their receivers, in one transaction and once across processes; return them,
        oldest first."""
