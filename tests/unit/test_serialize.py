"""One JSON shape per noun: the API's response models describe exactly what ``serialize``
writes, so the API, ``--json`` and webhooks cannot drift apart."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from smssync.records import (
    LAST_SEEN_EVERY,
    AckMode,
    Alert,
    AlertKind,
    Delivery,
    DeliveryState,
    Device,
    DeviceSettings,
    HistoryEntry,
    Inbound,
    Outbound,
    OutboundStatus,
)
from smssync.serialize import (
    FORMULA_START,
    alert_json,
    delivery_json,
    device_json,
    inbound_json,
    iso,
    outbound_json,
    spreadsheet_row,
)
from smssync.server.api.models import AlertOut, DeliveryOut, DeviceOut, InboundOut, MessageOut

T0 = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)

OUTBOUND = Outbound(
    message_id="u1",
    device="a",
    to_addr="+254700000001",
    content="hello",
    segments=1,
    status=OutboundStatus.DELIVERED,
    created_at=T0,
    updated_at=T0 + timedelta(seconds=5),
    reason=None,
    history=(HistoryEntry(T0, OutboundStatus.QUEUED, None),),
    priority=3,
    send_at=T0,
    sent_at=T0 + timedelta(seconds=2),
    sent_timestamp_raw="1893499202000",
)
INBOUND = Inbound(
    id=7,
    device="a",
    from_addr="+254700000002",
    from_raw="0700000002",
    to_addr="+254700000003",
    content="hi",
    message_id="m1",
    sent_timestamp_raw="1893499200000",
    sent_at=T0,
    received_at=T0 + timedelta(seconds=1),
    flags=("time_from_server",),
    status="received",
    tags=("vote",),
)
DEVICE = Device(
    id=1,
    name="a",
    settings=DeviceSettings(ack_mode=AckMode.HANDSHAKE),
    has_secret=True,
    basic_user=None,
    effective_mode=AckMode.HANDSHAKE,
    created_at=T0,
    last_seen_at=T0,
    last_user_agent="SMSSync/3",
)
DELIVERY = Delivery(
    id=4,
    url="https://example.org/hook",
    secret="s",
    event_id="evt_1",
    event="message.received",
    body='{"id": "evt_1"}',
    attempts=2,
    created_at=T0,
    state=DeliveryState.DEAD,
    last_error="HTTP 500",
)

ALERT = Alert(
    id=3,
    kind=AlertKind.BATTERY_LOW,
    device="a",
    details={"battery_percent": 14, "message": "Battery level is at 14"},
    raised_at=T0,
)
ACKED = Alert(
    id=4,
    kind=AlertKind.WEBHOOK_FAILING,
    device=None,
    details={"webhook_id": 1, "host": "example.org", "attempts": 3, "error": "HTTP 500"},
    raised_at=T0,
    acknowledged_at=T0,
    acknowledged_by="cli:ops",
)


def check(model: type[BaseModel], data: dict[str, object]) -> None:
    """Every field of the model comes from the dict, and the API writes it unchanged."""
    fields = {f.alias or name for name, f in model.model_fields.items()}
    assert fields <= set(data), fields - set(data)
    written = model.model_validate(data).model_dump(mode="json", by_alias=True)
    assert written == {k: data[k] for k in fields}


def test_the_api_writes_the_one_shape_of_each_noun() -> None:
    check(MessageOut, outbound_json(OUTBOUND))
    check(InboundOut, inbound_json(INBOUND))
    check(DeviceOut, device_json(DEVICE, 2, T0 + timedelta(seconds=10)))
    check(DeliveryOut, delivery_json(DELIVERY))
    check(AlertOut, alert_json(ALERT))
    check(AlertOut, alert_json(ACKED))


def test_an_alert_says_its_state() -> None:
    assert alert_json(ALERT)["state"] == "open"
    assert alert_json(ACKED)["state"] == "acknowledged"
    resolved = Alert(**{**ACKED.__dict__, "resolved_at": T0})
    assert alert_json(resolved)["state"] == "resolved"


def test_times_are_utc_with_a_z_and_keep_their_microseconds() -> None:
    assert iso(T0) == "2030-01-01T12:00:00.123456Z"
    assert iso(T0.astimezone(datetime.now().astimezone().tzinfo)) == iso(T0)
    assert iso(None) is None
    assert outbound_json(OUTBOUND)["history"] == [
        {"at": "2030-01-01T12:00:00.123456Z", "status": "queued", "detail": None}
    ]


def test_health_follows_the_liveness_window() -> None:
    # Counted from the stored last seen, which may lag the last poll by LAST_SEEN_EVERY.
    window = timedelta(seconds=DEVICE.settings.liveness_s) + LAST_SEEN_EVERY
    assert device_json(DEVICE, 0, T0 + window)["health"] == "online"
    assert device_json(DEVICE, 0, T0 + window + timedelta(seconds=1))["health"] == "offline"
    never = Device(**{**DEVICE.__dict__, "last_seen_at": None})
    assert device_json(never, 0, T0)["health"] == "never"


@given(st.text(max_size=30))
def test_no_cell_of_a_spreadsheet_row_starts_a_formula(text: str) -> None:
    cell = spreadsheet_row({"body": text})["body"]
    number = re.fullmatch(r"[+-]?[0-9][0-9 ]*", text)
    assert cell == text if number or not text.startswith(FORMULA_START) else cell == "'" + text
    assert not cell.startswith(FORMULA_START) or number


def test_phone_numbers_stay_as_they_are_in_a_spreadsheet_row() -> None:
    row = {"to": "+254700000001", "body": "=1+1", "n": 3, "at": "-"}
    assert spreadsheet_row(row) == {"to": "+254700000001", "body": "'=1+1", "n": 3, "at": "'-"}
