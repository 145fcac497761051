"""The reply envelope every SMSsync exchange uses (S-16, S-20)."""

from __future__ import annotations

CONTENT_TYPE = "application/json; charset=utf-8"


def success() -> bytes:
    """Return ``{"payload":{"success":true,"error":null}}``."""
    raise NotImplementedError


def failure(error: str) -> bytes:
    """Return ``{"payload":{"success":false,"error":"<error>"}}``."""
    raise NotImplementedError
