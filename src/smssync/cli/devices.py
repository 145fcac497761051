"""Device commands: device add, show, rotate-secret, list, set, disable, enable and remove."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import click

from smssync.cli.options import (
    print_json,
    settings_from,
    store_options,
    store_region,
    with_store,
)
from smssync.cli.setup import credentials_json, print_setup, warn_if_unreachable
from smssync.cli.tables import print_table
from smssync.records import WIRE_KEY_FIELDS, AckMode, Device
from smssync.regions import DefaultRegion
from smssync.serialize import device_json
from smssync.server.credentials import (
    IssuedCredentials,
    create_device,
    generate_secret,
    rotate_secret,
    shown_again,
)
from smssync.store import devices as devices_store
from smssync.store import messages as messages_store
from smssync.store.engine import Database


def register(group: click.Group) -> None:
    """Add the device commands."""
    group.add_command(device)


@click.group()
def device() -> None:
    """Register and configure devices (phones or gateways)."""


@device.command("add")
@store_options
@click.argument("name")
@click.option("--secret", default=None, help="The secret typed in the app (default: random).")
@click.option("--no-secret", is_flag=True, help="No secret: the path token alone identifies it.")
@click.option("--basic-user", default=None, help="User for HTTP Basic auth in the Sync URL.")
@click.option("--basic-password", default=None, help="Password for HTTP Basic auth.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def device_add(
    name: str,
    secret: str | None,
    no_secret: bool,
    basic_user: str | None,
    basic_password: str | None,
    as_json: bool,
    **params: Any,
) -> None:
    """Register a device and print its Sync URL and secret (shown only now)."""
    settings = settings_from(params)
    if no_secret and secret:
        raise click.UsageError("--secret and --no-secret exclude each other")
    if bool(basic_user) != bool(basic_password):
        raise click.UsageError("--basic-user and --basic-password go together")
    chosen = None if no_secret else (secret if secret is not None else generate_secret())

    async def add(store: Database) -> tuple[Device, IssuedCredentials, DefaultRegion]:
        device, issued = await create_device(
            store,
            name,
            datetime.now(UTC),
            secret=chosen,
            basic_user=basic_user,
            basic_password=basic_password,
        )
        return device, issued, await store_region(store, settings)

    device, issued, found = with_store(settings, add)
    warn_if_unreachable(settings)
    if as_json:
        print_json(credentials_json(settings, device, issued, found))
    else:
        print_setup(settings, device, issued, found)


@device.command("show")
@store_options
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def device_show(name: str, as_json: bool, **params: Any) -> None:
    """Print a device's Sync URL and QR code again (its secret is kept only as a hash)."""
    settings = settings_from(params)

    async def show(store: Database) -> tuple[Device, IssuedCredentials | None, DefaultRegion]:
        device, shown = await shown_again(store, name)
        return device, shown, await store_region(store, settings)

    device, shown, found = with_store(settings, show)
    warn_if_unreachable(settings)
    if as_json:
        print_json(credentials_json(settings, device, shown, found))
    else:
        print_setup(settings, device, shown, found)


@device.command("rotate-secret")
@store_options
@click.argument("name")
@click.option("--secret", default=None, help="The new secret (default: random).")
@click.option("--no-secret", is_flag=True, help="Remove the secret: the URL alone identifies it.")
@click.option("--new-url", is_flag=True, help="Also a new Sync URL; the old one stops working.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def device_rotate_secret(
    name: str, secret: str | None, no_secret: bool, new_url: bool, as_json: bool, **params: Any
) -> None:
    """Give a device a new secret, shown only now; the old one stops working at once."""
    settings = settings_from(params)
    if no_secret and secret:
        raise click.UsageError("--secret and --no-secret exclude each other")
    chosen = None if no_secret else (secret if secret is not None else generate_secret())

    async def rotate(store: Database) -> tuple[Device, IssuedCredentials, DefaultRegion]:
        device, issued = await rotate_secret(store, name, secret=chosen, new_url=new_url)
        return device, issued, await store_region(store, settings)

    device, issued, found = with_store(settings, rotate)
    warn_if_unreachable(settings)
    if as_json:
        print_json(credentials_json(settings, device, issued, found))
    else:
        print_setup(settings, device, issued, found)


@device.command("list")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def device_list(as_json: bool, **params: Any) -> None:
    """List devices: health, last seen, queue depth."""
    settings = settings_from(params)

    async def read(store: Database) -> tuple[list[Device], dict[str | None, int]]:
        return await devices_store.all_devices(store), await messages_store.queue_depths(store)

    devices, depths = with_store(settings, read)
    now = datetime.now(UTC)
    rows = [device_json(d, depths.get(d.name, 0), now) for d in devices]
    if as_json:
        print_json(rows)
        return
    print_table(
        ["name", "health", "last seen", "queue", "mode"],
        (
            [
                row["name"],
                "disabled" if row["disabled_at"] else row["health"],
                row["last_seen"] or "-",
                str(row["queue_depth"]),
                row["effective_mode"],
            ]
            for row in rows
        ),
    )
    if depths.get(None):
        click.echo(f"unassigned queued messages: {depths[None]}")


