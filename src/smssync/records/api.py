"""Records of the application API: keys, webhook endpoints and deliveries, rules."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime

from smssync.records.server import NewOutbound


class Scope(enum.StrEnum):
    """What an API key may do."""

    #: Queue and cancel outgoing SMS.
    SEND = "send"
    #: Read messages, the inbox and devices.
    READ = "read"
    #: Everything, including webhooks, rules and dead letters.
    ADMIN = "admin"


class Event(enum.StrEnum):
    """Webhook event types; the body's ``type``."""

    RECEIVED = "message.received"
    SENT = "message.sent"
    FAILED = "message.failed"
    DELIVERED = "message.delivered"
    UNDELIVERED = "message.undelivered"
    #: Still ``accepted`` long after its device accepted it: probably never sent (S-30).
    STUCK = "message.stuck"
    DEVICE_OFFLINE = "device.offline"
    DEVICE_ONLINE = "device.online"
    #: An alert about a device was raised (``smssync alerts``): silent, battery low, sends
    #: failing, messages stuck.
    DEVICE_ALERT = "device.alert"
    #: Deliveries to a webhook endpoint keep failing (sent to the other endpoints).
    WEBHOOK_FAILING = "webhook.failing"


class DeliveryState(enum.StrEnum):
    """Where a webhook delivery is."""

    #: Waiting for its next attempt (or being attempted under a short claim).
    PENDING = "pending"
    #: Final: the receiver answered 2xx.
    DELIVERED = "delivered"
    #: Final until redriven: retries ran out.
    DEAD = "dead"


class RuleKind(enum.StrEnum):
    """How a rule matches an incoming SMS."""

    #: The first word equals the pattern, case-insensitively.
    KEYWORD = "keyword"
    #: The regular expression matches somewhere in the text.
    REGEX = "regex"
    #: The sender (normalised or raw) equals the pattern.
    SENDER = "sender"


@dataclasses.dataclass(frozen=True)
class ApiKey:
    """A stored API key (never the key itself)."""

    id: int
    name: str
    prefix: str
    scopes: frozenset[Scope]
    signing_secret: str
    created_at: datetime
    revoked_at: datetime | None

    def allows(self, scope: Scope) -> bool:
        """Tell whether the key carries ``scope``; admin carries all."""
        return self.revoked_at is None and (scope in self.scopes or Scope.ADMIN in self.scopes)


@dataclasses.dataclass(frozen=True)
class WebhookEndpoint:
    """A receiver of signed events."""

    id: int
    url: str
    events: frozenset[Event]
    secret: str
    created_at: datetime


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One event for one receiver, as the dispatcher sends it."""

    id: int
    url: str
    secret: str
    event_id: str
    event: str
    body: str
    attempts: int
    created_at: datetime
    state: DeliveryState = DeliveryState.PENDING
    last_error: str | None = None


@dataclasses.dataclass(frozen=True)
class DeliveryListing:
    """A delivery as a page lists it: where it stands, never its body or secret."""

    id: int
    #: None for a status callback (sent to an API key's callback URL).
    endpoint_id: int | None
    url: str
    event: str
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    finished_at: datetime | None
    last_error: str | None


@dataclasses.dataclass(frozen=True)
class DeliveryOutcome:
    """What one attempt gave: delivered, or the error and when to try again (None: dead)."""

    delivery_id: int
    delivered: bool
    error: str | None = None
    retry_at: datetime | None = None


@dataclasses.dataclass(frozen=True)
class Rule:
    """One routing rule on incoming SMS; rules apply in ``position`` order."""

    id: int
    position: int
    kind: RuleKind
    pattern: str
    auto_reply: str | None
    forward_endpoint_id: int | None
    tag: str | None


@dataclasses.dataclass(frozen=True)
class NewRule:
    """A rule to add (at the end unless ``position`` is given)."""

    kind: RuleKind
    pattern: str
    auto_reply: str | None = None
    forward_endpoint_id: int | None = None
    tag: str | None = None
    position: int | None = None


@dataclasses.dataclass(frozen=True)
class HookConfig:
    """Rules and endpoints, read together and cached by the server."""

    rules: tuple[Rule, ...]
    endpoints: tuple[WebhookEndpoint, ...]

    @property
    def empty(self) -> bool:
        """Tell whether incoming SMS need nothing beyond being stored."""
        return not self.rules and not self.endpoints


@dataclasses.dataclass(frozen=True)
class InboundPlan:
    """What to do in the same transaction as storing a new incoming SMS."""

    #: The receiving device's name, for the event.
    device: str = ""

    #: Endpoints that get ``message.received``.
    endpoint_ids: tuple[int, ...] = ()
    rule_id: int | None = None
    tag: str | None = None
    #: Outgoing replies to queue with the SMS (already built).
    replies: tuple[NewOutbound, ...] = ()


@dataclasses.dataclass(frozen=True)
class OutboundQuery:
    """Filters and cursor of ``GET /messages``."""

    status: str | None = None
    device: str | None = None
    to_addr: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_id: int = 0
    limit: int = 100
