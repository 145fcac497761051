"""What an operator watches: ``status`` (the server at a glance) and ``inbox`` (incoming SMS,
newest first, or followed as they arrive)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from smssync.cli.alerts import print_alerts
from smssync.cli.options import print_json, settings_from, store_options, with_store
from smssync.cli.tables import print_table
from smssync.records import Inbound
from smssync.serialize import device_json, inbound_json, status_json
from smssync.store import alerts, devices, inbox, messages
from smssync.store.engine import Database

#: How long an id seen by ``--follow`` waits before the cursor moves past it: a PostgreSQL
#: transaction that took a smaller id may commit after a larger one is visible.
SETTLE_S = 10.0
#: Most SMS one poll of ``--follow`` reads.
FOLLOW_BATCH = 1000
_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def register(group: click.Group) -> None:
    """Add the operator commands."""
    group.add_command(status)
    group.add_command(inbox_command)


class Since(click.ParamType[datetime]):
    """A moment: ISO 8601 (UTC when it has no offset), or an age such as 15m, 2h, 7d."""

    name = "since"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        match = _AGO.match(text)
        if match:
            return datetime.now(UTC) - timedelta(**{_UNITS[match[2]]: int(match[1])})
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{text!r} is neither ISO 8601 nor an age like 15m, 2h, 7d", param, ctx)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command()
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool, **params: Any) -> None:
    """Show the server at a glance: phones, queue, last SMS in and out, open alerts."""
    settings = settings_from(params)

    async def read(store: Database) -> dict[str, Any]:
        found = await devices.all_devices(store)
        depths = await messages.queue_depths(store)
        now = datetime.now(UTC)
        last_in = await inbox.inbound_newest(store, limit=1)
        return status_json(
            [device_json(d, depths.get(d.name, 0), now) for d in found],
            sum(depths.values()),
            last_in[0] if last_in else None,
            await messages.last_sent(store),
            await alerts.list_alerts(store, limit=1000),
            await alerts.count_open_alerts(store),
        )

    report = with_store(settings, read)
    if as_json:
        print_json(report)
        return
    devices_rows = report["devices"]
    click.echo(f"Phones: {report['online']} online of {len(devices_rows)}")
    if devices_rows:
        print_table(
            ["name", "health", "last seen", "queue"],
            (
                [d["name"], d["health"], d["last_seen"] or "never", str(d["queue_depth"])]
                for d in devices_rows
            ),
        )
    click.echo(f"Queue: {report['queue_depth']} outgoing SMS waiting")
    last_in, last_out = report["last_in"], report["last_out"]
    click.echo(
        "Last SMS in:  "
        + ("none" if last_in is None else f"{last_in['received_at']} from {last_in['from']}")
    )
    click.echo(
        "Last SMS out: "
        + ("none" if last_out is None else f"{last_out['sent_at']} to {last_out['to']}")
    )
    click.echo(f"Open alerts: {report['open_alerts']}")
    if report["alerts"]:
        print_alerts(report["alerts"])


def _line(row: dict[str, Any]) -> str:
    # One line per SMS, whatever its text holds: a newline in a body would forge a line.
    body = json.dumps(row["body"], ensure_ascii=False)
    return f"{row['received_at']}  {row['device']}  {row['from']}  {body}"


@click.command("inbox")
@store_options
@click.option("--device", "device_name", default=None, help="Of this device only.")
@click.option(
    "--since", type=Since(), default=None, help="Received since: ISO 8601 or 15m, 2h, 7d."
)
@click.option(
    "--before", type=click.IntRange(1), default=None, help="Older than this SMS id (paging)."
)
@click.option("--limit", type=click.IntRange(1, 100000), default=50)
@click.option(
    "--follow", "-f", is_flag=True, help="Then print new SMS as they arrive (Ctrl-C stops)."
)
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=1.0,
    help="Seconds between polls of --follow.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="A JSON array; with --follow, one object per line."
)
def inbox_command(
    device_name: str | None,
    since: datetime | None,
    before: int | None,
    limit: int,
    follow: bool,
    interval: float,
    as_json: bool,
    **params: Any,
) -> None:
    """List incoming SMS, newest first, or follow them as they arrive.

    With --follow, the latest --limit SMS are printed in arrival order, then each new one
    as any server process stores it, one line each (polling the store every --interval)."""
    settings = settings_from(params)
    if follow and before is not None:
        raise click.UsageError("--follow and --before exclude each other")

    async def read(store: Database) -> list[Inbound]:
        return await inbox.inbound_newest(
            store, device=device_name, limit=limit, before_id=before or 0, since=since
        )

    if not follow:
        found = with_store(settings, read)
        rows = [inbound_json(m) for m in found]
        if as_json:
            print_json(rows)
        else:
            print_table(
                ["id", "received", "device", "from", "body"],
                ([str(r["id"]), r["received_at"], r["device"], r["from"], r["body"]] for r in rows),
            )
        if len(found) == limit:
            click.echo(f"more: --before {found[-1].id}", err=True)
        return

    def show(message: Inbound) -> None:
        row = inbound_json(message)
        click.echo(json.dumps(row, ensure_ascii=False) if as_json else _line(row))

    async def run(store: Database) -> None:
        latest = await read(store)
        for message in reversed(latest):
            show(message)
        follower = Follower(store, device_name, latest[0].id if latest else 0)
        while True:
            for message in await follower.poll():
                show(message)
            await asyncio.sleep(interval)

    try:
        with_store(settings, run)
    except KeyboardInterrupt:
        pass


class Follower:
    """New incoming SMS by a keyset cursor on the row id, each once.

    Ids above the cursor are read again until they settle (``SETTLE_S``), so that an SMS
    whose transaction took a smaller id but committed later (another PostgreSQL
    connection) is still printed, and printed once.
    """

    def __init__(
        self,
        store: Database,
        device: str | None,
        after_id: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.device, self.floor, self.clock = store, device, after_id, clock
        #: Ids above the floor already printed, and when they were first seen.
        self.seen: dict[int, float] = {}

    async def poll(self) -> list[Inbound]:
        """Return the SMS stored since the last poll, oldest first."""
        found: list[Inbound] = []
        cursor = self.floor
        while True:
            batch = await inbox.list_inbound(
                self.store, device=self.device, limit=FOLLOW_BATCH, after_id=cursor
            )
            now = self.clock()
            for message in batch:
                if message.id not in self.seen:
                    self.seen[message.id] = now
                    found.append(message)
            if len(batch) < FOLLOW_BATCH:
                break
            cursor = batch[-1].id
        settled = [i for i, first in self.seen.items() if now - first >= SETTLE_S]
        if settled:
            self.floor = max(self.floor, *settled)
            self.seen = {i: t for i, t in self.seen.items() if i > self.floor}
        return sorted(found, key=lambda m: m.id)
