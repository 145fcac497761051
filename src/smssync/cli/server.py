"""Server-side commands: serve, migrate, device, send, messages."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from smssync.addresses import normalize_recipient
from smssync.cli.tables import print_table
from smssync.errors import ConfigError, SmssyncError
from smssync.messages import WIRE_KEY_FIELDS, AckMode
from smssync.server.credentials import IssuedCredentials, create_device, generate_secret
from smssync.server.exchanges import new_outbound
from smssync.server.health import health
from smssync.settings import DEFAULT_DATA_DIR, DEFAULT_PORT, Settings
from smssync.store import open_store
from smssync.store.base import Device, Inbound, Outbound, Store
from smssync.store.files import private_dir

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _env(name: str) -> str:
    return f"SMSSYNC_{name.upper()}"


def store_options(func: F) -> F:
    """Add the options that locate the store; each one also read from ``SMSSYNC_*``."""
    options = [
        click.option(
            "--data-dir",
            envvar=_env("data_dir"),
            show_envvar=True,
            type=click.Path(file_okay=False),
            default=DEFAULT_DATA_DIR,
            help="Folder of the SQLite database.",
        ),
        click.option(
            "--database-url",
            envvar=_env("database_url"),
            show_envvar=True,
            default="",
            help="postgresql://… to use PostgreSQL instead of SQLite.",
        ),
        click.option(
            "--public-url",
            envvar=_env("public_url"),
            show_envvar=True,
            default="",
            help="How phones reach this server, e.g. https://sms.example.org.",
        ),
        click.option(
            "--default-region",
            envvar=_env("default_region"),
            show_envvar=True,
            default="KE",
            help="Country of numbers written without +country code (ISO 3166 alpha-2).",
        ),
        click.option(
            "--host",
            envvar=_env("host"),
            show_envvar=True,
            default="127.0.0.1",
            help="Address to listen on.",
        ),
        click.option(
            "--port",
            envvar=_env("port"),
            show_envvar=True,
            type=int,
            default=DEFAULT_PORT,
            help="Port to listen on.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def settings_from(params: dict[str, Any]) -> Settings:
    """Build Settings from the common options."""
    names = {f.name for f in dataclasses.fields(Settings)}
    values = {k: v for k, v in params.items() if k in names}
    if "data_dir" in values:
        values["data_dir"] = Path(values["data_dir"])
    try:
        return Settings.from_env(**values)
    except SmssyncError as exc:
        raise click.UsageError(exc.message) from None


def with_store(settings: Settings, action: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store, run one action, close it; turn our errors into CLI errors."""

    async def run() -> T:
        private_dir(settings.data_dir)
        store = open_store(settings.store_url)
        await store.open()
        try:
            await store.use_server_key(settings.data_dir, settings.server_key)
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except SmssyncError as exc:
        raise click.ClickException(exc.message) from None


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def credentials_json(
    settings: Settings, device: Device, issued: IssuedCredentials
) -> dict[str, Any]:
    """Describe how to set up the phone for a new or re-keyed device."""
    return {
        "name": device.name,
        "sync_url": settings.device_url(issued.token),
        "shared_sync_url": settings.sync_url,
        "secret": issued.secret,
        "basic_user": issued.basic_user,
        "import_payload": {
            "title": device.name,
            "url": settings.device_url(issued.token),
            "secret": issued.secret or "",
        },
    }


def print_setup(settings: Settings, device: Device, issued: IssuedCredentials) -> None:
    """Tell a person how to point the SMSsync app at this server, with a QR code."""
    import segno

    info = credentials_json(settings, device, issued)
    console = Console(stderr=False)
    # The name and secret are the operator's words, not markup.
    console.print(f"[bold]Device[/bold] {escape(device.name)}")
    console.print(f"  Sync URL: [cyan]{escape(info['sync_url'])}[/cyan]")
    console.print(f"  Secret:   [cyan]{escape(info['secret'] or '(none)')}[/cyan]")
    console.print("  In the SMSsync app: Add Sync URL, or scan this code to import it.")
    qr = segno.make(json.dumps(info["import_payload"], separators=(",", ":")), error="l")
    qr.terminal(out=sys.stdout, compact=True)


def register(group: click.Group) -> None:
    """Add the server-side commands."""
    group.add_command(serve)
    group.add_command(migrate)
    group.add_command(device)
    group.add_command(send)
    group.add_command(messages)
    group.add_command(cancel)


