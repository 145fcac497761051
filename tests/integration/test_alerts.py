"""Alerts on both engines: raised once per condition (also by several stores at once),
announced once, resolved when the condition clears, acknowledged, counted."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from smssync.errors import NotFound
from smssync.records import Alert, AlertKind, AlertState, DeliveryOutcome, SendOutcome
from smssync.records import OutboundStatus as S
from smssync.server.dispatcher import check_liveness
from smssync.settings import Settings
from smssync.store import (
    alert_sweep,
    alerts,
    devices,
    liveness,
    open_store,
    queue,
    results,
    stuck,
    webhooks,
)
from smssync.store.engine import Database
from tests.integration.store_helpers import T0, at, device, queue_some

K = AlertKind
BATTERY = {"message": "Battery level is at 14", "error_code": None, "battery_percent": 14}
NO_SERVICE = SendOutcome(
    S.FAILED, "4: Failed to send SMS because service is currently unavailable", None
)
NO_AIRTIME = SendOutcome(S.FAILED, "1: Failed to send SMS - Maybe insufficient air time", None)
SENT = SendOutcome(S.SENT, None, None)


async def open_alerts(store: Database) -> list[tuple[str, str | None]]:
    return [(a.kind.value, a.device) for a in await alerts.list_alerts(store)]


async def bodies(store: Database, event: str) -> list[dict[str, Any]]:
    found = [json.loads(d.body) for d in await webhooks.deliveries(store, "pending")]
    return [b for b in found if b["type"] == event]


async def test_a_battery_alert_is_raised_once_announced_once_and_resolved(
    store: Database,
) -> None:
    await webhooks.add_webhook(store, "http://127.0.0.1:9/h", ["device.alert"], "s", T0)
    phone = await device(store, "p")
    first = await alerts.record_phone_alert(store, phone.id, BATTERY, at(10))
    assert first is not None
    assert await alerts.record_phone_alert(store, phone.id, BATTERY, at(11)) is None
    assert await open_alerts(store) == [("device.battery_low", "p")]
    # Both alerts are device events; the webhook went out once, signed by the outbox.
    assert [e["kind"] for e in await devices.device_events(store, device="p")] == ["alert"] * 2
    [body] = await bodies(store, "device.alert")
    assert body["data"]["id"] == first and body["data"]["kind"] == "device.battery_low"
    assert body["data"]["details"] == {"battery_percent": 14, "message": BATTERY["message"]}
    assert body["data"]["state"] == "open" and body["data"]["device"] == "p"

    [announced] = await alert_sweep.sweep(store, at(12))
    assert announced.id == first
    assert await alert_sweep.sweep(store, at(13)) == []
    # Polls within its liveness window (a gateway keeps polling) do not resolve it.
    await devices.LastSeen(store).touch(phone.id, at(12), "app")
    await devices.LastSeen(store).touch(phone.id, at(10 + 900), "app")
    assert await alert_sweep.sweep(store, at(911)) == []
    assert await open_alerts(store) == [("device.battery_low", "p")]
    await devices.LastSeen(store).touch(phone.id, at(10 + 901), "app")
    assert await alert_sweep.sweep(store, at(912)) == []
    assert await open_alerts(store) == []
    [resolved] = await alerts.list_alerts(store, include_resolved=True)
    assert resolved.state is AlertState.RESOLVED and resolved.resolved_at == at(912)
    # The condition again: a new alert.
    again = await alerts.record_phone_alert(store, phone.id, BATTERY, at(1000))
    assert again is not None and again != first


async def test_an_alert_without_a_battery_level_is_only_an_event(store: Database) -> None:
    phone = await device(store, "p")
    detail = {"message": "SMS failed", "error_code": "2", "battery_percent": None}
    assert await alerts.record_phone_alert(store, phone.id, detail, at(1)) is None
    assert await open_alerts(store) == []
    [event] = await devices.device_events(store, device="p")
    assert event["detail"] == detail


async def test_stores_raising_at_once_raise_one_alert(store: Database, store_url: str) -> None:
    phone = await device(store, "p")
    others = [open_store(store_url) for _ in range(3)]
    for other in others:
        await other.open()
    try:
        raised = await asyncio.gather(
            *(
                alerts.record_phone_alert(s, phone.id, BATTERY, at(1))
                for s in [store, *others]
                for _ in range(3)
            )
        )
    finally:
        for other in others:
            await other.close()
    assert len([r for r in raised if r is not None]) == 1
    assert await alerts.count_open_alerts(store) == {
        "device.silent": 0,
        "device.battery_low": 1,
        "device.send_failing": 0,
        "messages.stuck": 0,
        "webhook.failing": 0,
    }


async def test_a_silent_device_is_alerted_until_it_polls_again(store: Database) -> None:
    phone = await device(store, "p", liveness_s=60)
    late = await device(store, "never", seen=None)
    await liveness.check_liveness(store, at(1))
    assert await alert_sweep.sweep(store, at(1)) == []
    # Recorded offline when never seen, then polling before the next liveness check: not
    # silent.
    await devices.LastSeen(store).touch(late.id, at(2), "app")
    assert await alert_sweep.sweep(store, at(3)) == []
    await liveness.check_liveness(store, at(100))
    [alert] = await alert_sweep.sweep(store, at(100))  # "never" (seen at 2) is online
    assert (alert.kind, alert.device) == (K.DEVICE_SILENT, "p")
    assert alert.details == {"last_seen": "2030-01-01T12:00:00Z"}
    # Still silent: nothing new.
    await liveness.check_liveness(store, at(200))
    assert await alert_sweep.sweep(store, at(200)) == []
    await devices.LastSeen(store).touch(phone.id, at(250), "app")
    await liveness.check_liveness(store, at(251))
    assert await alert_sweep.sweep(store, at(251)) == []
    assert await open_alerts(store) == []


async def test_sends_failing_in_a_row_raise_one_alert_with_reasons(store: Database) -> None:
    phone = await device(store, "p")
    ids = await queue_some(store, 6, device="p")
    await queue.claim_outbound(store, phone.id, 6, at(1))
    first = [(ids[0], NO_SERVICE), (ids[1], NO_AIRTIME)]
    assert await results.record_results(store, phone.id, first, at(2)) == 2
    # A repeated report changes nothing, and counts nothing.
    assert await results.record_results(store, phone.id, first, at(3)) == 0
    assert await open_alerts(store) == []
    await results.record_results(store, phone.id, [(ids[2], NO_SERVICE)], at(4))
    [alert] = await alerts.list_alerts(store)
    assert (alert.kind, alert.device) == (K.SEND_FAILING, "p")
    assert alert.details["failures"] == 3
    assert alert.details["reasons"] == {"no_service": 2, "no_airtime": 1}
    await results.record_results(store, phone.id, [(ids[3], NO_SERVICE)], at(5))
    [alert] = await alerts.list_alerts(store)
    assert alert.details["failures"] == 4
    await results.record_results(store, phone.id, [(ids[4], SENT)], at(6))
    assert await open_alerts(store) == []
    # The run starts again from zero.
    await results.record_results(store, phone.id, [(ids[5], NO_SERVICE)], at(7))
    assert await open_alerts(store) == []


async def test_concurrent_failure_reports_count_every_failure(store: Database) -> None:
    phone = await device(store, "p")
    ids = await queue_some(store, 4, device="p")
    await queue.claim_outbound(store, phone.id, 4, at(1))
    await asyncio.gather(
        *(results.record_results(store, phone.id, [(m, NO_SERVICE)], at(2)) for m in ids)
    )
    [alert] = await alerts.list_alerts(store)
    assert alert.details["failures"] == 4


async def test_stuck_messages_are_one_alert_per_device_until_reported(store: Database) -> None:
    phone = await device(store, "p")
    ids = await queue_some(store, 2, device="p")
    await queue.claim_outbound(store, phone.id, 2, at(1))
    await results.acknowledge(store, phone.id, ids, at(2))
    await stuck.alert_stuck(store, at(2 + 3600), 3600)
    [alert] = await alert_sweep.sweep(store, at(2 + 3600))
    assert (alert.kind, alert.device, alert.details) == (K.MESSAGES_STUCK, "p", {"count": 2})
    await results.record_results(store, phone.id, [(ids[0], SENT)], at(4000))
    assert await alert_sweep.sweep(store, at(4000)) == []
    assert await open_alerts(store) == [("messages.stuck", "p")]
    await results.record_results(store, phone.id, [(ids[1], SENT)], at(4001))
    await alert_sweep.sweep(store, at(4001))
    assert await open_alerts(store) == []


async def fail_attempts(
    store: Database, count: int, when: float, error: str = "HTTP 500"
) -> list[int]:
    """Claim every due delivery and fail it, ``count`` times; return their ids."""
    ids: list[int] = []
    for i in range(count):
        now = at(when + i)
        batch = await webhooks.claim_deliveries(store, now, 50, 0)
        outcomes = [DeliveryOutcome(d.id, False, error, now) for d in batch]
        await webhooks.finish_deliveries(store, outcomes, now)
        await alerts.track_deliveries(store, outcomes, now, 3)
        ids = [d.id for d in batch]
    return ids


async def test_a_failing_webhook_is_alerted_to_the_others_and_resolved(store: Database) -> None:
    bad = await webhooks.add_webhook(
        store, "https://u:pw@bad.example/h?t=tok", ["device.alert"], "s", T0
    )
    await webhooks.add_webhook(store, "http://127.0.0.1:9/good", ["webhook.failing"], "s2", T0)
    phone = await device(store, "p")
    await alerts.record_phone_alert(store, phone.id, BATTERY, at(1))
    await fail_attempts(store, 2, 10)
    assert await open_alerts(store) == [("device.battery_low", "p")]
    [delivery_id] = await fail_attempts(store, 1, 20)
    [alert, _] = await alerts.list_alerts(store)
    assert (alert.kind, alert.device) == (K.WEBHOOK_FAILING, None)
    assert alert.details == {
        "webhook_id": bad,
        "host": "bad.example",
        "attempts": 3,
        "error": "HTTP 500",
    }
    # The other endpoint hears of it; the failing one is not sent its own alert.
    [body] = await bodies(store, "webhook.failing")
    assert body["data"]["id"] == alert.id
    failing = [
        d for d in await webhooks.deliveries(store, "pending") if d.event == "webhook.failing"
    ]
    assert [d.url for d in failing] == ["http://127.0.0.1:9/good"]
    await fail_attempts(store, 1, 30)
    assert len(await alerts.list_alerts(store)) == 2
    # A delivery it accepts resolves it.
    accepted = [DeliveryOutcome(delivery_id, True)]
    await webhooks.finish_deliveries(store, accepted, at(40))
    await alerts.track_deliveries(store, accepted, at(40), 3)
    assert await open_alerts(store) == [("device.battery_low", "p")]


async def test_a_removed_webhook_resolves_its_alert(store: Database) -> None:
    url = "http://127.0.0.1:9/h?token=t"
    bad = await webhooks.add_webhook(store, url, ["device.alert"], "s", T0)
    phone = await device(store, "p")
    await alerts.record_phone_alert(store, phone.id, BATTERY, at(1))
    await fail_attempts(store, 3, 10, error=f"InvalidURL: {url}")
    [alert, _] = await alerts.list_alerts(store)
    assert alert.kind is K.WEBHOOK_FAILING
    # The receiver's URL, which may hold a token, is not repeated in the alert.
    assert alert.details["error"] == "InvalidURL: 127.0.0.1"
    await webhooks.remove_webhook(store, bad)
    await alert_sweep.sweep(store, at(50))
    assert await open_alerts(store) == [("device.battery_low", "p")]


async def test_acknowledge_keeps_the_first_and_lists_newest_first(store: Database) -> None:
    a = await device(store, "a")
    b = await device(store, "b")
    first = await alerts.record_phone_alert(store, a.id, BATTERY, at(1))
    second = await alerts.record_phone_alert(store, b.id, BATTERY, at(2))
    assert first is not None and second is not None
    acked = await alerts.acknowledge(store, first, "cli:ops", at(3))
    assert acked.state is AlertState.ACKNOWLEDGED
    assert (acked.acknowledged_at, acked.acknowledged_by) == (at(3), "cli:ops")
    again = await alerts.acknowledge(store, first, "api:other", at(4))
    assert (again.acknowledged_at, again.acknowledged_by) == (at(3), "cli:ops")
    assert [x.id for x in await alerts.list_alerts(store)] == [second, first]
    assert [x.id for x in await alerts.list_alerts(store, before_id=second)] == [first]
    with pytest.raises(NotFound):
        await alerts.acknowledge(store, 999, "x", at(5))
    # Acknowledged alerts stay open: counted until resolved.
    assert (await alerts.count_open_alerts(store))["device.battery_low"] == 2


async def test_a_removed_device_takes_its_alerts(store: Database) -> None:
    phone = await device(store, "p")
    await alerts.record_phone_alert(store, phone.id, BATTERY, at(1))
    await devices.remove_device(store, "p")
    assert await alerts.list_alerts(store, include_resolved=True) == []


async def test_the_liveness_slot_logs_each_alert_once(
    store: Database, caplog: pytest.LogCaptureFixture
) -> None:
    phone = await device(store, "p")
    await alerts.record_phone_alert(store, phone.id, BATTERY, at(1))
    settings = Settings(liveness_check_s=1)
    with caplog.at_level(logging.WARNING, logger="smssync.alerts"):
        assert await check_liveness(settings, store, at(2))
        assert not await check_liveness(settings, store, at(3))
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "device.battery_low" in record.getMessage() and '"p"' in record.getMessage()
    assert '"battery_percent": 14' in record.getMessage()


def test_alert_states() -> None:
    alert = Alert(1, K.DEVICE_SILENT, "p", {}, T0)
    assert alert.state is AlertState.OPEN


async def test_sweeps_of_several_stores_raise_and_announce_once(
    store: Database, store_url: str
) -> None:
    await device(store, "p", liveness_s=60)
    await liveness.check_liveness(store, at(100))
    others = [open_store(store_url) for _ in range(3)]
    for other in others:
        await other.open()
    try:
        swept = await asyncio.gather(*(alert_sweep.sweep(s, at(100)) for s in [store, *others]))
    finally:
        for other in others:
            await other.close()
    assert [(a.kind, a.device) for one in swept for a in one] == [(K.DEVICE_SILENT, "p")]
    assert await open_alerts(store) == [("device.silent", "p")]
