"""E2 and E4 message lists, the E5 handshake and the E6 uuid list, both directions."""

from __future__ import annotations

import hmac

from smssync.errors import ProtocolError
from smssync.protocol import replies
from smssync.protocol.body import dump_gson, dump_json, load_json_object
from smssync.records import TaskMessage


def _message_objects(messages: list[TaskMessage]) -> list[dict[str, str]]:
    # Only to/message/uuid: a timestamp in any form makes the App drop the reply (S-17).
    objects = []
    for message in messages:
        obj = {"to": message.to_addr, "message": message.content}
        if message.message_id is not None:
            obj["uuid"] = message.message_id
        objects.append(obj)
    return objects


def build_send_reply(messages: list[TaskMessage], secret_echo: str | None) -> bytes:
    """Build the E4 reply (S-22, S-17, S-19): ``success`` true, ``task`` ``send``, ``secret``
    only when given, ``messages`` always present; entries with only ``to``, ``message``,
    ``uuid`` as strings and never a ``timestamp``."""
    payload: dict[str, object] = {"success": True, "error": None, "task": "send"}
    if secret_echo is not None:
        payload["secret"] = secret_echo
    payload["messages"] = _message_objects(messages)
    return dump_json({"payload": payload})


def build_inbound_reply(messages: list[TaskMessage]) -> bytes:
    """Build the E1 success reply, with E2 piggybacked messages when there are any
    (``task`` ``send`` and ``messages``), never a ``secret`` (S-19)."""
    if not messages:
        return replies.success()
    payload = {"success": True, "error": None, "task": "send"}
    return dump_json({"payload": {**payload, "messages": _message_objects(messages)}})


def _payload(raw: bytes) -> dict[str, object] | None:
    payload = load_json_object(raw).get("payload")
    return payload if isinstance(payload, dict) else None


def _read_messages(entries: object) -> list[TaskMessage]:
    """Read ``payload.messages`` leniently (G-6, G-11): entries without ``to`` or ``message``
    are skipped; numbers arrive as their text already; anything else in an entry is ignored."""
    if not isinstance(entries, list):
        return []
    messages = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        to_addr, content, uuid = entry.get("to"), entry.get("message"), entry.get("uuid")
        if not isinstance(to_addr, str) or not isinstance(content, str):
            continue
        messages.append(TaskMessage(to_addr, content, uuid if isinstance(uuid, str) else None))
    return messages


def parse_send_reply(raw: bytes, expected_secret: str | None) -> list[TaskMessage]:
    """Read an E4 reply as the gateway must (G-11): ``payload.task`` must be ``send`` and, if
    ``expected_secret`` is non-empty, ``payload.secret`` equal to it (constant time). Entries
    without ``to`` or ``message`` are skipped; numbers are coerced to strings; unknown keys
    and ``timestamp`` ignored; a missing ``uuid`` gives ``message_id=None``. Raises
    ProtocolError when the reply is not a task reply or the secret does not match."""
    payload = _payload(raw)
    if payload is None or payload.get("task") != "send":
        raise ProtocolError("not a task reply")
    if expected_secret:
        echoed = payload.get("secret")
        if not isinstance(echoed, str) or not hmac.compare_digest(
            echoed.encode("utf-8"), expected_secret.encode("utf-8")
        ):
            raise ProtocolError("secret mismatch")
    return _read_messages(payload.get("messages"))


def parse_piggyback(raw: bytes) -> tuple[bool, list[TaskMessage]]:
    """Read an E1 reply as G-6 says: (success, messages). ``success`` is true for JSON
    ``true`` or a string equal to ``true`` ignoring case; messages from ``payload.messages``,
    unexpected content ignored. Raises ProtocolError when the body does not parse."""
    payload = _payload(raw)
    if payload is None:
        return False, []
    flag = payload.get("success")
    ok = flag is True or (isinstance(flag, str) and flag.lower() == "true")
    # E2 messages only ride on a successful reply (G-13).
    return ok, _read_messages(payload.get("messages")) if ok else []


def build_sent_request(message_ids: list[str]) -> bytes:
    """Build the E5 body ``{"queued_messages":[...]}`` (Gson escaping of ``= ' < > &``)."""
    return dump_gson({"queued_messages": message_ids})


def parse_sent_request(raw: bytes) -> list[str | None]:
    """Read an E5 body: the ``queued_messages`` list, ``null`` entries kept as None.
    Raises ProtocolError when it is not such an object."""
    listed = load_json_object(raw).get("queued_messages")
    if not isinstance(listed, list):
        raise ProtocolError("queued_messages missing")
    return [item if isinstance(item, str) else None for item in listed]


def build_uuids_reply(message_ids: list[str]) -> bytes:
    """Build the top-level ``{"message_uuids":[...]}`` reply of E5 and E6 (S-18)."""
    return dump_json({"message_uuids": message_ids})


def parse_uuids_reply(raw: bytes) -> list[str]:
    """Read an E5/E6 reply: the top-level ``message_uuids`` strings; a list nested in
    ``payload`` counts as empty (G-12). Raises ProtocolError when the body does not parse."""
    listed = load_json_object(raw).get("message_uuids")
    if not isinstance(listed, list):
        return []
    return [item for item in listed if isinstance(item, str)]
