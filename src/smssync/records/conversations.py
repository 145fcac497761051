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
    #: The newest SMS of the thread (the search's newest match when searching).
    last: Inbound | Outbound


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
