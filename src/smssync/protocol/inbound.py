"""E1 (incoming SMS), E3 (test integration) and E8 (alert) requests, both directions."""

from __future__ import annotations

import dataclasses

from smssync.messages import BodyFormat, InboundMessage, KeyMap

TEST_FROM = "+000000000000"
TEST_MESSAGE = "Test Message From SMSSync Integration"


@dataclasses.dataclass(frozen=True)
class IncomingSms:
    """An E1 request as the server read it: every value raw, None where the key was absent."""

    secret: str | None
    from_addr: str | None
    content: str | None
    sent_timestamp: str | None
    sent_to: str | None
    message_id: str | None
    device_id: str | None


@dataclasses.dataclass(frozen=True)
class TestIntegration:
    """An E3 request ("test integration" in the App): authenticate, store nothing (S-14)."""

    secret: str | None


@dataclasses.dataclass(frozen=True)
class Alert:
    """An E8 request (``Task=alert``) (S-36)."""

    secret: str | None
    message: str
    error_code: str | None
    battery_percent: int | None


PostRequest = IncomingSms | TestIntegration | Alert


def classify_post(fields: dict[str, str], keys: KeyMap = KeyMap()) -> PostRequest:
    """Classify a POST/PUT without ``task`` by its fields (S-1, S-11, S-14, S-15, S-36).

    ``Task`` equal to ``alert`` (any case) is an alert, read with the default key names; the
    E3 shape (from ``+000000000000``, the test text, no message id) is a test; anything with a
    ``from`` or a ``message`` key (after the key map) is an SMS. Anything else raises
    ProtocolError (400: nothing to store).
    """
    raise NotImplementedError


def secret_of(fields: dict[str, str], keys: KeyMap = KeyMap()) -> str | None:
    """Return the body secret under the mapped key, or None when absent (for auth)."""
    raise NotImplementedError


def encode_incoming(
    sms: InboundMessage, secret: str, fmt: BodyFormat = BodyFormat.FORM, keys: KeyMap = KeyMap()
) -> bytes:
    """Build the E1 body the App sends: the seven fields in order, all present (G-1)."""
    raise NotImplementedError


def encode_test(secret: str, fmt: BodyFormat = BodyFormat.FORM, keys: KeyMap = KeyMap()) -> bytes:
    """Build the E3 body: ``secret``, ``from=+000000000000`` and the test message."""
    raise NotImplementedError


def encode_alert(message: str, secret: str | None, error_code: str | None = None) -> bytes:
    """Build the E8 form body ``Task=alert&message=...`` (G-18); ``secret`` added if given."""
    raise NotImplementedError


def content_type_for(fmt: BodyFormat, app_xml_label: bool = False) -> str:
    """Return the Content-Type to send (G-1): form without charset; JSON and XML with
    ``charset=UTF-8``; XML labelled ``application/xml`` unless the App's JSON label is asked."""
    raise NotImplementedError
