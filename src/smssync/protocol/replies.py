"""The reply envelope every SMSsync exchange uses (S-16, S-20)."""

from __future__ import annotations

from smssync.protocol.body import dump_json

CONTENT_TYPE = "application/json; charset=utf-8"

_SUCCESS = b'{"payload":{"success":true,"error":null}}'


def success() -> bytes:
    """Return ``{"payload":{"success":true,"error":null}}``."""
    return _SUCCESS


def failure(error: str) -> bytes:
    """Return ``{"payload":{"success":false,"error":"<error>"}}``."""
    return dump_json({"payload": {"success": False, "error": error}})
