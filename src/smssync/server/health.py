"""Device liveness: online while it polls within its window (S-9)."""

from __future__ import annotations

from datetime import datetime, timedelta

from smssync.store.base import Device


def health(device: Device, now: datetime) -> str:
    """Return ``online``, ``offline`` or ``never`` (never seen)."""
    if device.last_seen_at is None:
        return "never"
    silent = now - device.last_seen_at
    return "online" if silent <= timedelta(seconds=device.settings.liveness_s) else "offline"