@device.command("set")
@store_options
@click.argument("name")
@click.option(
    "--ack-mode",
    type=click.Choice([m.value for m in AckMode]),
    default=None,
    help="auto, handoff (Message Results API off) or handshake (on).",
)
@click.option(
    "--reply-from-server/--no-reply-from-server",
    default=None,
    help="Piggyback queued SMS on the reply to incoming SMS.",
)
@click.option("--auto-reply", default=None, help="Text sent back to every sender ('' for none).")
@click.option("--batch-limit", type=click.IntRange(1, 100), default=None)
@click.option("--segments-per-minute", type=click.IntRange(1, 10000), default=None)
@click.option("--lease-s", type=click.IntRange(10, 86400), default=None)
@click.option("--liveness-s", type=click.IntRange(10, 7 * 86400), default=None)
@click.option("--timezone", default=None, help="Zone of the phone's clock, e.g. Africa/Nairobi.")
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="FIELD=NAME",
    help="Rename an incoming-SMS key as the app's custom keys do, e.g. from=sender.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def device_set(name: str, as_json: bool, keys: tuple[str, ...], **params: Any) -> None:
    """Change a device's settings; they apply to its next request."""
    settings = settings_from(params)
    changes = {
        k: v
        for k, v in params.items()
        if v is not None
        and k
        in {
            "ack_mode",
            "reply_from_server",
            "auto_reply",
            "batch_limit",
            "segments_per_minute",
            "lease_s",
            "liveness_s",
            "timezone",
        }
    }
    if "ack_mode" in changes:
        changes["ack_mode"] = AckMode(changes["ack_mode"])
    if changes.get("auto_reply") == "":
        changes["auto_reply"] = None
    if changes.get("timezone"):
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(changes["timezone"])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise click.BadParameter(f"unknown zone {changes['timezone']!r}") from None
    key_changes = _parse_keys(keys)

    async def update(store: Database) -> tuple[Device, int]:
        current = await devices_store.device_by_name(store, name)
        if current is None:
            raise click.ClickException(f"no device named {name!r}")
        new = dataclasses.replace(current.settings, **changes)
        if key_changes:
            new = dataclasses.replace(new, keys=dataclasses.replace(new.keys, **key_changes))
        updated = await devices_store.update_device(store, name, settings=new)
        depths = await messages_store.queue_depths(store)
        return updated, depths.get(name, 0)

    updated, depth = with_store(settings, update)
    if as_json:
        print_json(device_json(updated, depth, datetime.now(UTC)))
    else:
        click.echo(f"{name}: {json.dumps(updated.settings.to_json())}")


def _parse_keys(pairs: tuple[str, ...]) -> dict[str, str]:
    wire_to_field = WIRE_KEY_FIELDS
    changes: dict[str, str] = {}
    for pair in pairs:
        field, sep, name = pair.partition("=")
        if not sep or field not in wire_to_field or not name:
            raise click.BadParameter(
                f"{pair!r}: expected FIELD=NAME with FIELD one of {', '.join(wire_to_field)}",
                param_hint="--key",
            )
        changes[wire_to_field[field]] = name
    return changes


@device.command("disable")
@store_options
@click.argument("name")
def device_disable(name: str, **params: Any) -> None:
    """Refuse a device on its Sync URL until enabled; its unpinned queue goes to the others."""
    _set_disabled(name, True, params)
    click.echo(f"disabled {name}")


@device.command("enable")
@store_options
@click.argument("name")
def device_enable(name: str, **params: Any) -> None:
    """Accept a disabled device on its Sync URL again."""
    _set_disabled(name, False, params)
    click.echo(f"enabled {name}")


def _set_disabled(name: str, disabled: bool, params: dict[str, Any]) -> None:
    settings = settings_from(params)

    async def change(store: Database) -> None:
        await devices_store.set_disabled(store, name, disabled, datetime.now(UTC))

    with_store(settings, change)


@device.command("remove")
@store_options
@click.argument("name")
def device_remove(name: str, **params: Any) -> None:
    """Delete a device; its queued messages go back to the shared queue."""
    settings = settings_from(params)

    async def remove(store: Database) -> None:
        await devices_store.remove_device(store, name)

    with_store(settings, remove)
    click.echo(f"removed {name}")
