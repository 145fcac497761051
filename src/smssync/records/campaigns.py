"""Records of bulk sends (campaigns), their recipients and the pages that list SMS."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime, time


class CampaignStatus(enum.StrEnum):
    """Where a campaign is."""

    #: Its recipients are released into the queue as the window and the fleet allow.
    RUNNING = "running"
    #: Nothing more is released; what was queued and not yet taken went back to pending.
    PAUSED = "paused"
    #: Final: pending recipients and queued messages were cancelled.
    CANCELLED = "cancelled"
    #: Final: every recipient was released (their messages may still be on their way).
    DONE = "done"


#: Statuses a campaign never leaves.
FINAL_CAMPAIGN_STATUSES = frozenset({CampaignStatus.CANCELLED, CampaignStatus.DONE})


class RecipientState(enum.StrEnum):
    """Where one recipient of a campaign is."""

    #: Held: waiting for its window, the fleet's capacity, or the campaign's resumption.
    PENDING = "pending"
    #: Its message is in the outbound queue (``message_id``), with its own status.
    RELEASED = "released"
    #: The number could not be normalised; nothing is sent.
    INVALID = "invalid"
    #: The number is on the opt-out list; nothing is sent.
    OPTED_OUT = "opted_out"
    #: The campaign was cancelled before this recipient was released.
    CANCELLED = "cancelled"


@dataclasses.dataclass(frozen=True)
class SendWindow:
    """The daily hours in which a campaign's messages may be handed to phones."""

    start: time
    end: time
    #: The zone the hours are in; None: each recipient's own, from their number.
    tz: str | None = None


@dataclasses.dataclass(frozen=True)
class NewRecipient:
    """One recipient, rendered and normalised, ready to store."""

    to_raw: str
    #: None when the number could not be normalised.
    to_addr: str | None
    content: str | None
    segments: int
    #: The zones the window is judged in ("A|B"), None when the number's are unknown.
    zone: str | None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class NewCampaign:
    """A campaign to create."""

    name: str
    template: str
    region: str
    recipients: tuple[NewRecipient, ...]
    device: str | None = None
    window: SendWindow | None = None
    api_key_id: int | None = None


@dataclasses.dataclass(frozen=True)
class Campaign:
    """A stored campaign with its counts."""

    id: int
    name: str
    template: str
    status: CampaignStatus
    region: str
    device: str | None
    window: SendWindow | None
    total: int
    created_at: datetime
    updated_at: datetime
    #: Recipients by ``RecipientState``, every state present.
    recipients: dict[str, int]
    #: The released messages by ``OutboundStatus`` (only those present).
    messages: dict[str, int]
    #: Segments of every message to send (invalid and opted-out numbers excluded).
    segments: int = 0


@dataclasses.dataclass(frozen=True)
class CampaignResult:
    """One row of a campaign's results export."""

    id: int
    to_raw: str
    to_addr: str | None
    state: RecipientState
    error: str | None
    message_id: str | None
    status: str | None
    device: str | None
    reason: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
