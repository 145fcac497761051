"""Alerts: a condition a person should hear about, raised once and resolved when it clears."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any


class AlertKind(enum.StrEnum):
    """What an alert is about; ``device.*`` and ``messages.stuck`` name a device."""

    #: Not heard from within its liveness window (S-9); resolved when it polls again.
    DEVICE_SILENT = "device.silent"
    #: The phone said ``Battery level is at N`` (E8, S-36); resolved when it is heard from
    #: a liveness window or more later (the App stops syncing on low battery).
    BATTERY_LOW = "device.battery_low"
    #: Several sends in a row reported failed (no airtime, radio off, no service: §4.1);
    #: resolved by the next send reported sent.
    SEND_FAILING = "device.send_failing"
    #: Messages accepted by the device long ago without a result (S-30); resolved when none
    #: of its messages is stuck any more.
    MESSAGES_STUCK = "messages.stuck"
    #: Deliveries to a webhook endpoint failed several attempts in a row; resolved by the
    #: next delivery it accepts, or when the endpoint is removed.
    WEBHOOK_FAILING = "webhook.failing"


class AlertState(enum.StrEnum):
    """Where an alert is, as listed."""

    #: Raised, nobody acknowledged it, the condition holds.
    OPEN = "open"
    #: A person said they saw it; the condition still holds.
    ACKNOWLEDGED = "acknowledged"
    #: The condition cleared (final; the same condition later raises a new alert).
    RESOLVED = "resolved"


@dataclasses.dataclass(frozen=True)
class Alert:
    """A stored alert."""

    id: int
    kind: AlertKind
    #: The device's name; None for alerts about no device, or a device since removed.
    device: str | None
    details: dict[str, Any]
    raised_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None

    @property
    def state(self) -> AlertState:
        """Open, acknowledged or resolved."""
        if self.resolved_at is not None:
            return AlertState.RESOLVED
        if self.acknowledged_at is not None:
            return AlertState.ACKNOWLEDGED
        return AlertState.OPEN
