"""Request and response bodies of ``/api/v1``; the OpenAPI document is built from these."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from smssync.records import AlertKind, AlertState, Event, OutboundStatus, RuleKind

#: Text the databases can store: no NUL (PostgreSQL refuses it in text columns).
Text = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00]*$")]
Url = Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://[^\s\x00]+$")]
Number = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00]*$")]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_only(value: object) -> object:
    """Refuse what pydantic would read as seconds since the epoch (``0.5``, ``1700000000``):
    a time is written in ISO 8601, and a number there is a mistake to report."""
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.match(value)):
        return value
    raise ValueError("expected an ISO 8601 date and time, e.g. 2026-01-31T12:00:00Z")


def _utc_when_naive(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


#: A date and time in ISO 8601 only; a time zone is UTC when absent (query filters).
IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_utc_when_naive)]
#: A date and time in ISO 8601 only, with its offset (times in bodies).
IsoAwareDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_only)]


class Strict(BaseModel):
    """Refuse unknown fields: a typo must not be silently ignored. Integers, booleans and
    times are strict too (``StrictInt``, ``StrictBool``, ``IsoAwareDatetime``): ``"all": 0``
    or ``"priority": "5"`` is refused, not guessed at."""

    model_config = ConfigDict(extra="forbid")


class ErrorItem(BaseModel):
    """One problem: a field, or a recipient by its index."""

    field: str | None = None
    index: int | None = None
    message: str


class ErrorBody(BaseModel):
    """The one error shape of the API."""

    ok: Literal[False] = False
    error: str
    errors: list[ErrorItem] = []
    status: int


class SendRequest(Strict):
    """``POST /messages``: one text to one or many recipients."""

    to: Number | Annotated[list[Number], Field(min_length=1, max_length=10_000)] = Field(
        description="A number, or a list of numbers (bulk)."
    )
    body: Annotated[str, StringConstraints(min_length=1, max_length=5000, pattern=r"^[^\x00]*$")]
    device: Name | None = Field(None, description="Send through this device only.")
    send_at: IsoAwareDatetime | None = Field(None, description="Not handed out before this.")
    valid_until: IsoAwareDatetime | None = Field(None, description="Expires unsent after this.")
    priority: StrictInt = Field(0, ge=-100, le=100, description="Higher is handed out first.")
    status_callback: Url | None = Field(
        None, description="Receives this message's status events, signed with the key's secret."
    )


class HistoryItem(BaseModel):
    """One status change."""

    at: datetime
    status: OutboundStatus
    detail: str | None


class MessageOut(BaseModel):
    """An outgoing SMS."""

    uuid: str
    to: str
    body: str
    segments: int
    status: OutboundStatus
    device: str | None
    priority: int
    send_at: datetime | None
    valid_until: datetime | None
    status_callback: str | None
    reason: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = Field(
        None, description="When the phone sent it (the report's time if the phone's did not parse)."
    )
    delivered_at: datetime | None = Field(None, description="When it was delivered, likewise.")
    sent_timestamp_raw: str | None = Field(None, description="The phone's sent time, as reported.")
    delivered_timestamp_raw: str | None = Field(
        None, description="The phone's delivery time, as reported."
    )
    history: list[HistoryItem]


class Queued(BaseModel):
    """A message accepted by ``POST /messages``."""

    uuid: str
    to: str
    status: OutboundStatus


class SendResponse(BaseModel):
    """What ``POST /messages`` accepted, and each recipient it refused."""

    ok: Literal[True] = True
    messages: list[Queued]
    errors: list[ErrorItem]


class MessagePage(BaseModel):
    """A page of outgoing SMS; pass ``next_cursor`` as ``cursor`` for the next one."""

    ok: Literal[True] = True
    messages: list[MessageOut]
    next_cursor: str | None


class MessageReply(BaseModel):
    """One outgoing SMS."""

    ok: Literal[True] = True
    message: MessageOut


class InboundOut(BaseModel):
    """An incoming SMS."""

    id: int
    device: str
    from_: str = Field(alias="from")
    from_raw: str
    to: str
    body: str
    message_id: str | None
    sent_at: datetime
    sent_timestamp_raw: str | None = Field(None, description="sent_timestamp as the phone sent it.")
    received_at: datetime
    flags: list[str]
    tags: list[str]

    model_config = ConfigDict(populate_by_name=True)


class InboxPage(BaseModel):
    """A page of incoming SMS, oldest first."""

    ok: Literal[True] = True
    messages: list[InboundOut]
    next_cursor: str | None


class DeviceOut(BaseModel):
    """A phone or gateway."""

    name: str
    health: Literal["online", "offline", "never"]
    last_seen: datetime | None
    #: When an admin disabled it (refused on its Sync URL); null while enabled.
    disabled_at: datetime | None = None
    queue_depth: int
    ack_mode: str
    effective_mode: str


class DeviceList(BaseModel):
    """Every device."""

    ok: Literal[True] = True
    devices: list[DeviceOut]


class WebhookRequest(Strict):
    """``POST /webhooks``."""

    url: Url
    events: Annotated[list[Event], Field(min_length=1, max_length=len(Event))] | None = Field(
        None, description="Default: every event."
    )


class WebhookOut(BaseModel):
    """A webhook endpoint (its secret is shown only on creation)."""

    id: int
    url: str
    events: list[Event]
    created_at: datetime


class WebhookCreated(BaseModel):
    """A new endpoint and its signing secret, shown only now."""

    ok: Literal[True] = True
    webhook: WebhookOut
    secret: str


class WebhookList(BaseModel):
    """Every webhook endpoint."""

    ok: Literal[True] = True
    webhooks: list[WebhookOut]


class DeliveryOut(BaseModel):
    """A webhook delivery (dead letters)."""

    id: int
    url: str
    event: str
    event_id: str
    attempts: int
    last_error: str | None
    created_at: datetime


class DeliveryList(BaseModel):
    """Dead-lettered deliveries."""

    ok: Literal[True] = True
    deliveries: list[DeliveryOut]


class RedriveRequest(Strict):
    """Which dead letters to send again: ``ids``, or ``all``."""

    ids: (
        Annotated[list[Annotated[StrictInt, Field(ge=1, le=2**62)]], Field(max_length=1000)] | None
    ) = None
    all: StrictBool = False


class Redriven(BaseModel):
    """How many dead letters went back to the queue."""

    ok: Literal[True] = True
    redriven: int


class RuleRequest(Strict):
    """``POST /rules``: a matcher and at least one action."""

    kind: RuleKind
    pattern: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]*$")]
    auto_reply: (
        Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=r"^[^\x00]*$")]
        | None
    ) = None
    forward_webhook_id: Annotated[StrictInt, Field(ge=1, le=2**31 - 1)] | None = None
    tag: Name | None = None
    position: Annotated[StrictInt, Field(ge=1, le=100_000)] | None = None


class RuleOut(BaseModel):
    """A rule."""

    id: int
    position: int
    kind: RuleKind
    pattern: str
    auto_reply: str | None
    forward_webhook_id: int | None
    tag: str | None


class RuleCreated(BaseModel):
    """A new rule."""

    ok: Literal[True] = True
    rule: RuleOut


class RuleList(BaseModel):
    """Every rule, in evaluation order."""

    ok: Literal[True] = True
    rules: list[RuleOut]


class Done(BaseModel):
    """Success without a body."""

    ok: Literal[True] = True


class AlertOut(BaseModel):
    """An alert (``smssync alerts``)."""

    id: int
    kind: AlertKind
    state: AlertState
    device: str | None
    details: dict[str, Any]
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None


class AlertPage(BaseModel):
    """A page of alerts, newest first; pass ``next_cursor`` as ``cursor`` for older ones."""

    ok: Literal[True] = True
    alerts: list[AlertOut]
    next_cursor: str | None


class AlertReply(BaseModel):
    """One alert."""

    ok: Literal[True] = True
    alert: AlertOut
