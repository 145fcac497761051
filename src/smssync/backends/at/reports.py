"""Send outcomes as SMSsync codes, and status reports matched back to messages (spec §2.6, §7).

A report names a part by its message reference (MR), which wraps at 256, and its recipient;
so a report goes to the most recent unmatched part with that MR and recipient inside a time
window. A message is delivered when every part is, failed once any part fails.
"""

from __future__ import annotations

import dataclasses
import itertools
import re

from smssync.backends.base import (
    DELIVERED_NOT,
    DELIVERED_OK,
    SENT_GENERIC_FAILURE,
    SENT_NO_SERVICE,
    SENT_NULL_PDU,
)
from smssync.gsm.pdu import ReportClass, classify_status

#: +CMS ERROR codes with their own SMSsync sent code (spec §7); the rest are generic (1).
CMS_SENT_CODES = {304: SENT_NULL_PDU, 331: SENT_NO_SERVICE}
#: +CME ERROR 30 is "no network service" (TS 27.007 §9.2).
CME_SENT_CODES = {30: SENT_NO_SERVICE}
#: Busy errors worth a retry with backoff (spec §2.8): (kind, code).
RETRYABLE = {("CME", 14), ("CME", 515), ("CMS", 314), ("CMS", 332)}
#: Reports that arrive before their send is recorded wait this long for it.
ORPHAN_WAIT_S = 120.0


def sent_code_for_error(kind: str, code: int | None) -> int:
    """Map a ``+CMS``/``+CME ERROR`` (or a plain ERROR, kind "") to an SMSsync sent code."""
    if code is None:
        return SENT_GENERIC_FAILURE
    table = CMS_SENT_CODES if kind == "CMS" else CME_SENT_CODES if kind == "CME" else {}
    return table.get(code, SENT_GENERIC_FAILURE)


def match_key(address: str) -> str:
    """Return an address reduced for matching: digits only, last nine kept.

    Networks put the recipient in a report in national or international form; the last
    nine digits agree either way, and alphanumeric addresses are compared as they are.
    """
    digits = re.sub(r"\D", "", address)
    return digits[-9:] if len(digits) >= 6 else address.strip().upper()


@dataclasses.dataclass
class _Part:
    message: _Message
    mr: int
    recipient: str
    sent_at: float
    status: ReportClass | None = None


@dataclasses.dataclass
class _Message:
    reference: str
    parts: list[_Part] = dataclasses.field(default_factory=list)
    done: bool = False


class ReportBook:
    """The parts waiting for a status report, and the message each belongs to."""

    def __init__(self, window_s: float = 600.0) -> None:
        self.window_s = window_s
        self._parts: list[_Part] = []
        self._orphans: list[tuple[int, str, int, float]] = []
        self._ids = itertools.count(1)

    def add(self, recipient: str, mrs: list[int], now: float) -> str:
        """Record a sent message's parts; return the reference its report will carry."""
        message = _Message(f"at-{int(now)}-{next(self._ids)}")
        for mr in mrs:
            part = _Part(message, mr & 0xFF, match_key(recipient), now)
            message.parts.append(part)
            self._parts.append(part)
        return message.reference

    def report(self, mr: int, recipient: str, status: int, now: float) -> tuple[str, int] | None:
        """Apply one report; return (reference, delivered code) when the message is settled."""
        self._forget(now)
        part = self._find(mr, match_key(recipient), now)
        if part is None:
            self._orphans.append((mr, recipient, status, now))
            return None
        return self._apply(part, status)

    def retry_orphans(self, now: float) -> list[tuple[str, int]]:
        """Match reports that arrived before their ``+CMGS`` was recorded."""
        orphans, self._orphans = self._orphans, []
        settled = []
        for mr, recipient, status, at in orphans:
            if now - at > ORPHAN_WAIT_S:
                continue
            part = self._find(mr, match_key(recipient), now)
            if part is None:
                self._orphans.append((mr, recipient, status, at))
                continue
            outcome = self._apply(part, status)
            if outcome:
                settled.append(outcome)
        return settled

    def _find(self, mr: int, key: str, now: float) -> _Part | None:
        for part in reversed(self._parts):
            if (
                part.mr == mr
                and part.recipient == key
                and part.status in (None, ReportClass.TEMPORARY)
                and now - part.sent_at <= self.window_s
            ):
                return part
        return None

    def _apply(self, part: _Part, status: int) -> tuple[str, int] | None:
        part.status = classify_status(status)
        message = part.message
        if message.done:
            return None
        states = [p.status for p in message.parts]
        if any(s in (ReportClass.PERMANENT, ReportClass.TEMPORARY_FINAL) for s in states):
            message.done = True
            return message.reference, DELIVERED_NOT
        if all(s is ReportClass.DELIVERED for s in states):
            message.done = True
            return message.reference, DELIVERED_OK
        return None

    def _forget(self, now: float) -> None:
        self._parts = [
            p for p in self._parts if not p.message.done and now - p.sent_at <= self.window_s
        ]
