"""Server commands: serve (and serve --get) and migrate."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import Any

import click

from smssync.cli.devices import print_setup
from smssync.cli.options import serve_options, settings_from, store_options, with_store
from smssync.dashboard.passwords import generate_password, hash_password
from smssync.errors import ConfigError
from smssync.records import Device, Role
from smssync.server.credentials import IssuedCredentials, create_device, generate_secret
from smssync.settings import Settings
from smssync.store import devices, users
from smssync.store.engine import Database
from smssync.store.files import private_dir


def register(group: click.Group) -> None:
    """Add the server commands."""
    group.add_command(serve)
    group.add_command(migrate)


@click.command()
@serve_options
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

    async def first_start(
        store: Database,
    ) -> tuple[tuple[Device, IssuedCredentials] | None, str | None]:
        return await _first_device(store), await _first_admin(store)

    created, admin_password = with_store(settings, first_start)
    click.echo(f"smssync serving {settings.sync_url} (store: {_safe_url(settings)})")
    if created is not None:
        click.echo("No device was registered, so one was created:")
        print_setup(settings, *created)
    click.echo(f"Dashboard: {settings.base_url}/dashboard")
    if admin_password is not None:
        # Shown this once: only its argon2 hash is kept.
        click.echo(f"  No user existed, so one was created: admin, password {admin_password}")
        click.echo("  (change it: smssync user set-password admin)")
    import uvicorn

    from smssync.server.app import SUPERVISOR_VARIABLE, claim_port, serve_options

    os.environ.update(settings.to_env())  # what each worker's factory reads
    os.environ[SUPERVISOR_VARIABLE] = str(os.getpid())  # uvicorn supervises in this process
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


async def _first_device(store: Database) -> tuple[Device, IssuedCredentials] | None:
    if await devices.all_devices(store):
        return None
    return await create_device(store, "phone1", datetime.now(UTC), secret=generate_secret())


async def _first_admin(store: Database) -> str | None:
    if await users.list_users(store):
        return None
    password = generate_password()
    made = await users.add_first_user(
        store, "admin", Role.ADMIN, hash_password(password), datetime.now(UTC)
    )
    return password if made is not None else None


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

    async def noop(store: Database) -> None:
        return None

    with_store(settings, noop)
    click.echo("schema is up to date")
