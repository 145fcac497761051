"""Every worked example of spec §8 against a real ``smssync serve`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import secrets
import urllib.parse
import uuid
from typing import Any
from unittest.mock import ANY

import httpx

from tests.e2e.serverproc import Server

UNAUTHORIZED = {"payload": {"success": False, "error": "unauthorized"}}
OK = {"payload": {"success": True, "error": None}}
FORM = "application/x-www-form-urlencoded"
JSON = "application/json; charset=UTF-8"


def device(server: Server, *extra: str, secret: str | None = None) -> dict[str, Any]:
    """Register a fresh device with the spec's secret, made its own (no two devices share one)."""
    name = "phone-" + secrets.token_hex(4)
    if secret is None:
        secret = "my secret " + secrets.token_hex(3)
    args = ["--secret", secret] if secret else ["--no-secret"]
    return server.add_device(name, *args, *extra)


def form(dev: dict[str, Any]) -> str:
    """Return the device's secret as the App's form encodes it (space as %20)."""
    return urllib.parse.quote(dev["secret"])


def plus(dev: dict[str, Any]) -> str:
    """Return the device's secret as the App's query encodes it (space as +)."""
    return urllib.parse.quote_plus(dev["secret"])


def e1_form(secret: str, message_id: str, message: str = "Hello%20world") -> bytes:
    return (
        f"secret={secret}&from=%2B254700000001&message={message}&sent_timestamp=1487658999000"
        f"&sent_to=&message_id={message_id}&device_id=phone1"
    ).encode()


