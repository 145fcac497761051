"""Reassembly of concatenated SMS parts (spec §2.3). Pure: the caller passes the time in.

Parts are grouped by (originator, reference, total); they may arrive out of order, and a
repeated part is ignored. A group that stays incomplete past the caller's timeout is handed
back by ``expired`` with what arrived, in order, so the caller can deliver it flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from smssync.gsm.pdu import Deliver

__all__ = ["Reassembled", "Reassembler"]

_Key = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class Reassembled:
    """A joined message, complete or given up on."""

    originator: str
    reference: int
    total: int
    text: str
    complete: bool
    #: Sequence numbers (1-based) that never arrived; empty when complete.
    missing: tuple[int, ...]
    #: The caller's clock when the first part arrived.
    first_seen: float
    #: The earliest service-centre time stamp among the parts, when known.
    timestamp: datetime | None = None


@dataclass
class _Group:
    first_seen: float
    parts: dict[int, str] = field(default_factory=dict)
    timestamp: datetime | None = None


def _join(pieces: list[str]) -> str:
    # Joining first lets a surrogate pair split across parts pair up again; any half
    # left alone becomes U+FFFD.
    joined = "".join(pieces)
    return joined.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")


class Reassembler:
    """Collect concatenated parts until each message is whole."""

    def __init__(self) -> None:
        self._groups: dict[_Key, _Group] = {}

    def __len__(self) -> int:
        """Return how many messages are waiting for parts."""
        return len(self._groups)

    def add(
        self,
        originator: str,
        reference: int,
        total: int,
        sequence: int,
        text: str,
        now: float,
        timestamp: datetime | None = None,
    ) -> Reassembled | None:
        """Add one part; return the joined message once every part is in, else None.

        A part numbered outside 1..total is ignored.
        """
        if not 1 <= sequence <= total:
            return None
        key = (originator, reference, total)
        group = self._groups.setdefault(key, _Group(first_seen=now))
        group.parts.setdefault(sequence, text)
        if timestamp is not None and (group.timestamp is None or timestamp < group.timestamp):
            group.timestamp = timestamp
        if len(group.parts) < total:
            return None
        del self._groups[key]
        return self._result(key, group)

    def add_deliver(self, deliver: Deliver, now: float) -> Reassembled | None:
        """Add a decoded SMS-DELIVER; one without a concatenation header comes straight back."""
        concat = deliver.concat
        if concat is None:
            return Reassembled(
                originator=deliver.originator,
                reference=0,
                total=1,
                text=_join([deliver.text]),
                complete=True,
                missing=(),
                first_seen=now,
                timestamp=deliver.timestamp,
            )
        return self.add(
            deliver.originator,
            concat.reference,
            concat.total,
            concat.sequence,
            deliver.text,
            now,
            deliver.timestamp,
        )

    def expired(self, now: float, timeout_s: float) -> list[Reassembled]:
        """Remove and return every incomplete message first seen more than timeout_s ago."""
        stale = [key for key, g in self._groups.items() if now - g.first_seen > timeout_s]
        return [self._result(key, self._groups.pop(key)) for key in stale]

    @staticmethod
    def _result(key: _Key, group: _Group) -> Reassembled:
        originator, reference, total = key
        missing = tuple(seq for seq in range(1, total + 1) if seq not in group.parts)
        return Reassembled(
            originator=originator,
            reference=reference,
            total=total,
            text=_join([group.parts[seq] for seq in sorted(group.parts)]),
            complete=not missing,
            missing=missing,
            first_seen=group.first_seen,
            timestamp=group.timestamp,
        )
