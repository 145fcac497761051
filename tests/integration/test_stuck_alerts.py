"""S-30: messages left ``accepted`` are alerted on once, on both engines."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from typing import Any

import pytest

from smssync.records import AckMode, OutboundStatus, SendOutcome, StuckMessage
from smssync.server.dispatcher import background, sweep_stuck
from smssync.server.hooks import Hooks
from smssync.settings import Settings
from smssync.store import apikeys, devices, queue, results, stuck, webhooks
from smssync.store.engine import Database
from tests.integration.store_helpers import T0, at, device, outgoing, queue_some, status_of

S = OutboundStatus
HOUR = 3600


async def accepted(store: Database, count: int, when: float = 2, name: str = "a") -> list[str]:
    """Add a device, dispatch ``count`` messages to it and accept them at ``at(when)``."""
    phone = await device(store, name)
    ids = await queue_some(store, count, device=name)
    await queue.claim_outbound(store, phone.id, count, at(1))
    assert await results.acknowledge(store, phone.id, ids, at(when)) == ids
    return ids


def alerted(stuck: list[StuckMessage]) -> list[str]:
    return [s.message_id for s in stuck]


async def pending_bodies(store: Database) -> list[dict[str, Any]]:
    return [json.loads(d.body) for d in await webhooks.deliveries(store, "pending")]


async def test_an_old_accepted_message_is_alerted_once(store: Database) -> None:
    ids = await accepted(store, 2)
    assert await stuck.alert_stuck(store, at(2 + HOUR - 1), HOUR) == []
    found = await stuck.alert_stuck(store, at(2 + HOUR), HOUR)
    assert found == [StuckMessage(m, "a", at(2)) for m in ids]
    assert await stuck.alert_stuck(store, at(2 + HOUR), HOUR) == []
    assert await stuck.alert_stuck(store, at(2 + 100 * HOUR), HOUR) == []
    # An alert only reports: the message stays accepted, and a late result still applies.
    assert [await status_of(store, m) for m in ids] == ["accepted", "accepted"]
    phone = await devices.device_by_name(store, "a")
    assert phone is not None
    outcome = SendOutcome(S.SENT, None, None)
    assert await results.record_results(store, phone.id, [(ids[0], outcome)], at(3 + HOUR)) == 1
    assert await status_of(store, ids[0]) == "sent"


async def test_a_younger_message_waits_for_its_own_threshold(store: Database) -> None:
    phone = await device(store, "a")
    ids = await queue_some(store, 2, device="a")
    await queue.claim_outbound(store, phone.id, 2, at(1))
    await results.acknowledge(store, phone.id, ids[:1], at(2))
    await results.acknowledge(store, phone.id, ids[1:], at(600))
    assert alerted(await stuck.alert_stuck(store, at(2 + HOUR), HOUR)) == ids[:1]
    assert await stuck.alert_stuck(store, at(599 + HOUR), HOUR) == []
    assert alerted(await stuck.alert_stuck(store, at(600 + HOUR), HOUR)) == ids[1:]


async def test_other_statuses_are_not_alerted(store: Database) -> None:
    phone = await device(store, "a", ack_mode=AckMode.HANDSHAKE)
    [sent, failed, dispatched, cancelled] = await queue_some(store, 4, device="a")
    await queue.claim_outbound(store, phone.id, 4, at(1))
    await results.acknowledge(store, phone.id, [sent, failed], at(2))
    await results.cancel(store, cancelled, at(2))
    failure = SendOutcome(S.FAILED, "no service", None)
    sent_outcome = SendOutcome(S.SENT, None, None)
    await results.record_results(store, phone.id, [(sent, sent_outcome), (failed, failure)], at(3))
    [queued] = await queue_some(store, 1)
    statuses = [await status_of(store, m) for m in (sent, failed, dispatched, cancelled, queued)]
    assert statuses == ["sent", "failed", "dispatched", "cancelled", "queued"]
    assert await stuck.alert_stuck(store, at(100 * HOUR), HOUR) == []


async def test_concurrent_sweeps_alert_each_message_once(store: Database) -> None:
    await webhooks.add_webhook(store, "http://127.0.0.1:9/hook", ["message.stuck"], "s", T0)
    ids = await accepted(store, 10)
    sweeps = await asyncio.gather(*(stuck.alert_stuck(store, at(2 + HOUR), HOUR) for _ in range(5)))
    found = [m for sweep in sweeps for m in alerted(sweep)]
    assert sorted(found) == sorted(ids)
    assert sorted(b["data"]["uuid"] for b in await pending_bodies(store)) == sorted(ids)
    [event] = await devices.device_events(store, device="a")
    assert event["detail"]["count"] == 10


async def test_a_sweep_is_bounded_oldest_first(store: Database) -> None:
    ids = await accepted(store, 3)
    assert alerted(await stuck.alert_stuck(store, at(2 + HOUR), HOUR, limit=2)) == ids[:2]
    assert alerted(await stuck.alert_stuck(store, at(2 + HOUR), HOUR, limit=2)) == ids[2:]


async def test_the_alert_is_a_device_event_and_a_webhook(store: Database) -> None:
    await webhooks.add_webhook(store, "http://127.0.0.1:9/stuck", ["message.stuck"], "s1", T0)
    await webhooks.add_webhook(store, "http://127.0.0.1:9/sent", ["message.sent"], "s2", T0)
    key = await apikeys.add_api_key(store, "app", b"h" * 32, "ssk_x", ["send"], "sig", T0)
    callback = dataclasses.replace(
        outgoing(device="a"), callback_url="http://127.0.0.1:9/cb", api_key_id=key.id
    )
    phone = await device(store, "a")
    await queue.enqueue(store, [callback])
    ids = [callback.message_id, *await queue_some(store, 1, device="a")]
    await queue.claim_outbound(store, phone.id, 2, at(1))
    await results.acknowledge(store, phone.id, ids, at(2))
    await stuck.alert_stuck(store, at(2 + HOUR), HOUR)

    pending = await webhooks.deliveries(store, "pending")
    sent = [(d.url.rsplit("/", 1)[1], json.loads(d.body)) for d in pending]
    # Each message to the subscribed endpoint, the one with a callback also to its callback.
    assert sorted((url, b["data"]["uuid"]) for url, b in sent) == sorted(
        [("cb", ids[0]), ("stuck", ids[0]), ("stuck", ids[1])]
    )
    [body] = [b for url, b in sent if url == "stuck" and b["data"]["uuid"] == ids[0]]
    assert body["type"] == "message.stuck"
    assert body["data"] == {
        "uuid": ids[0],
        "to": callback.to_addr,
        "status": "accepted",
        "device": "a",
        "reason": "accepted by the device, no result reported since",
        "accepted_at": "2030-01-01T12:00:02Z",
    }
    assert {d.secret for d in pending} == {"s1", "sig"}
    [event] = await devices.device_events(store, device="a")
    assert event["kind"] == "message_stuck" and event["at"] == at(2 + HOUR)
    assert event["detail"] == {"count": 2, "uuids": ids, "older_than_s": HOUR}


async def test_a_message_of_a_removed_device_is_alerted_without_device(store: Database) -> None:
    [mid] = await accepted(store, 1)
    await devices.remove_device(store, "a")
    assert await stuck.alert_stuck(store, at(2 + HOUR), HOUR) == [StuckMessage(mid, None, at(2))]
    assert await devices.device_events(store) == []


async def test_a_sweep_logs_one_warning_with_the_count_only(
    store: Database, caplog: pytest.LogCaptureFixture
) -> None:
    ids = await accepted(store, 3)
    settings = Settings(accepted_alert_h=1)
    with caplog.at_level(logging.WARNING, logger="smssync.alerts"):
        assert alerted(await sweep_stuck(settings, store, at(2 + HOUR))) == ids
        assert await sweep_stuck(settings, store, at(3 + HOUR)) == []
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.name == "smssync.alerts"
    assert record.getMessage().startswith("3 message(s) accepted by their device over 1 h ago")
    assert not any(m in record.getMessage() for m in [*ids, "m0", "+2547"])


@pytest.mark.parametrize(("hours", "running"), [(24, True), (0, False)])
async def test_the_background_sweep_runs_unless_disabled(
    store: Database, hours: int, running: bool
) -> None:
    async with background(Settings(accepted_alert_h=hours), store, Hooks(store)):
        names = {task.get_name() for task in asyncio.all_tasks()}
    assert ("smssync-stuck" in names) is running
