"""E2 and E4 message lists, the E5 handshake and the E6 uuid list, both directions."""

from __future__ import annotations

from smssync.messages import TaskMessage


def build_send_reply(messages: list[TaskMessage], secret_echo: str | None) -> bytes:
    """Build the E4 reply (S-22, S-17, S-19): ``success`` true, ``task`` ``send``, ``secret``
    only when given, ``messages`` always present; entries with only ``to``, ``message``,
    ``uuid`` as strings and never a ``timestamp``."""
    raise NotImplementedError


def build_inbound_reply(messages: list[TaskMessage]) -> bytes:
    """Build the E1 success reply, with E2 piggybacked messages when there are any
    (``task`` ``send`` and ``messages``), never a ``secret`` (S-19)."""
    raise NotImplementedError


def parse_send_reply(raw: bytes, expected_secret: str | None) -> list[TaskMessage]:
    """Read an E4 reply as the gateway must (G-11): ``payload.task`` must be ``send`` and, if
    ``expected_secret`` is non-empty, ``payload.secret`` equal to it (constant time). Entries
    without ``to`` or ``message`` are skipped; numbers are coerced to strings; unknown keys
    and ``timestamp`` ignored; a missing ``uuid`` gives ``message_id=None``. Raises
    ProtocolError when the reply is not a task reply or the secret does not match."""
    raise NotImplementedError


def parse_piggyback(raw: bytes) -> tuple[bool, list[TaskMessage]]:
    """Read an E1 reply as G-6 says: (success, messages). ``success`` is true for JSON
    ``true`` or a string equal to ``true`` ignoring case; messages from ``payload.messages``,
    unexpected content ignored. Raises ProtocolError when the body does not parse."""
    raise NotImplementedError


def build_sent_request(message_ids: list[str]) -> bytes:
    """Build the E5 body ``{"queued_messages":[...]}`` (Gson escaping of ``= ' < > &``)."""
    raise NotImplementedError


def parse_sent_request(raw: bytes) -> list[str | None]:
    """Read an E5 body: the ``queued_messages`` list, ``null`` entries kept as None.
    Raises ProtocolError when it is not such an object."""
    raise NotImplementedError


def build_uuids_reply(message_ids: list[str]) -> bytes:
    """Build the top-level ``{"message_uuids":[...]}`` reply of E5 and E6 (S-18)."""
    raise NotImplementedError


def parse_uuids_reply(raw: bytes) -> list[str]:
    """Read an E5/E6 reply: the top-level ``message_uuids`` strings; a list nested in
    ``payload`` counts as empty (G-12). Raises ProtocolError when the body does not parse."""
    raise NotImplementedError
