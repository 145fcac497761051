"""Sign and verify smssync webhooks; receivers import ``verify`` from here.

Every webhook request carries::

    X-Smssync-Event-Id:  evt_…            (also the body's "id"; deduplicate on it)
    X-Smssync-Timestamp: 1700000000       (Unix seconds when this attempt was signed)
    X-Smssync-Signature: v1=<hex>         (HMAC-SHA256 of f"{timestamp}.{raw body}")

The secret is the endpoint's signing secret (``smssync webhook add`` prints it once) or, for
a message's ``status_callback``, the signing secret of the API key that sent it. Verify the
raw bytes as received, before parsing the JSON. No I/O here.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "sign", "signature", "verify"]

TIMESTAMP_HEADER = "X-Smssync-Timestamp"
SIGNATURE_HEADER = "X-Smssync-Signature"
EVENT_ID_HEADER = "X-Smssync-Event-Id"
#: The scheme prefix lets a future signature version sit beside this one.
SCHEME = "v1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``f"{timestamp}."`` followed by the raw body."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Return the timestamp and signature headers for one delivery attempt."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: f"{SCHEME}={signature(secret, stamp, body)}",
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_s: int = 300,
    now: float | None = None,
) -> bool:
    """Tell whether a webhook request is authentic and recent.

    ``headers`` may be any mapping (case-insensitive lookup); ``body`` the raw bytes. A
    timestamp more than ``tolerance_s`` away from ``now`` is refused, so that a captured
    request cannot be replayed later.
    """
    stamp = _header(headers, TIMESTAMP_HEADER)
    header = _header(headers, SIGNATURE_HEADER)
    if stamp is None or header is None or not stamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance_s:
        return False
    expected = signature(secret, int(stamp), body)
    for part in header.split(","):
        scheme, _, value = part.strip().partition("=")
        if scheme == SCHEME and hmac.compare_digest(value, expected):
            return True
    return False
