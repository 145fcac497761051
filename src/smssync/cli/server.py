"""Server commands: serve (and serve --get) and migrate."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click

from smssync.cli.options import (
    serve_options,
    settings_from,
    store_options,
    store_region,
    with_store,
)
from smssync.cli.setup import print_setup
from smssync.dashboard.passwords import generate_password, hash_password
from smssync.errors import ConfigError, Conflict, SmssyncError
from smssync.records import Device, Role
from smssync.regions import DefaultRegion
from smssync.server.credentials import IssuedCredentials, create_device, generate_secret
from smssync.server.metrics import MULTIPROC_VARIABLE
from smssync.settings import Settings
from smssync.store import devices, users
from smssync.store.engine import Database
from smssync.store.files import private_dir

#: A device just created, with its credentials in clear.
Created = tuple[Device, IssuedCredentials]


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

    from smssync.server.app import SUPERVISOR_VARIABLE, claim_port, run
    from smssync.server.logs import log_config

    logging.config.dictConfig(
        log_config(settings.log_format)
    )  # our own lines before uvicorn's, alike
    try:
        # The port first: a first device's one-time secret is worth nothing, and must not
        # be spent, when this server cannot listen.
        sock = claim_port(settings.host, settings.port)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None

    async def first_start(store: Database) -> tuple[DefaultRegion, Created | None, str | None]:
        found = await store_region(store, settings)
        return found, await _first_device(store), await _first_admin(store)

    try:
        found, created, admin_password = with_store(settings, first_start)
    except BaseException:
        sock.close()
        raise
    click.echo(f"smssync serving {settings.sync_url} (store: {_safe_url(settings)})")
    click.echo(found.describe())
    if settings.reach_warning is not None:
        logging.getLogger("smssync.server").warning("%s", settings.reach_warning)
    if created is not None:
        click.echo("No device was registered, so one was created:")
        print_setup(settings, *created, found)
    click.echo(f"Dashboard: {settings.base_url}/dashboard")
    if admin_password is not None:
        # Shown this once: only its argon2 hash is kept.
        click.echo(f"  No user existed, so one was created: admin, password {admin_password}")
        click.echo("  (change it: smssync user set-password admin)")
    sys.stdout.flush()  # before the workers' lines, in a log that holds both

    os.environ.update(settings.to_env())  # what each worker's factory reads
    os.environ[SUPERVISOR_VARIABLE] = str(os.getpid())  # uvicorn supervises in this process
    with worker_metrics(settings.workers):
        run(settings, sock)


@contextlib.contextmanager
def worker_metrics(workers: int) -> Iterator[None]:
    """Give the workers of this run a folder of their own for their metrics (removed after).

    prometheus-client reads ``PROMETHEUS_MULTIPROC_DIR`` when it is first imported, so the
    folder must be named before the workers start, and only for them: this process imported
    it already, and one server process (``--workers 1``) keeps its metrics in memory.
    """
    if workers <= 1:
        yield
        return
    folder = tempfile.mkdtemp(prefix="smssync-metrics-")  # private: 0700
    os.environ[MULTIPROC_VARIABLE] = folder
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_VARIABLE, None)
        shutil.rmtree(folder, ignore_errors=True)


async def _first_device(store: Database) -> Created | None:
    if await devices.all_devices(store):
        return None
    try:
        return await create_device(store, "phone1", datetime.now(UTC), secret=generate_secret())
    except Conflict:
        return None  # another server starting on the same database made it first


async def _first_admin(store: Database) -> str | None:
    if await users.list_users(store):
        return None
    password = generate_password()
    try:
        made = await users.add_first_user(
            store, "admin", Role.ADMIN, hash_password(password), datetime.now(UTC)
        )
    except Conflict:
        return None  # another server starting on the same database made it first
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
    try:
        asyncio.run(run())
    except SmssyncError as exc:
        # The store could not be opened (a missing driver, a database that is down): the
        # reason, not a traceback.
        raise click.ClickException(exc.message) from None


@click.command()
@store_options
def migrate(**params: Any) -> None:
    """Create or upgrade the database schema."""
    settings = settings_from(params)

    async def noop(store: Database) -> None:
        return None

    with_store(settings, noop)
    click.echo("schema is up to date")
