"""An in-process simulated phone network: phones by number, an SMSC, and fault knobs.

The network plays the SMSC of device-backends.md §8.2: a phone that sends gets a result and
a reference at once, the recipient's phone stores the SMS until its owner acknowledges it,
and a delivery report follows when one was asked for. One seeded random source and one
injectable clock make every run repeatable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import itertools
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from smssync.backends.base import (
    DELIVERED_NOT,
    DELIVERED_OK,
    SENT_GENERIC_FAILURE,
    SENT_NO_SERVICE,
    SENT_NULL_PDU,
    SENT_OK,
    SENT_RADIO_OFF,
    BackendEvent,
    DeliveryReport,
    DeviceStatus,
    InboundSms,
    SendResult,
)

#: Longest text the simulated SMSC accepts (255 concatenated UCS-2 parts of 67 characters).
MAX_TEXT_CHARS = 255 * 67


@dataclasses.dataclass
class Knobs:
    """Faults and delays the network applies; probabilities between 0 and 1."""

    #: Seconds between a submission (or an external SMS) and its arrival.
    delay_s: float = 0.0
    #: Chance that an SMS never arrives (its sender still sees success).
    loss: float = 0.0
    #: Chance that a submission fails at the radio, with ``send_failure_code``.
    send_failure: float = 0.0
    send_failure_code: int = SENT_GENERIC_FAILURE
    #: Chance that an arriving SMS is stored twice (the same SMS read again).
    duplicate: float = 0.0
    #: Seconds between arrival and the delivery report.
    report_delay_s: float = 0.0
    #: Chance that a delivery report says "not delivered".
    report_failure: float = 0.0
    #: Unknown recipients become passive phones; off, they get a permanent-error report.
    auto_register: bool = True

    def update(self, changes: dict[str, Any]) -> None:
        """Change knobs by name; ValueError for an unknown name or a bad value."""
        names = {f.name: f for f in dataclasses.fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise ValueError(f"unknown knob {key!r}")
            current = getattr(self, key)
            if isinstance(current, bool):
                setattr(self, key, bool(value))
            elif isinstance(current, int):
                setattr(self, key, int(value))
            else:
                number = float(value)
                if key not in ("delay_s", "report_delay_s") and not 0 <= number <= 1:
                    raise ValueError(f"{key} must be between 0 and 1")
                setattr(self, key, number)


@dataclasses.dataclass
class Submission:
    """One SMS a simulated phone sent, as the network saw it."""

    seq: int
    from_addr: str
    to_addr: str
    content: str
    at: datetime
    sent_code: int
    reference: str | None
    delivered_code: int | None = None


class SimPhone:
    """One simulated handset: an inbox kept until acknowledged, and settable status."""

    def __init__(self, number: str) -> None:
        self.number = number
        self.status = DeviceStatus(
            battery_percent=100, charging=True, signal_dbm=-71, signal_level=4
        )
        self.radio_on = True
        #: Every SMS that arrived, for assertions (kept after acknowledgement).
        self.received: list[InboundSms] = []
        self._pending: dict[str, tuple[int, BackendEvent]] = {}
        self._seq = itertools.count(1)
        self._mr = itertools.count(0)
        self._wake = asyncio.Event()

    def push(self, event: BackendEvent) -> None:
        """Store an event until the owner acknowledges it, and wake its readers."""
        self._pending[event.handle] = (next(self._seq), event)
        if isinstance(event, InboundSms):
            self.received.append(event)
        self._wake.set()

    def next_reference(self) -> str:
        """Return the next message reference, wrapping at 256 like a modem's MR."""
        return str(next(self._mr) % 256)

    def pending_after(self, cursor: int) -> list[tuple[int, BackendEvent]]:
        """Return unacknowledged events newer than ``cursor``, oldest first."""
        return sorted((item for item in self._pending.values() if item[0] > cursor), key=_seq)

    async def wait(self, cursor: int, timeout_s: float) -> list[tuple[int, BackendEvent]]:
        """Wait up to ``timeout_s`` for events newer than ``cursor``."""
        found = self.pending_after(cursor)
        if found or timeout_s <= 0:
            return found
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout_s)
        except TimeoutError:
            pass
        return self.pending_after(cursor)

    def acknowledge(self, handle: str) -> None:
        """Forget a stored event (the owner has it); unknown handles are ignored."""
        self._pending.pop(handle, None)

    def set_status(self, **changes: Any) -> None:
        """Change battery, charging, signal or registration."""
        self.status = dataclasses.replace(self.status, **changes)


