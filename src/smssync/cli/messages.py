"""Message commands: send, messages and cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from smssync.addresses import normalize_recipient
from smssync.cli.options import (
    print_json,
    settings_from,
    store_options,
    store_region,
    with_store,
)
from smssync.cli.tables import print_table
from smssync.records import Outbound, new_outbound
from smssync.regions import DefaultRegion, read_note
from smssync.serialize import inbound_json, outbound_json
from smssync.store import inbox, queue, results
from smssync.store import messages as messages_store
from smssync.store.engine import Database


def register(group: click.Group) -> None:
    """Add the message commands."""
    group.add_command(send)
    group.add_command(messages)
    group.add_command(cancel)


@click.command()
@store_options
@click.option("--to", "to_addr", required=True, help="Recipient number.")
@click.option("--device", "device_name", default=None, help="Send through this device only.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.argument("text")
def send(to_addr: str, device_name: str | None, as_json: bool, text: str, **params: Any) -> None:
    """Queue an SMS and print its uuid."""
    settings = settings_from(params)

    async def enqueue(store: Database) -> tuple[Outbound, str | None]:
        found = await store_region(store, settings)
        try:
            number = normalize_recipient(to_addr, found.code)
        except ValueError as exc:
            raise click.BadParameter(_explained(str(exc), found), param_hint="--to") from None
        message = new_outbound(number, text, device_name, datetime.now(UTC))
        await queue.enqueue(store, [message])
        stored = (await messages_store.list_outbound(store, message_id=message.message_id))[0]
        return stored, read_note(to_addr, found.code, number)

    stored, note = with_store(settings, enqueue)
    if note is not None:
        # On stderr: stdout stays the uuid (or the JSON) that scripts read.
        click.echo(f"smssync: {note}", err=True)
    if as_json:
        print_json(outbound_json(stored))
    else:
        click.echo(stored.message_id)


def _explained(error: str, found: DefaultRegion) -> str:
    if found.code:
        return f"{error} (read with the default region {found.code})"
    return f"{error}; {found.describe()}"


@click.command()
@store_options
@click.option("--direction", type=click.Choice(["in", "out"]), default="in")
@click.option("--device", "device_name", default=None)
@click.option(
    "--before",
    type=click.IntRange(1),
    default=None,
    help="Older than this cursor (the next page; printed on stderr after a full one).",
)
@click.option("--limit", type=click.IntRange(1, 100000), default=1000)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def messages(
    direction: str,
    device_name: str | None,
    before: int | None,
    limit: int,
    as_json: bool,
    **params: Any,
) -> None:
    """List incoming (default) or outgoing SMS, newest first."""
    settings = settings_from(params)

    async def read(store: Database) -> tuple[list[dict[str, Any]], int | None]:
        if direction == "in":
            found = await inbox.inbound_newest(
                store, device=device_name, limit=limit, before_id=before or 0
            )
            last = found[-1].id if found else None
            rows = [inbound_json(m) for m in found]
        else:
            sent = await messages_store.outbound_newest(
                store, device=device_name, limit=limit, before_id=before or 0
            )
            last = sent[-1].seq if sent else None
            rows = [outbound_json(m) for m in sent]
        return rows, last if len(rows) == limit else None

    rows, cursor = with_store(settings, read)
    if as_json:
        print_json(rows)
    elif direction == "in":
        print_table(
            ["received", "device", "from", "body", "flags"],
            (
                [r["received_at"], r["device"], r["from"], r["body"], ",".join(r["flags"])]
                for r in rows
            ),
        )
    else:
        print_table(
            ["uuid", "device", "to", "status", "body"],
            ([r["uuid"], r["device"] or "-", r["to"], r["status"], r["body"]] for r in rows),
        )
    if cursor is not None:
        # On stderr, so that --json stays one array on stdout.
        click.echo(f"more: --before {cursor}", err=True)


@click.command()
@store_options
@click.argument("uuid")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cancel(uuid: str, as_json: bool, **params: Any) -> None:
    """Cancel a queued SMS that no phone has accepted yet."""
    settings = settings_from(params)

    async def run(store: Database) -> Outbound:
        return await results.cancel(store, uuid, datetime.now(UTC))

    cancelled = with_store(settings, run)
    if as_json:
        print_json(outbound_json(cancelled))
    else:
        click.echo(f"{cancelled.message_id} {cancelled.status.value}")
