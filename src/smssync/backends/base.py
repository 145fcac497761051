"""The backend contract (device-backends.md §1) and the values that cross it.

A backend hands over whole messages with aware UTC timestamps and addresses as received;
the gateway stores each event durably, then acknowledges it so the device may forget it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol

#: Android sent codes (spec §4.1, G-14).
SENT_OK = -1
SENT_GENERIC_FAILURE = 1
SENT_RADIO_OFF = 2
SENT_NULL_PDU = 3
SENT_NO_SERVICE = 4
#: Android delivery codes (spec §4.1).
DELIVERED_OK = -1
DELIVERED_NOT = 0


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a backend can know; the gateway never invents what is declared absent."""

    delivery_reports: bool
    battery: bool
    signal: bool


@dataclasses.dataclass(frozen=True)
class InboundSms:
    """A whole incoming SMS, as the device holds it until acknowledged."""

    from_addr: str
    content: str
    #: The network (SMSC) timestamp, aware UTC; None when the device gives none (G-2).
    sent_at: datetime | None
    #: Identifies re-reads of the same stored SMS (originator + SC timestamp + text, or an id).
    natural_key: str
    #: Backend handle used to acknowledge (delete) the message after it is stored.
    handle: str


@dataclasses.dataclass(frozen=True)
class DeliveryReport:
    """A final status report for an SMS this device sent."""

    #: The reference the backend returned in ``SendResult.reference``.
    reference: str
    #: ``DELIVERED_OK`` or ``DELIVERED_NOT``; temporary statuses are never reported.
    delivered_code: int
    at: datetime
    handle: str


BackendEvent = InboundSms | DeliveryReport


@dataclasses.dataclass(frozen=True)
class SendResult:
    """What the radio said about one whole outgoing message."""

    #: Android sent code: ``SENT_OK`` or 1–4 (G-14); None when the message was handed to the
    #: platform but its outcome is unknown (no code is invented, device-backends.md §7).
    sent_code: int | None
    #: Reference a later ``DeliveryReport`` carries; None when no report will come.
    reference: str | None
    at: datetime
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Tell whether the network accepted the message (False when the outcome is unknown)."""
        return self.sent_code == SENT_OK


@dataclasses.dataclass(frozen=True)
class DeviceStatus:
    """Battery, signal and registration; None where the backend cannot know."""

    battery_percent: int | None = None
    charging: bool | None = None
    signal_dbm: int | None = None
    #: 0–4 bars.
    signal_level: int | None = None
    registered: bool = True
    #: The SMS service centre the device sends through; "" when it has none (every send
    #: fails), None when the backend cannot tell.
    service_centre: str | None = None


class Backend(Protocol):
    """A phone, modem or simulated device the gateway receives and sends through."""

    @property
    def capabilities(self) -> Capabilities:
        """Declare what this backend can report."""
        ...

    @property
    def own_number(self) -> str | None:
        """Return the device's own number when the SIM or network knows it."""
        ...

    async def open(self) -> None:
        """Connect to the device; raise BackendError when it cannot be reached."""
        ...

    async def close(self) -> None:
        """Release the device."""
        ...

    async def send(self, to_addr: str, content: str, request_report: bool) -> SendResult:
        """Send one whole message and return the radio's result (never raises for radio
        failures: they are sent codes)."""
        ...

    def events(self) -> AsyncIterator[BackendEvent]:
        """Yield received SMS and delivery reports, unacknowledged ones first after a restart."""
        ...

    async def acknowledge(self, event: BackendEvent) -> None:
        """Let the device forget an event the gateway has stored durably."""
        ...

    async def status(self) -> DeviceStatus:
        """Return battery, signal and registration."""
        ...
