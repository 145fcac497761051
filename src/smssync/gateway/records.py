"""The rows of the gateway's local store, as frozen values."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class InboundRecord:
    """An incoming SMS about to be stored."""

    natural_key: str
    message_id: str
    from_addr: str
    content: str
    sent_timestamp: str
    received_at: float


@dataclasses.dataclass(frozen=True)
class ForwardJob:
    """One (SMS, Sync URL) pair due for upload."""

    inbound_id: int
    sync_url: str
    attempts: int
    message_id: str
    from_addr: str
    content: str
    sent_timestamp: str


@dataclasses.dataclass(frozen=True)
class TaskToSend:
    """A task message cleared for sending."""

    row: int
    sync_url: str
    message_id: str
    to_addr: str
    content: str


@dataclasses.dataclass(frozen=True)
class TaskRecord:
    """What the gateway knows about a task message, for ``task=result``."""

    row: int
    message_id: str
    state: str
    sent_code: int | None
    sent_at: float | None
    delivered_code: int | None
    delivered_at: float | None
    #: What this result is, to remember once the server took it (queries.FINGERPRINT).
    fingerprint: str


@dataclasses.dataclass(frozen=True)
class LocalSend:
    """An SMS the gateway sends by itself: auto-reply, query answer or alert."""

    id: int
    kind: str
    to_addr: str
    content: str


@dataclasses.dataclass(frozen=True)
class UrlCounts:
    """``gateway status`` for one Sync URL."""

    sync_url: str
    pending: int = 0
    failed: int = 0
    forwarded: int = 0
    filtered: int = 0
    dropped: int = 0
    last_contact_at: float | None = None
    last_ok_at: float | None = None
    last_error: str | None = None


__all__ = ["ForwardJob", "InboundRecord", "LocalSend", "TaskRecord", "TaskToSend", "UrlCounts"]