def inbound(server: Server, name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = server.cli_json("messages", "--device", name)
    return rows


def outbound(server: Server, name: str | None = None) -> list[dict[str, Any]]:
    args = ["messages", "--direction", "out"] + (["--device", name] if name else [])
    rows: list[dict[str, Any]] = server.cli_json(*args)
    return rows


def queue(server: Server, to: str, text: str, name: str) -> str:
    return str(server.cli_json("send", "--to", to, "--device", name, text)["uuid"])


def test_8_1_form_stored_once_and_retry_stores_nothing(server: Server, http: httpx.Client) -> None:
    dev = device(server)
    mid = str(uuid.uuid4())
    for _ in range(3):
        reply = http.post(
            dev["sync_url"], content=e1_form(form(dev), mid), headers={"content-type": FORM}
        )
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "application/json; charset=utf-8"
        assert reply.json() == OK
    rows = inbound(server, dev["name"])
    assert len(rows) == 1
    row = rows[0]
    assert (row["from"], row["body"], row["message_id"]) == ("+254700000001", "Hello world", mid)
    assert row["sent_at"] == "2017-02-21T06:36:39Z"
    assert row["sent_timestamp_raw"] == "1487658999000"
    assert row["flags"] == []


def test_8_1_wrong_secret_unknown_token_are_403_and_store_nothing(
    server: Server, http: httpx.Client
) -> None:
    dev = device(server)
    bad = http.post(
        dev["sync_url"], content=e1_form("wrong", str(uuid.uuid4())), headers={"content-type": FORM}
    )
    assert (bad.status_code, bad.json()) == (403, UNAUTHORIZED)
    empty = http.post(
        dev["sync_url"], content=e1_form("", str(uuid.uuid4())), headers={"content-type": FORM}
    )
    assert (empty.status_code, empty.json()) == (403, UNAUTHORIZED)
    unknown = http.post(
        dev["shared_sync_url"] + "/d/" + "A" * 24,
        content=e1_form(form(dev), str(uuid.uuid4())),
        headers={"content-type": FORM},
    )
    assert (unknown.status_code, unknown.json()) == (403, UNAUTHORIZED)
    # Shared URL, no token, no secret at all.
    nothing = http.get(dev["shared_sync_url"] + "?task=send")
    assert (nothing.status_code, nothing.json()) == (403, UNAUTHORIZED)
    assert "my secret" not in nothing.text
    assert inbound(server, dev["name"]) == []


def test_8_1_per_device_secret_on_the_shared_url(server: Server, http: httpx.Client) -> None:
    secret = "s3cret " + secrets.token_hex(4)
    dev = device(server, secret=secret)
    body = e1_form(secret.replace(" ", "%20"), str(uuid.uuid4()))
    reply = http.post(dev["shared_sync_url"], content=body, headers={"content-type": FORM})
    assert reply.json() == OK
    assert len(inbound(server, dev["name"])) == 1
    # Case and whitespace matter (S-7).
    upper = e1_form(secret.upper().replace(" ", "%20"), str(uuid.uuid4()))
    assert (
        http.post(dev["shared_sync_url"], content=upper, headers={"content-type": FORM}).status_code
        == 403
    )


def test_8_2_json_and_xml_labelled_json(server: Server, http: httpx.Client) -> None:
    dev = device(server)
    json_body = (
        '{"secret":"' + dev["secret"] + '","from":"+254700000001","message":"see http:\\/\\/x.org",'
        '"sent_timestamp":"1487658999000","sent_to":"","message_id":'
        '"c9bf9e57-1685-4c89-bafb-ff5af830be8a","device_id":"phone1"}'
    )
    xml_body = (
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><payload><secret>"
        + dev["secret"]
        + "</secret><from>+254700000001</from><message>Hi</message><sent_timestamp>1487658999000"
        "</sent_timestamp><sent_to></sent_to><message_id>0d3f5a2e-7c41-4e0b-9a57-3b2c1d4e5f60"
        "</message_id><device_id>phone1</device_id></payload>"
    )
    for body in (json_body, xml_body):
        reply = http.post(dev["sync_url"], content=body.encode(), headers={"content-type": JSON})
        assert (reply.status_code, reply.json()) == (200, OK)
    bodies = sorted(r["body"] for r in inbound(server, dev["name"]))
    assert bodies == ["Hi", "see http://x.org"]


def test_8_3_reply_from_server_piggybacks_without_timestamp(
    server: Server, http: httpx.Client
) -> None:
    dev = device(server)
    server.cli("device", "set", dev["name"], "--reply-from-server")
    task_uuid = queue(server, "+254700000001", "Thanks, received", dev["name"])
    mid = str(uuid.uuid4())
    reply = http.post(
        dev["sync_url"], content=e1_form(form(dev), mid), headers={"content-type": FORM}
    )
    payload = reply.json()["payload"]
    assert payload["success"] is True and payload["task"] == "send"
    assert "secret" not in payload
    [message] = payload["messages"]
    assert message == {"to": "+254700000001", "message": "Thanks, received", "uuid": ANY}
    # The phone gets a wire id of its own, never the uuid API readers see (S-21, S-29).
    assert uuid.UUID(message["uuid"]).version == 4 and message["uuid"] != task_uuid
    # A duplicate of the same SMS gets success and nothing piggybacked (S-10, S-25).
    again = http.post(
        dev["sync_url"], content=e1_form(form(dev), mid), headers={"content-type": FORM}
    )
    assert again.json() == OK
    assert outbound(server, dev["name"])[0]["status"] == "dispatched"


def test_8_4_test_integration_stores_nothing(server: Server, http: httpx.Client) -> None:
    dev = device(server)
    body = (
        b"secret=" + form(dev).encode() + b"&from=%2B000000000000"
        b"&message=Test%20Message%20From%20SMSSync%20Integration"
    )
    reply = http.post(dev["sync_url"], content=body, headers={"content-type": FORM})
    assert (reply.status_code, reply.json()) == (200, OK)
    bad = http.post(
        dev["sync_url"],
        content=body.replace(form(dev).encode(), b"nope"),
        headers={"content-type": FORM},
    )
    assert bad.status_code == 403
    assert inbound(server, dev["name"]) == []


def test_8_5_poll_then_handshake_drops_cancelled(server: Server, http: httpx.Client) -> None:
    dev = device(server)
    first = queue(server, "+254700000002", "Your code is 4711", dev["name"])
    second = queue(server, "+254700000003", "Reminder", dev["name"])
    poll = http.get(dev["sync_url"] + "?task=send&secret=" + plus(dev))
    assert poll.status_code == 200
    wire_first, wire_second = (m["uuid"] for m in poll.json()["payload"]["messages"])
    assert not {wire_first, wire_second} & {first, second}
    assert poll.json() == {
        "payload": {
            "success": True,
            "error": None,
            "task": "send",
            "secret": dev["secret"],
            "messages": [
                {"to": "+254700000002", "message": "Your code is 4711", "uuid": wire_first},
                {"to": "+254700000003", "message": "Reminder", "uuid": wire_second},
            ],
        }
    }
    server.cli("cancel", second)
    ack = http.post(
        dev["sync_url"] + "?task=sent",
        content=json.dumps({"queued_messages": [wire_first, wire_second]}).encode(),
        headers={"content-type": JSON},
    )
    assert (ack.status_code, ack.json()) == (200, {"message_uuids": [wire_first]})
    statuses = {m["uuid"]: m["status"] for m in outbound(server, dev["name"])}
    assert statuses == {first: "accepted", second: "cancelled"}
    # Nothing is handed out twice.
    assert (
        http.get(dev["sync_url"] + "?task=send&secret=" + plus(dev)).json()["payload"]["messages"]
        == []
    )


def test_8_6_sync_url_with_a_query(server: Server, http: httpx.Client) -> None:
    dev = device(server)
    queue(server, "+254700000002", "hello", dev["name"])
    reply = http.get(dev["sync_url"] + "?key=1?task=send&secret=" + plus(dev))
    payload = reply.json()["payload"]
    assert payload["task"] == "send" and payload["secret"] == dev["secret"]
    assert [m["message"] for m in payload["messages"]] == ["hello"]


def test_secret_is_never_echoed_when_not_sent(server: Server, http: httpx.Client) -> None:
    # Only a device without a secret may poll without one (S-6).
    dev = device(server, secret="")
    reply = http.get(dev["sync_url"] + "?task=send")
    assert reply.status_code == 200
    assert "secret" not in reply.json()["payload"]
    assert "my secret" not in reply.text


def _hand_over(
    server: Server, http: httpx.Client, dev: dict[str, Any], text: str
) -> tuple[str, str]:
    """Queue, poll and confirm one message; return its public uuid and its wire id."""
    task_uuid = queue(server, "+254700000002", text, dev["name"])
    poll = http.get(dev["sync_url"] + "?task=send&secret=" + plus(dev))
    [wire_id] = [m["uuid"] for m in poll.json()["payload"]["messages"]]
    ack = http.post(
        dev["sync_url"] + "?task=sent",
        content=json.dumps({"queued_messages": [wire_id]}).encode(),
        headers={"content-type": JSON},
    )
    assert ack.json() == {"message_uuids": [wire_id]}
    return task_uuid, wire_id


def test_8_7_results_app_form_and_gateway_form(server: Server, http: httpx.Client) -> None:
    dev = device(server)
    failed, wire_failed = _hand_over(server, http, dev, "one")
    delivered, wire_delivered = _hand_over(server, http, dev, "two")
    listing = http.get(dev["sync_url"] + "?task=result&secret=" + plus(dev))
    assert listing.status_code == 200
    assert listing.json() == {"message_uuids": [wire_failed, wire_delivered]}
    app_form = {
        "message_result": json.dumps(
            [
                {
                    "uuid": wire_failed,
                    "sent_result_code": 0,
                    "sent_result_message": "Failed to send SMS because no pdu provided",
                    "delivered_result_code": 0,
                    "sent_timestamp": "Feb 21, 2017 3:36:40 PM",
                }
            ]
        )
    }
    gateway_form = {
        "message_result": [
            {
                "uuid": wire_delivered,
                "sent_result_code": -1,
                "sent_result_message": "SMS sent",
                "delivered_result_code": -1,
                "delivered_result_message": "SMS delivered",
                "sent_timestamp": "Feb 21, 2017 3:36:40 PM",
                "delivered_timestamp": "Feb 21, 2017 3:36:52 PM",
            }
        ]
    }
    for body in (app_form, gateway_form, app_form):  # a repeat is idempotent
        reply = http.post(
            dev["sync_url"] + "?task=result&secret=" + plus(dev),
            content=json.dumps(body).encode(),
            headers={"content-type": JSON},
        )
        assert (reply.status_code, reply.json()) == (200, OK)
    rows = {m["uuid"]: m for m in outbound(server, dev["name"])}
    assert rows[failed]["status"] == "failed"
    assert "3" in (rows[failed]["reason"] or "")
    assert rows[delivered]["status"] == "delivered"
    history = [h["status"] for h in rows[delivered]["history"]]
    assert history == ["queued", "dispatched", "accepted", "sent", "delivered"]
    # Final messages are no longer listed.
    assert http.get(dev["sync_url"] + "?task=result&secret=" + plus(dev)).json() == {
        "message_uuids": []
    }


def test_8_7_bad_result_body_is_400(server: Server, http: httpx.Client) -> None:
    dev = device(server)
    for body in (b'{"message_result": 5}', b"garbage", b'{"message_result": "not json"}'):
        reply = http.post(
            dev["sync_url"] + "?task=result&secret=" + plus(dev),
            content=body,
            headers={"content-type": JSON},
        )
        assert reply.status_code == 400
        assert reply.json()["payload"]["success"] is False


def test_8_8_alert_is_an_event_not_an_sms(server: Server, http: httpx.Client) -> None:
    dev = device(server)
    reply = http.post(
        dev["sync_url"],
        content=b"Task=alert&message=Battery%20level%20is%20at%2014",
        headers={"content-type": FORM},
    )
    assert (reply.status_code, reply.json()) == (200, OK)
    assert inbound(server, dev["name"]) == []
    # The App's broken v3.1.1 alert: stale JSON, no task (S-15).
    stale = http.post(
        dev["sync_url"], content=b'{"message_result":"[]"}', headers={"content-type": JSON}
    )
    assert stale.status_code == 400
    assert stale.json()["payload"]["success"] is False


def test_8_9_basic_auth_identifies_the_device_on_e5(server: Server, http: httpx.Client) -> None:
    user = "phone7-" + secrets.token_hex(3)
    dev = device(server, "--basic-user", user, "--basic-password", "pa:ss", secret="")
    queue(server, "+254700000002", "hi", dev["name"])
    auth = httpx.BasicAuth(user, "pa:ss")
    poll = http.get(dev["shared_sync_url"] + "?task=send", auth=auth)
    [(text, task_uuid)] = [(m["message"], m["uuid"]) for m in poll.json()["payload"]["messages"]]
    assert text == "hi"
    ack = http.post(
        dev["shared_sync_url"] + "?task=sent",
        auth=auth,
        content=json.dumps({"queued_messages": [task_uuid]}).encode(),
        headers={"content-type": JSON},
    )
    assert ack.json() == {"message_uuids": [task_uuid]}
    wrong = http.get(dev["shared_sync_url"] + "?task=send", auth=httpx.BasicAuth(user, "pa"))
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == 'Basic realm="smssync"'
    assert wrong.json() == UNAUTHORIZED


def test_e5_lease_binding_without_any_credential(server: Server, http: httpx.Client) -> None:
    dev = device(server)
    server.cli("device", "set", dev["name"], "--ack-mode", "handshake")
    public = queue(server, "+254700000002", "bound", dev["name"])
    poll = http.get(dev["sync_url"] + "?task=send&secret=" + plus(dev))
    [task_uuid] = [m["uuid"] for m in poll.json()["payload"]["messages"]]
    # Issue 14, finding 2: the uuid API readers and webhook receivers see binds nothing.
    stolen = http.post(
        dev["shared_sync_url"] + "?task=sent",
        content=json.dumps({"queued_messages": [public]}).encode(),
        headers={"content-type": JSON},
    )
    assert (stolen.status_code, stolen.json()) == (403, UNAUTHORIZED)
    ack = http.post(
        dev["shared_sync_url"] + "?task=sent",
        content=json.dumps({"queued_messages": [task_uuid, None]}).encode(),
        headers={"content-type": JSON},
    )
    assert (ack.status_code, ack.json()) == (200, {"message_uuids": [task_uuid]})
    unknown = http.post(
        dev["shared_sync_url"] + "?task=sent",
        content=json.dumps({"queued_messages": [str(uuid.uuid4())]}).encode(),
        headers={"content-type": JSON},
    )
    assert (unknown.status_code, unknown.json()) == (403, UNAUTHORIZED)


def test_probe_unknown_task_and_methods(server: Server, http: httpx.Client) -> None:
    dev = device(server)
    assert http.get(dev["shared_sync_url"]).json() == OK
    assert http.get(dev["sync_url"] + "?task=dance&secret=" + plus(dev)).status_code == 400
    deleted = http.delete(dev["sync_url"])
    assert deleted.status_code == 405
    assert deleted.json()["payload"]["success"] is False
    assert http.get(server.base + "/nowhere").status_code == 404


def test_bad_input_is_4xx_never_5xx(server: Server, http: httpx.Client) -> None:
    dev = device(server)
    big = b"secret=" + form(dev).encode() + b"&message=" + b"x" * (1024 * 1024 + 10)
    too_big = http.post(dev["sync_url"], content=big, headers={"content-type": FORM})
    assert too_big.status_code == 413
    assert too_big.json()["payload"]["success"] is False
    garbage = [
        b"\xff\xfe\x00garbage",
        b"{not json",
        b"<payload><secret>my secret</secret>",
        b"<!DOCTYPE x [<!ENTITY a 'b'>]><payload><secret>&a;</secret></payload>",
        b'["a list"]',
        b"",
        b"=&=&&",
    ]
    for body in garbage:
        reply = http.post(dev["sync_url"], content=body, headers={"content-type": JSON})
        assert 400 <= reply.status_code < 500, (body, reply.status_code, reply.text)
        assert reply.json()["payload"]["success"] is False
    assert inbound(server, dev["name"]) == []


def test_odd_but_authentic_sms_is_stored_and_flagged(server: Server, http: httpx.Client) -> None:
    dev = device(server)
    body = (
        b"secret=" + form(dev).encode() + b"&from=&message=&sent_timestamp=yesterday&message_id=80"
    )
    reply = http.post(dev["sync_url"], content=body, headers={"content-type": FORM})
    assert reply.json() == OK
    [row] = inbound(server, dev["name"])
    assert row["message_id"] == "80"
    assert set(row["flags"]) == {"empty_from", "empty_message", "bad_timestamp"}
    assert row["sent_timestamp_raw"] == "yesterday"
    alpha = (
        b"secret="
        + form(dev).encode()
        + b"&from=M-PESA&message=Confirmed&sent_timestamp=1487658999"
    )
    assert http.post(dev["sync_url"], content=alpha, headers={"content-type": FORM}).json() == OK
    assert http.post(dev["sync_url"], content=alpha, headers={"content-type": FORM}).json() == OK
    rows = [r for r in inbound(server, dev["name"]) if r["from"] == "M-PESA"]
    assert len(rows) == 1  # deduplicated on a hash without a message_id
    assert rows[0]["sent_at"] == "2017-02-21T06:36:39Z"
