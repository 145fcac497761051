"""Domain values shared by the server, the gateway and the store; no I/O."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime


class OutboundStatus(enum.StrEnum):
    """Where an outgoing SMS is in its life (spec §5)."""

    #: Waiting on the server for a device to poll it.
    QUEUED = "queued"
    #: Handed to a device by ``task=send`` (or piggybacked); may carry a lease.
    DISPATCHED = "dispatched"
    #: Listed back to the device by ``task=sent``: the phone will send it.
    ACCEPTED = "accepted"
    #: The phone reported a successful send.
    SENT = "sent"
    #: Final: the phone reported a send failure.
    FAILED = "failed"
    #: Final: the recipient's handset got it.
    DELIVERED = "delivered"
    #: Final: the network reported it could not be delivered.
    UNDELIVERED = "undelivered"
    #: Final: sent, and no delivery report came within the result window (a late one still
    #: moves it to delivered or undelivered).
    DELIVERY_UNKNOWN = "delivery_unknown"
    #: Final: its validity ended before any device accepted it.
    EXPIRED = "expired"
    #: Final: cancelled by an operator before any device accepted it.
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """Tell whether no further report can change this status."""
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        OutboundStatus.FAILED,
        OutboundStatus.DELIVERED,
        OutboundStatus.UNDELIVERED,
        OutboundStatus.DELIVERY_UNKNOWN,
        OutboundStatus.EXPIRED,
        OutboundStatus.CANCELLED,
    }
)


class AckMode(enum.StrEnum):
    """How a device acknowledges task messages (spec S-23)."""

    #: Handoff until the device's first ``task=sent``, then handshake.
    AUTO = "auto"
    #: Dispatched means gone: the App's "Message Results API" is off.
    HANDOFF = "handoff"
    #: Dispatched under a lease that only ``task=sent`` confirms.
    HANDSHAKE = "handshake"


class BodyFormat(enum.StrEnum):
    """How an SMSsync POST body is encoded."""

    FORM = "form"
    JSON = "json"
    XML = "xml"


#: The App's name of each E1 key, mapped to the KeyMap field that renames it.
WIRE_KEY_FIELDS: dict[str, str] = {
    "secret": "secret",
    "from": "from_addr",
    "message": "content",
    "sent_timestamp": "sent_timestamp",
    "sent_to": "sent_to",
    "message_id": "message_id",
    "device_id": "device_id",
}


@dataclasses.dataclass(frozen=True)
class KeyMap:
    """The seven E1 field names, renamable per Sync URL as the App allows (S-5)."""

    secret: str = "secret"
    from_addr: str = "from"
    content: str = "message"
    sent_timestamp: str = "sent_timestamp"
    sent_to: str = "sent_to"
    message_id: str = "message_id"
    device_id: str = "device_id"

    def wire_keys(self) -> tuple[str, str, str, str, str, str, str]:
        """Return the wire names in the App's order."""
        return (
            self.secret,
            self.from_addr,
            self.content,
            self.sent_timestamp,
            self.sent_to,
            self.message_id,
            self.device_id,
        )


@dataclasses.dataclass(frozen=True)
class InboundMessage:
    """An SMS a phone received, as the gateway forwards it (E1); values as on the wire."""

    from_addr: str
    content: str
    sent_timestamp: str
    sent_to: str
    message_id: str
    device_id: str


@dataclasses.dataclass(frozen=True)
class TaskMessage:
    """An SMS the server asks a device to send (E2, E4 entries)."""

    to_addr: str
    content: str
    message_id: str | None


@dataclasses.dataclass(frozen=True)
class MessageResult:
    """One entry of a ``task=result`` report (E7), raw wire values kept."""

    message_id: str
    sent_code: int | None = None
    sent_message: str | None = None
    delivered_code: int | None = None
    delivered_message: str | None = None
    sent_timestamp: str | None = None
    delivered_timestamp: str | None = None


@dataclasses.dataclass(frozen=True)
class SendOutcome:
    """What a result report means for one outgoing message (S-33)."""

    status: OutboundStatus | None
    reason: str | None
    delivered: OutboundStatus | None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    #: The report's timestamps as the phone wrote them, parsed or not (S-34).
    sent_timestamp_raw: str | None = None
    delivered_timestamp_raw: str | None = None
