"""Message commands: send, messages and cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from smssync.addresses import normalize_recipient
from smssync.cli.options import iso, print_json, settings_from, store_options, with_store
from smssync.cli.tables import print_table
from smssync.server.exchanges import new_outbound
from smssync.store.base import Inbound, Outbound, Store


def register(group: click.Group) -> None:
    """Add the message commands."""
    group.add_command(send)
    group.add_command(messages)
    group.add_command(cancel)


def outbound_json(message: Outbound) -> dict[str, Any]:
    """Describe an outgoing SMS for ``messages --json``."""
    return {
        "uuid": message.message_id,
        "device": message.device,
        "to": message.to_addr,
        "body": message.content,
        "segments": message.segments,
        "status": message.status.value,
        "reason": message.reason,
        "created_at": iso(message.created_at),
        "history": [
            {"at": iso(h.at), "status": h.status.value, "detail": h.detail} for h in message.history
        ],
    }


def inbound_json(message: Inbound) -> dict[str, Any]:
    """Describe an incoming SMS for ``messages --json``."""
    return {
        "id": message.id,
        "device": message.device,
        "from": message.from_addr,
        "from_raw": message.from_raw,
        "to": message.to_addr,
        "body": message.content,
        "message_id": message.message_id,
        "sent_at": iso(message.sent_at),
        "sent_timestamp_raw": message.sent_timestamp_raw,
        "received_at": iso(message.received_at),
        "status": message.status,
        "flags": list(message.flags),
    }


@click.command()
@store_options
@click.option("--to", "to_addr", required=True, help="Recipient number.")
@click.option("--device", "device_name", default=None, help="Send through this device only.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.argument("text")
def send(to_addr: str, device_name: str | None, as_json: bool, text: str, **params: Any) -> None:
    """Queue an SMS and print its uuid."""
    settings = settings_from(params)
    try:
        number = normalize_recipient(to_addr, settings.default_region)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from None
    message = new_outbound(number, text, device_name, datetime.now(UTC))

    async def enqueue(store: Store) -> Outbound:
        await store.enqueue([message])
        return (await store.outbound(message_id=message.message_id))[0]

    stored = with_store(settings, enqueue)
    if as_json:
        print_json(outbound_json(stored))
    else:
        click.echo(stored.message_id)


@click.command()
@store_options
@click.option("--direction", type=click.Choice(["in", "out"]), default="in")
@click.option("--device", "device_name", default=None)
@click.option("--limit", type=click.IntRange(1, 100000), default=1000)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def messages(
    direction: str, device_name: str | None, limit: int, as_json: bool, **params: Any
) -> None:
    """List incoming (default) or outgoing SMS."""
    settings = settings_from(params)

    async def read(store: Store) -> list[dict[str, Any]]:
        if direction == "in":
            return [inbound_json(m) for m in await store.inbound(device=device_name, limit=limit)]
        return [outbound_json(m) for m in await store.outbound(device=device_name, limit=limit)]

    rows = with_store(settings, read)
    if as_json:
        print_json(rows)
        return
    if direction == "in":
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


@click.command()
@store_options
@click.argument("uuid")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cancel(uuid: str, as_json: bool, **params: Any) -> None:
    """Cancel a queued SMS that no phone has accepted yet."""
    settings = settings_from(params)

    async def run(store: Store) -> Outbound:
        return await store.cancel(uuid, datetime.now(UTC))

    cancelled = with_store(settings, run)
    if as_json:
        print_json(outbound_json(cancelled))
    else:
        click.echo(f"{cancelled.message_id} {cancelled.status.value}")
