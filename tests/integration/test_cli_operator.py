"""The operator's commands on both engines, through the real ``smssync`` command (click's
runner): status, inbox (newest first, --since, paging, the follower), messages newest
first with keyset paging, alerts and ack."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from click.testing import CliRunner, Result
from sqlalchemy import Connection

from smssync.cli import main
from smssync.cli.operator import SETTLE_S, Follower
from smssync.records import OutboundStatus as S
from smssync.records import SendOutcome
from smssync.store import alert_sweep, alerts, devices, inbox, queue, results
from smssync.store.engine import Database
from smssync.store.inbox import row_of
from smssync.store.schema import inbound
from tests.integration.store_helpers import T0, at, device, incoming, queue_some

BATTERY = {"message": "Battery level is at 9", "error_code": None, "battery_percent": 9}


class Cli:
    """``smssync`` on the test's store, in a thread (it runs its own event loop)."""

    def __init__(self, store_url: str, tmp: Path) -> None:
        self.where = ["--database-url", store_url, "--data-dir", str(tmp / "data")]

    def invoke(self, *args: str, code: int = 0) -> Result:
        command, *rest = args
        # The store flags go after the (sub)command's name.
        if command in ("alerts", "device") and rest and rest[0] in ("ack", "list"):
            argv = [command, rest[0], *self.where, *rest[1:]]
        else:
            argv = [command, *self.where, *rest]
        result = CliRunner().invoke(main, argv)
        assert result.exit_code == code, result.output
        return result

    async def run(self, *args: str, code: int = 0) -> Result:
        return await anyio.to_thread.run_sync(lambda: self.invoke(*args, code=code))

    async def json(self, *args: str) -> Any:
        return json.loads((await self.run(*args, "--json")).stdout)


async def seed_inbound(store: Database, device_id: int, count: int, start: float = 0) -> None:
    for i in range(count):
        message = incoming(device_id, key=f"k{start + i}", content=f"sms {i}")
        message = message.__class__(**{**message.__dict__, "received_at": at(start + i)})
        await inbox.record_inbound(store, message)


async def test_status_shows_phones_queue_last_sms_and_alerts(
    store: Database, store_url: str, tmp_path: Path
) -> None:
    cli = Cli(store_url, tmp_path)
    empty = await cli.json("status")
    assert empty["devices"] == [] and empty["last_in"] is None and empty["last_out"] is None
    assert empty["open_alerts"] == 0 and empty["queue_depth"] == 0

    phone = await device(store, "p")
    await device(store, "q", seen=None)
    await seed_inbound(store, phone.id, 2)
    ids = await queue_some(store, 3, device="p")
    await queue.claim_outbound(store, phone.id, 1, at(5))
    sent = SendOutcome(S.SENT, None, None)
    await results.record_results(store, phone.id, [(ids[0], sent)], at(6))
    await alerts.record_phone_alert(store, phone.id, BATTERY, at(7))

    report = await cli.json("status")
    by_name = {d["name"]: d for d in report["devices"]}
    assert by_name["q"]["health"] == "never" and by_name["p"]["queue_depth"] == 2
    assert report["queue_depth"] == 2
    assert report["last_in"]["body"] == "sms 1"
    assert report["last_out"]["uuid"] == ids[0] and report["last_out"]["status"] == "sent"
    assert report["open_alerts"] == 1
    assert report["open_alerts_by_kind"]["device.battery_low"] == 1
    assert [a["kind"] for a in report["alerts"]] == ["device.battery_low"]
    text = (await cli.run("status")).stdout
    assert "Open alerts: 1" in text and "Queue: 2 outgoing SMS waiting" in text
    # Rich wraps cells to the runner's 80 columns.
    assert "device.batt" in text


