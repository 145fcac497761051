"""Device liveness: online while it polls within its window (S-9)."""

from __future__ import annotations

from datetime import datetime

from smssync.records import Device, is_online


def health(device: Device, now: datetime) -> str:
    """Return ``online``, ``offline`` or ``never`` (never seen)."""
    if device.last_seen_at is None:
        return "never"
    return (
        "online" if is_online(device.last_seen_at, device.settings.liveness_s, now) else "offline"
    )