def _seq(item: tuple[int, BackendEvent]) -> int:
    return item[0]


class SimNetwork:
    """Phones by number and the SMSC between them."""

    def __init__(
        self,
        knobs: Knobs | None = None,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.knobs = knobs or Knobs()
        self.random = random.Random(seed)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.phones: dict[str, SimPhone] = {}
        #: Every submission by every phone, in order.
        self.outbox: list[Submission] = []
        self._handles = itertools.count(1)

    def phone(self, number: str) -> SimPhone:
        """Return the phone with this number, registering it if new."""
        if number not in self.phones:
            self.phones[number] = SimPhone(number)
        return self.phones[number]

    async def deliver(self, from_addr: str, to_addr: str, content: str) -> None:
        """Bring an SMS from outside (or from another phone) to ``to_addr``'s inbox."""
        sent_at = self.clock().replace(microsecond=0)
        if self.random.random() < self.knobs.loss:
            return
        copies = 2 if self.random.random() < self.knobs.duplicate else 1
        phone = self.phone(to_addr)
        key = f"{from_addr}|{int(sent_at.timestamp())}|{content}"
        for _ in range(copies):
            sms = InboundSms(from_addr, content, sent_at, key, f"sms-{next(self._handles)}")
            self._later(self.knobs.delay_s, functools.partial(phone.push, sms))

    async def submit(
        self, from_number: str, to_addr: str, content: str, request_report: bool
    ) -> SendResult:
        """Send an SMS from a phone: the radio's result now, the arrival and report later."""
        sender = self.phone(from_number)
        now = self.clock()
        code, detail = SENT_OK, "accepted"
        if not sender.radio_on:
            code, detail = SENT_RADIO_OFF, "radio off"
        elif not sender.status.registered:
            code, detail = SENT_NO_SERVICE, "not registered"
        elif len(content) > MAX_TEXT_CHARS:
            code, detail = SENT_NULL_PDU, "too long for a PDU"
        elif self.random.random() < self.knobs.send_failure:
            code, detail = self.knobs.send_failure_code, "send failure knob"
        reference = sender.next_reference() if code == SENT_OK else None
        submission = Submission(
            len(self.outbox) + 1, from_number, to_addr, content, now, code, reference
        )
        self.outbox.append(submission)
        if code != SENT_OK:
            return SendResult(code, None, now, detail)
        known = to_addr in self.phones or self.knobs.auto_register
        if known:
            await self.deliver(from_number, to_addr, content)
        if request_report and reference is not None:
            failed = not known or self.random.random() < self.knobs.report_failure
            delivered = DELIVERED_NOT if failed else DELIVERED_OK
            delay = self.knobs.delay_s + self.knobs.report_delay_s
            self._later(
                delay, functools.partial(self._report, sender, submission, reference, delivered)
            )
        return SendResult(code, reference if request_report else None, now, detail)

    def _report(
        self, sender: SimPhone, submission: Submission, reference: str, delivered: int
    ) -> None:
        submission.delivered_code = delivered
        report = DeliveryReport(reference, delivered, self.clock(), f"dr-{next(self._handles)}")
        sender.push(report)

    def _later(self, delay_s: float, work: Callable[[], None]) -> None:
        # Without a delay, arrival is immediate so that in-process tests need not wait.
        if delay_s <= 0:
            work()
            return
        asyncio.get_running_loop().call_later(delay_s, work)
