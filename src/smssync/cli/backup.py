"""Backup commands: backup, restore and export."""

from __future__ import annotations

import csv
import socket
import sys
from pathlib import Path
from typing import IO, Any

import click

from smssync.cli.options import settings_from, store_options, with_store
from smssync.errors import SmssyncError
from smssync.serialize import EXPORT_COLUMNS, export_row, spreadsheet_row
from smssync.settings import Settings
from smssync.store import backup as backups
from smssync.store import export as exports
from smssync.store.engine import Database
from smssync.store.files import private_dir, private_file

#: SMS read per page of an export.
PAGE = 1000


def register(group: click.Group) -> None:
    """Add the backup commands."""
    group.add_command(backup)
    group.add_command(restore)
    group.add_command(export)


def _sqlite_only(settings: Settings, action: str) -> Path:
    """Return the SQLite file of the store; for PostgreSQL, fail naming its own tool."""
    if not settings.database_url:
        return settings.data_dir / "smssync.db"
    url = settings.database_url
    if not url.startswith(("postgresql", "postgres:")):
        return Path(url.removeprefix("sqlite:///"))
    libpq = _masked(url.replace("postgresql+psycopg://", "postgresql://", 1))
    tool = {
        "backup": f"pg_dump --format=custom --file FILE '{libpq}'",
        "restore": f"pg_restore --clean --if-exists --dbname '{libpq}' FILE",
    }[action]
    raise click.ClickException(
        f"smssync {action} copies SQLite databases; for PostgreSQL use its own tool"
        f" (docs/deploy.md, Backups and retention):\n  {tool}"
    )


def _masked(url: str) -> str:
    scheme, _, rest = url.partition("://")
    if "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}@{host}" if ":" not in userinfo else f"{scheme}://{user}:***@{host}"


@click.command()
@store_options
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def backup(file: Path, **params: Any) -> None:
    """Copy the SQLite database to FILE, safely while servers run (PostgreSQL: pg_dump)."""
    settings = settings_from(params)
    database = _sqlite_only(settings, "backup")
    try:
        revision = backups.backup(database, file)
    except SmssyncError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"backed up {database} to {file} (migration {revision})")
    if not settings.server_key:
        # The hashes in the copy are useless without the key they were made with.
        click.echo(f"keep {settings.data_dir / 'server.key'} too: it is not in the backup")


@click.command()
@store_options
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore(file: Path, **params: Any) -> None:
    """Replace the SQLite database with the backup FILE; stop the servers first."""
    settings = settings_from(params)
    database = _sqlite_only(settings, "restore")
    if _answers(settings.host, settings.port):
        raise click.ClickException(
            f"something listens on {settings.host}:{settings.port}: stop the server"
            " (every server of this database) before restoring"
        )
    try:
        private_dir(database.parent)
        revision = backups.restore(file, database)
    except SmssyncError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"restored {database} from {file} (migration {revision})")


def _answers(host: str, port: int) -> bool:
    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    try:
        with socket.create_connection((target, port), timeout=0.5):
            return True
    except OSError:
        return False


@click.command()
@store_options
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv"]), default="csv", help="What to write.")
@click.option(
    "--direction",
    type=click.Choice(["in", "out", "both"]),
    default="both",
    help="Incoming SMS, outgoing SMS, or both (incoming first).",
)
def export(file: Path, fmt: str, direction: str, **params: Any) -> None:
    """Write the stored SMS to FILE ("-": standard output) as CSV, one row per SMS."""
    settings = settings_from(params)
    directions = [exports.IN, exports.OUT] if direction == "both" else [direction]

    async def write(store: Database, out: IO[str]) -> int:
        writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        count = 0
        for side in directions:
            after = 0
            while page := await exports.export_page(store, side, after, PAGE):
                writer.writerows(spreadsheet_row(export_row(sms)) for _, sms in page)
                count += len(page)
                after = page[-1][0]
        return count

    if str(file) == "-":
        with_store(settings, lambda store: write(store, sys.stdout))
        return
    # SMS are personal data: the file is the owner's only, as the database is.
    try:
        private_file(file)
        out = file.open("w", newline="", encoding="utf-8")
    except OSError as error:
        raise click.ClickException(f"cannot write {file}: {error.strerror}") from None
    with out:
        count = with_store(settings, lambda store: write(store, out))
    click.echo(f"exported {count} SMS to {file}", err=True)
