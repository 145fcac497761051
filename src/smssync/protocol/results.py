"""E7 result reports: both encodings of ``message_result``; §4.1 codes; the S-33 mapping."""

from __future__ import annotations

from datetime import tzinfo

from smssync.messages import MessageResult, SendOutcome

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


def parse_result_request(raw: bytes) -> list[MessageResult]:
    """Read an E7 body (S-32): ``message_result`` as an array or as a string holding one
    (``"[]"`` included). Unknown fields ignored; codes as ints (numeric strings accepted);
    entries without a ``uuid`` skipped. Raises ProtocolError for anything else."""
    raise NotImplementedError


def build_result_request(results: list[MessageResult], app_string: bool = False) -> bytes:
    """Build the E7 body: a JSON array by default, the App's double-encoded string with
    ``app_string`` (G-16). Gson field order, None fields omitted."""
    raise NotImplementedError


def sent_code_from_text(text: str | None) -> int | None:
    """Derive the Android sent code from a §4.1 text (case-insensitive, whitespace
    collapsed); None when the text is not one of them."""
    raise NotImplementedError


def outcome(result: MessageResult, zone: tzinfo) -> SendOutcome:
    """Map one result to statuses (S-33, S-34): sent ``-1`` → sent; ``1``–``4`` → failed;
    ``0`` → derived from the text, unknown text → failed with reason ``unknown``; delivery
    ``-1`` → delivered, ``0`` → undelivered only after a successful send, missing → open.
    Timestamps parsed in ``zone`` when they carry none; unparseable ones give None."""
    raise NotImplementedError
