"""E1 (incoming SMS), E3 (test integration) and E8 (alert) requests, both directions."""

from __future__ import annotations

import dataclasses
import re

from smssync.errors import ProtocolError
from smssync.protocol.body import form_encode, json_encode_app, xml_encode_app
from smssync.records import BodyFormat, InboundMessage, KeyMap

TEST_FROM = "+000000000000"
TEST_MESSAGE = "Test Message From SMSSync Integration"
#: The App's default key names, used when a Sync URL renames none (S-5).
DEFAULT_KEYS = KeyMap()
#: The alert text, ``Battery level is at N`` (E8, G-18).
BATTERY_TEXT = "Battery level is at {percent}"
_BATTERY = re.compile(r"battery level is at\s*([0-9]{1,3})\s*%?", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class InboundPost:
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


PostRequest = InboundPost | TestIntegration | Alert


def _battery_percent(message: str) -> int | None:
    match = _BATTERY.search(message)
    if match is None:
        return None
    percent = int(match.group(1))
    return percent if percent <= 100 else None


def classify_post(fields: dict[str, str], keys: KeyMap = DEFAULT_KEYS) -> PostRequest:
    """Classify a POST/PUT without ``task`` by its fields (S-1, S-11, S-14, S-15, S-36).

    ``Task`` equal to ``alert`` (any case) is an alert, read with the default key names; the
    E3 shape (from ``+000000000000``, the test text, no message id) is a test; anything with a
    ``from`` or a ``message`` key (after the key map) is an SMS. Anything else raises
    ProtocolError (400: nothing to store).
    """
    # "Task" with a capital T is a body field; the lowercase "task" only ever is a query
    # parameter (§2.2), so it must not turn a body into an alert.
    if fields.get("Task", "").strip().lower() == "alert":
        message = fields.get("message", "")
        return Alert(
            secret=fields.get("secret"),
            message=message,
            error_code=fields.get("errorCode"),
            battery_percent=_battery_percent(message),
        )
    if (
        fields.get(keys.from_addr) == TEST_FROM
        and fields.get(keys.content) == TEST_MESSAGE
        and not fields.get(keys.message_id)
    ):
        return TestIntegration(secret=fields.get(keys.secret))
    if keys.from_addr not in fields and keys.content not in fields:
        # Covers an empty body and the stale {"message_result":"[]"} of the App's alert (S-15).
        raise ProtocolError(
            f"no {keys.from_addr} or {keys.content} field",
            fields=[keys.from_addr, keys.content],
        )
    return InboundPost(
        secret=fields.get(keys.secret),
        from_addr=fields.get(keys.from_addr),
        content=fields.get(keys.content),
        sent_timestamp=fields.get(keys.sent_timestamp),
        sent_to=fields.get(keys.sent_to),
        message_id=fields.get(keys.message_id),
        device_id=fields.get(keys.device_id),
    )


def secret_of(fields: dict[str, str], keys: KeyMap = DEFAULT_KEYS) -> str | None:
    """Return the body secret under the mapped key, or None when absent (for auth)."""
    return fields.get(keys.secret)


def _encode(pairs: list[tuple[str, str]], fmt: BodyFormat) -> bytes:
    if fmt is BodyFormat.JSON:
        return json_encode_app(pairs)
    if fmt is BodyFormat.XML:
        return xml_encode_app(pairs)
    return form_encode(pairs)


def encode_incoming(
    sms: InboundMessage, secret: str, fmt: BodyFormat = BodyFormat.FORM, keys: KeyMap = DEFAULT_KEYS
) -> bytes:
    """Build the E1 body the App sends: the seven fields in order, all present (G-1)."""
    values = (
        secret,
        sms.from_addr,
        sms.content,
        sms.sent_timestamp,
        sms.sent_to,
        sms.message_id,
        sms.device_id,
    )
    return _encode(list(zip(keys.wire_keys(), values, strict=True)), fmt)


def encode_test(
    secret: str, fmt: BodyFormat = BodyFormat.FORM, keys: KeyMap = DEFAULT_KEYS
) -> bytes:
    """Build the E3 body: ``secret``, ``from=+000000000000`` and the test message."""
    pairs = [(keys.secret, secret), (keys.from_addr, TEST_FROM), (keys.content, TEST_MESSAGE)]
    return _encode(pairs, fmt)


def encode_alert(message: str, secret: str | None, error_code: str | None = None) -> bytes:
    """Build the E8 form body ``Task=alert&message=...`` (G-18); ``secret`` added if given."""
    pairs = [("Task", "alert"), ("message", message)]
    if error_code is not None:
        pairs.append(("errorCode", error_code))
    if secret:  # an empty secret is no secret configured (G-18)
        pairs.append(("secret", secret))
    return form_encode(pairs)


def content_type_for(fmt: BodyFormat, app_xml_label: bool = False) -> str:
    """Return the Content-Type to send (G-1): form without charset; JSON and XML with
    ``charset=UTF-8``; XML labelled ``application/xml`` unless the App's JSON label is asked."""
    if fmt is BodyFormat.FORM:
        return "application/x-www-form-urlencoded"
    if fmt is BodyFormat.XML and not app_xml_label:
        return "application/xml; charset=UTF-8"
    return "application/json; charset=UTF-8"