@click.command()
@store_options
@click.option(
    "--workers",
    envvar=_env("workers"),
    show_envvar=True,
    type=int,
    default=1,
    help="Server processes.",
)
@click.option(
    "--accepted-alert-h",
    envvar=_env("accepted_alert_h"),
    show_envvar=True,
    type=click.IntRange(min=0),
    default=Settings.accepted_alert_h,
    help="Hours an SMS may stay accepted without a result before an alert (0: none).",
)
@click.option(
    "--auth-failures-burst",
    envvar=_env("auth_failures_burst"),
    show_envvar=True,
    type=click.IntRange(min=0),
    default=Settings.auth_failures_burst,
    help="Failed authentications per address and per target before 429 (0: no brake).",
)
@click.option(
    "--auth-failures-per-min",
    envvar=_env("auth_failures_per_min"),
    show_envvar=True,
    type=click.IntRange(min=0),
    default=Settings.auth_failures_per_min,
    help="Failed authentications given back per minute to each address and target.",
)
@click.option(
    "--max-header-bytes",
    envvar=_env("max_header_bytes"),
    show_envvar=True,
    type=click.IntRange(min=1),
    default=Settings.max_header_bytes,
    help="Largest request line and headers of a request, in bytes (more: 431).",
)
@click.option(
    "--max-headers",
    envvar=_env("max_headers"),
    show_envvar=True,
    type=click.IntRange(min=1),
    default=Settings.max_headers,
    help="Most header fields in a request (more: 431).",
)
@click.option(
    "--request-timeout-s",
    envvar=_env("request_timeout_s"),
    show_envvar=True,
    type=click.IntRange(min=1),
    default=Settings.request_timeout_s,
    help="Seconds a request may take to arrive whole (then: 408).",
)
@click.option(
    "--api-max-body-bytes",
    envvar=_env("api_max_body_bytes"),
    show_envvar=True,
    type=click.IntRange(min=1),
    default=Settings.api_max_body_bytes,
    help="Largest body of an API request, in bytes (more: 413).",
)
@click.option(
    "--get",
    "get_path",
    default=None,
    metavar="PATH",
    help="Send one GET through the app, print the reply and exit.",
)
def serve(get_path: str | None, **params: Any) -> None:
    """Run the Sync URL server (SQLite by default); set up a first device if there is none."""
    settings = settings_from(params)
    if get_path is not None:
        _serve_get(settings, get_path)
        return

    async def first_device(store: Store) -> tuple[Device, IssuedCredentials] | None:
        if await store.devices():
            return None
        return await create_device(store, "phone1", datetime.now(UTC), secret=generate_secret())

    created = with_store(settings, first_device)
    click.echo(f"smssync serving {settings.sync_url} (store: {_safe_url(settings)})")
    if created is not None:
        click.echo("No device was registered, so one was created:")
        print_setup(settings, *created)
    import uvicorn

    from smssync.server.app import claim_port, serve_options

    os.environ.update(settings.to_env())  # what each worker's factory reads
    try:
        claim_port(settings.host, settings.port)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    uvicorn.run(
        "smssync.server.app:factory",
        factory=True,
        workers=settings.workers,  # more than 1: uvicorn's own supervisor
        **serve_options(settings),
    )


def _safe_url(settings: Settings) -> str:
    url = settings.store_url
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def _serve_get(settings: Settings, path: str) -> None:
    import httpx

    from smssync.server.app import create_app

    async def run() -> None:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://smssync") as client:
                response = await client.get(path)
        click.echo(response.text)
        if response.status_code >= 400:
            raise SystemExit(1)

    private_dir(settings.data_dir)
    asyncio.run(run())


@click.command()
@store_options
def migrate(**params: Any) -> None:
    """Create or upgrade the database schema."""
    settings = settings_from(params)

    async def noop(store: Store) -> None:
        return None

    with_store(settings, noop)
    click.echo("schema is up to date")


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

    async def add(store: Store) -> tuple[Device, IssuedCredentials]:
        return await create_device(
            store,
            name,
            datetime.now(UTC),
            secret=chosen,
            basic_user=basic_user,
            basic_password=basic_password,
        )

    created = with_store(settings, add)
    if as_json:
        _print_json(credentials_json(settings, *created))
    else:
        print_setup(settings, *created)


def device_json(device: Device, depth: int, now: datetime) -> dict[str, Any]:
    """Describe a device for ``device list --json``."""
    return {
        "name": device.name,
        "health": health(device, now),
        "last_seen": _iso(device.last_seen_at),
        "user_agent": device.last_user_agent,
        "queue_depth": depth,
        "ack_mode": device.settings.ack_mode.value,
        "effective_mode": device.effective_mode.value,
        "has_secret": device.has_secret,
        "basic_user": device.basic_user,
        "settings": device.settings.to_json(),
    }


@device.command("list")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def device_list(as_json: bool, **params: Any) -> None:
    """List devices: health, last seen, queue depth."""
    settings = settings_from(params)

    async def read(store: Store) -> tuple[list[Device], dict[str | None, int]]:
        return await store.devices(), await store.queue_depths()

    devices, depths = with_store(settings, read)
    now = datetime.now(UTC)
    rows = [device_json(d, depths.get(d.name, 0), now) for d in devices]
    if as_json:
        _print_json(rows)
        return
    print_table(
        ["name", "health", "last seen", "queue", "mode"],
        (
            [
                row["name"],
                row["health"],
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

    async def update(store: Store) -> tuple[Device, int]:
        current = await store.device_by_name(name)
        if current is None:
            raise click.ClickException(f"no device named {name!r}")
        new = dataclasses.replace(current.settings, **changes)
        if key_changes:
            new = dataclasses.replace(new, keys=dataclasses.replace(new.keys, **key_changes))
        updated = await store.update_device(name, settings=new)
        depths = await store.queue_depths()
        return updated, depths.get(name, 0)

    updated, depth = with_store(settings, update)
    if as_json:
        _print_json(device_json(updated, depth, datetime.now(UTC)))
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


@device.command("remove")
@store_options
@click.argument("name")
def device_remove(name: str, **params: Any) -> None:
    """Delete a device; its queued messages go back to the shared queue."""
    settings = settings_from(params)

    async def remove(store: Store) -> None:
        await store.remove_device(name)

    with_store(settings, remove)
    click.echo(f"removed {name}")


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
        "created_at": _iso(message.created_at),
        "history": [
            {"at": _iso(h.at), "status": h.status.value, "detail": h.detail}
            for h in message.history
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
        "sent_at": _iso(message.sent_at),
        "sent_timestamp_raw": message.sent_timestamp_raw,
        "received_at": _iso(message.received_at),
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
        _print_json(outbound_json(stored))
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
        _print_json(rows)
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
        _print_json(outbound_json(cancelled))
    else:
        click.echo(f"{cancelled.message_id} {cancelled.status.value}")
