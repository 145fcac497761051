"""Conversations as the dashboard shows them: every SMS with one other party's number."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from smssync.records.server import Inbound, Outbound


@dataclasses.dataclass(frozen=True)
class Thread:
    """One other party's number, its newest SMS in either direction, and when."""

    number: str
    last_at: datetime
    #: The newest SMS of the thread.
    last: Inbound | Outbound
    #: Incoming SMS nobody has read yet (opening the conversation reads them, for all).
    unread: int = 0


@dataclasses.dataclass(frozen=True)
class ThreadCursor:
    """Where a page of threads ends: the next page holds older ones (keyset, newest first)."""

    last_at_us: int
    number: str


@dataclasses.dataclass(frozen=True)
class ThreadPage:
    """SMS of one thread, both directions, and the cursors beside them.

    ``before_*`` page back (the next older page holds ids below them, None: no more);
    ``after_*`` watch forward: inbound ids above ``after_inbound`` are new, and outbound
    SMS with a history entry above ``after_history`` are new or changed status.
    """

    inbound: tuple[Inbound, ...]
    outbound: tuple[Outbound, ...]
    before_inbound: int | None
    before_outbound: int | None
    after_inbound: int
    after_history: int


@dataclasses.dataclass(frozen=True)
class ThreadFilter:
    """What the list of conversations is narrowed to: the phone of the newest SMS (a device
    id) and a range of times in microseconds, ``since_us`` included, ``until_us`` not."""

    device_id: int | None = None
    since_us: int | None = None
    until_us: int | None = None


@dataclasses.dataclass(frozen=True)
class NumberCursor:
    """Where a page of a number search ends: its numbers that start with the digits come
    first, by number (``phase`` "start", ``key`` the number), then those that end with
    them, by the number backwards (``phase`` "end", ``key`` the reversed number)."""

    phase: str
    key: str


@dataclasses.dataclass(frozen=True)
class SearchHits:
    """SMS whose text matched, the newest first, and where the next page starts: ids below
    ``before_inbound`` and ``before_outbound`` (None: no bound in that direction)."""

    hits: tuple[Inbound | Outbound, ...]
    more: bool
    before_inbound: int | None
    before_outbound: int | None