async def test_inbox_is_newest_first_with_since_and_paging(
    store: Database, store_url: str, tmp_path: Path
) -> None:
    cli = Cli(store_url, tmp_path)
    phone = await device(store, "p")
    await seed_inbound(store, phone.id, 5)
    rows = await cli.json("inbox")
    assert [r["body"] for r in rows] == [f"sms {i}" for i in (4, 3, 2, 1, 0)]
    since = (T0 + timedelta(seconds=3)).isoformat()
    assert [r["body"] for r in await cli.json("inbox", "--since", since)] == ["sms 4", "sms 3"]
    page = await cli.run("inbox", "--limit", "2", "--json")
    first = json.loads(page.stdout)
    assert [r["body"] for r in first] == ["sms 4", "sms 3"]
    cursor = page.stderr.strip().rpartition(" ")[2]
    assert cursor == str(first[-1]["id"])
    rest = await cli.json("inbox", "--before", cursor)
    assert [r["body"] for r in rest] == ["sms 2", "sms 1", "sms 0"]
    # An age: everything here is years in the future, so all of it is "since 1 day ago".
    assert len(await cli.json("inbox", "--since", "1d")) == 5
    refused = await cli.run("inbox", "--since", "yesterday", code=2)
    assert "neither ISO 8601 nor an age" in refused.output
    await cli.run("inbox", "--follow", "--before", "3", code=2)


async def test_messages_are_newest_first_with_keyset_paging(
    store: Database, store_url: str, tmp_path: Path
) -> None:
    cli = Cli(store_url, tmp_path)
    phone = await device(store, "p")
    await seed_inbound(store, phone.id, 3)
    ids = await queue_some(store, 3, device="p")
    assert [r["body"] for r in await cli.json("messages")] == ["sms 2", "sms 1", "sms 0"]
    out = await cli.run("messages", "--direction", "out", "--limit", "2", "--json")
    assert [r["uuid"] for r in json.loads(out.stdout)] == [ids[2], ids[1]]
    cursor = out.stderr.strip().rpartition(" ")[2]
    older = await cli.json("messages", "--direction", "out", "--before", cursor)
    assert [r["uuid"] for r in older] == [ids[0]]
    # A page that is not full says nothing more.
    assert (await cli.run("messages", "--direction", "out", "--json")).stderr == ""


async def test_alerts_lists_and_acknowledges(
    store: Database, store_url: str, tmp_path: Path
) -> None:
    cli = Cli(store_url, tmp_path)
    phone = await device(store, "p")
    alert_id = await alerts.record_phone_alert(store, phone.id, BATTERY, at(1))
    assert await cli.json("alerts") == await cli.json("alerts", "--all")
    [row] = await cli.json("alerts")
    assert (row["id"], row["kind"], row["state"]) == (alert_id, "device.battery_low", "open")
    acked = await cli.json("alerts", "ack", str(alert_id), "--by", "ops")
    assert (acked["state"], acked["acknowledged_by"]) == ("acknowledged", "ops")
    default_by = await cli.run("alerts", "ack", str(alert_id))
    assert default_by.stdout.strip() == f"{alert_id} device.battery_low acknowledged"
    missing = await cli.run("alerts", "ack", "999", code=1)
    assert "no alert 999" in missing.output
    await cli.run("alerts", "ack", "0", code=2)
    # Resolved: gone from the default list, still in --all.
    await devices.LastSeen(store).touch(phone.id, at(1000), "app")
    await alert_sweep.sweep(store, at(1001))
    assert await cli.json("alerts") == []
    [resolved] = await cli.json("alerts", "--all")
    assert resolved["state"] == "resolved"
    assert "resolved" in (await cli.run("alerts", "--all")).stdout


async def test_the_follower_prints_each_sms_once_also_a_late_commit(store: Database) -> None:
    phone = await device(store, "p")
    await seed_inbound(store, phone.id, 2)
    clock = [0.0]
    follower = Follower(store, None, 0, clock=lambda: clock[0])
    assert [m.content for m in await follower.poll()] == ["sms 0", "sms 1"]
    assert await follower.poll() == []

    async def insert_with_id(row_id: int, key: str) -> None:
        row = {**row_of(incoming(phone.id, key=key, content=key)), "id": row_id}

        def insert(conn: Connection) -> None:
            conn.execute(inbound.insert().values(**row))

        await store.write(insert)

    # Id 10 is visible first; id 5, taken earlier by another connection's transaction,
    # commits after (PostgreSQL): still printed, and each only once.
    await insert_with_id(10, "ten")
    assert [m.content for m in await follower.poll()] == ["ten"]
    await insert_with_id(5, "five")
    assert [m.content for m in await follower.poll()] == ["five"]
    assert await follower.poll() == []
    clock[0] += SETTLE_S
    assert await follower.poll() == []
    assert follower.floor == 10 and follower.seen == {}
    await insert_with_id(11, "eleven")
    assert [m.content for m in await follower.poll()] == ["eleven"]
