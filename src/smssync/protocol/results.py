"""E7 result reports: both encodings of ``message_result``; §4.1 codes; the S-33 mapping."""

from __future__ import annotations

import re
from datetime import tzinfo

from smssync.errors import ProtocolError
from smssync.protocol.body import dump_gson, load_json, load_json_object
from smssync.protocol.timestamps import parse_result_timestamp
from smssync.records import MessageResult, OutboundStatus, SendOutcome

#: Android sent codes and the texts the App stores (§4.1).
SENT_TEXTS: dict[int, str] = {
    -1: "SMS sent",
    1: "Failed to send SMS - Maybe insufficient air time on the phone.",
    2: "Failed to send SMS because radio was explicitly turned off",
    3: "Failed to send SMS because no pdu provided",
    4: "Failed to send SMS because service is currently unavailable",
}
UNKNOWN_SENT_TEXT = "Unknown error while sending sms."
DELIVERED_TEXTS: dict[int, str] = {-1: "SMS delivered", 0: "SMS not delivered"}

#: The reason given when a failure's code cannot be told (S-33).
UNKNOWN_REASON = "unknown"
# Bounded so int() never meets a huge digit string; real codes are tiny.
_CODE = re.compile(r"\s*([+-]?[0-9]{1,9})\s*")


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


_CODE_BY_TEXT = {_normal(text): code for code, text in SENT_TEXTS.items()}

# (wire name, MessageResult field) in Gson's order, which is the App's field order.
_FIELDS = (
    ("uuid", "message_id"),
    ("sent_result_code", "sent_code"),
    ("sent_result_message", "sent_message"),
    ("delivered_result_code", "delivered_code"),
    ("delivered_result_message", "delivered_message"),
    ("sent_timestamp", "sent_timestamp"),
    ("delivered_timestamp", "delivered_timestamp"),
)


def _code(value: object) -> int | None:
    # Numbers arrive as their JSON text, so "-1" and -1 read alike.
    if isinstance(value, str):
        match = _CODE.fullmatch(value)
        if match:
            return int(match.group(1))
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _entry(obj: dict[str, object]) -> MessageResult | None:
    uuid = obj.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        return None
    return MessageResult(
        message_id=uuid,
        sent_code=_code(obj.get("sent_result_code")),
        sent_message=_text(obj.get("sent_result_message")),
        delivered_code=_code(obj.get("delivered_result_code")),
        delivered_message=_text(obj.get("delivered_result_message")),
        sent_timestamp=_text(obj.get("sent_timestamp")),
        delivered_timestamp=_text(obj.get("delivered_timestamp")),
    )


def parse_result_request(raw: bytes) -> list[MessageResult]:
    """Read an E7 body (S-32): ``message_result`` as an array or as a string holding one
    (``"[]"`` included). Unknown fields ignored; codes as ints (numeric strings accepted);
    entries without a ``uuid`` skipped. Raises ProtocolError for anything else."""
    listed = load_json_object(raw).get("message_result")
    if isinstance(listed, str):
        # The App double-encodes: the array arrives as a JSON string (§4 E7).
        try:
            listed = load_json(listed)
        except ProtocolError:
            raise ProtocolError("message_result is not an array") from None
    if not isinstance(listed, list):
        raise ProtocolError("message_result is not an array")
    entries = (_entry(item) for item in listed if isinstance(item, dict))
    return [entry for entry in entries if entry is not None]


def build_result_request(results: list[MessageResult], app_string: bool = False) -> bytes:
    """Build the E7 body: a JSON array by default, the App's double-encoded string with
    ``app_string`` (G-16). Gson field order, None fields omitted."""
    entries = [
        {wire: value for wire, attr in _FIELDS if (value := getattr(result, attr)) is not None}
        for result in results
    ]
    if app_string:
        return dump_gson({"message_result": dump_gson(entries).decode("utf-8")})
    return dump_gson({"message_result": entries})


def sent_code_from_text(text: str | None) -> int | None:
    """Derive the Android sent code from a §4.1 text (case-insensitive, whitespace
    collapsed); None when the text is not one of them."""
    if text is None:
        return None
    # UNKNOWN_SENT_TEXT is not in the table, so it gives None: the code stays unknown.
    return _CODE_BY_TEXT.get(_normal(text))


def _sent_status(result: MessageResult) -> tuple[OutboundStatus | None, str | None]:
    code = result.sent_code
    if code in (0, None):
        # 0 is all the App ever sends (never set), so the text is the only evidence (S-33).
        derived = sent_code_from_text(result.sent_message)
        if derived is None:
            if code is None and result.sent_message is None:
                return None, None  # nothing reported about the send
            return OutboundStatus.FAILED, UNKNOWN_REASON
        code = derived
    if code == -1:
        return OutboundStatus.SENT, None
    if code in SENT_TEXTS:
        return OutboundStatus.FAILED, f"{code}: {SENT_TEXTS[code]}"
    return OutboundStatus.FAILED, f"{code}: {UNKNOWN_REASON}"


def outcome(result: MessageResult, zone: tzinfo) -> SendOutcome:
    """Map one result to statuses (S-33, S-34): sent ``-1`` → sent; ``1``–``4`` → failed;
    ``0`` → derived from the text, unknown text → failed with reason ``unknown``; delivery
    ``-1`` → delivered, ``0`` → undelivered only after a successful send, missing → open.
    Timestamps parsed in ``zone`` when they carry none; unparseable ones give None."""
    status, reason = _sent_status(result)
    delivered: OutboundStatus | None = None
    if status is not OutboundStatus.FAILED:
        if result.delivered_code == -1:
            # A delivery report proves the send even when the send itself was not reported.
            delivered = OutboundStatus.DELIVERED
        elif result.delivered_code == 0 and status in (OutboundStatus.SENT, None):
            # Without a sent code the store decides: only a message already sent can be
            # undelivered (S-33).
            delivered = OutboundStatus.UNDELIVERED
    return SendOutcome(
        status=status,
        reason=reason,
        delivered=delivered,
        sent_at=parse_result_timestamp(result.sent_timestamp, zone),
        delivered_at=(
            parse_result_timestamp(result.delivered_timestamp, zone) if delivered else None
        ),
        sent_timestamp_raw=result.sent_timestamp,
        delivered_timestamp_raw=result.delivered_timestamp if delivered else None,
    )
