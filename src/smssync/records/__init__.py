"""Every domain record in one place: values shared by the server, the gateway and the store,
the server's records and the application API's; no I/O.

One word per idea (docs/style.md): *inbound* is an SMS a phone received, *outbound* one to send.
"""

from __future__ import annotations

from smssync.records.api import (
    ApiKey,
    Delivery,
    DeliveryOutcome,
    DeliveryState,
    Event,
    HookConfig,
    InboundPlan,
    NewRule,
    OutboundQuery,
    Rule,
    RuleKind,
    Scope,
    WebhookEndpoint,
)
from smssync.records.conversations import Thread, ThreadCursor, ThreadPage
from smssync.records.server import (
    Credentials,
    Device,
    DeviceSettings,
    HistoryEntry,
    Inbound,
    NewInbound,
    NewOutbound,
    Outbound,
    StuckMessage,
    is_online,
    new_outbound,
)
from smssync.records.users import Role, User
from smssync.records.values import (
    FINAL_STATUSES,
    WIRE_KEY_FIELDS,
    AckMode,
    BodyFormat,
    InboundMessage,
    KeyMap,
    MessageResult,
    OutboundStatus,
    SendOutcome,
    TaskMessage,
)

__all__ = [
    "FINAL_STATUSES",
    "WIRE_KEY_FIELDS",
    "AckMode",
    "ApiKey",
    "BodyFormat",
    "Credentials",
    "Delivery",
    "DeliveryOutcome",
    "DeliveryState",
    "Device",
    "DeviceSettings",
    "Event",
    "HistoryEntry",
    "HookConfig",
    "Inbound",
    "InboundMessage",
    "InboundPlan",
    "KeyMap",
    "MessageResult",
    "NewInbound",
    "NewOutbound",
    "NewRule",
    "Outbound",
    "OutboundQuery",
    "OutboundStatus",
    "Role",
    "Rule",
    "RuleKind",
    "Scope",
    "SendOutcome",
    "StuckMessage",
    "TaskMessage",
    "Thread",
    "ThreadCursor",
    "ThreadPage",
    "User",
    "WebhookEndpoint",
    "is_online",
    "new_outbound",
]
