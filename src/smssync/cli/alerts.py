"""Alert commands: list open alerts (or all), acknowledge one."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from typing import Any

import click

from smssync.cli.options import print_json, settings_from, store_options, with_store
from smssync.cli.tables import print_table
from smssync.records import Alert
from smssync.serialize import alert_json
from smssync.store import alerts as alerts_store
from smssync.store.engine import Database


def register(group: click.Group) -> None:
    """Add the alert commands."""
    group.add_command(alerts)


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "unknown"


def print_alerts(rows: list[dict[str, Any]]) -> None:
    """Print alerts as a table, details as compact JSON."""
    print_table(
        ["id", "kind", "state", "device", "raised", "details"],
        (
            [
                str(r["id"]),
                r["kind"],
                r["state"],
                r["device"] or "-",
                r["raised_at"],
                json.dumps(r["details"], ensure_ascii=False, sort_keys=True),
            ]
            for r in rows
        ),
    )


@click.group(invoke_without_command=True)
@store_options
@click.option("--all", "include_all", is_flag=True, help="Resolved alerts too.")
@click.option("--limit", type=click.IntRange(1, 100000), default=100)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def alerts(
    ctx: click.Context, /, include_all: bool, limit: int, as_json: bool, **params: Any
) -> None:
    """List alerts, newest first (open ones unless --all); acknowledge one with ack ID."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_from(params)

    async def read(store: Database) -> list[Alert]:
        return await alerts_store.list_alerts(store, include_resolved=include_all, limit=limit)

    rows = [alert_json(a) for a in with_store(settings, read)]
    if as_json:
        print_json(rows)
    else:
        print_alerts(rows)


@alerts.command("ack")
@store_options
@click.argument("alert_id", type=click.IntRange(1, 2**62))
@click.option("--by", default=None, help="Who saw it (default: cli:<your user name>).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def alerts_ack(alert_id: int, by: str | None, as_json: bool, **params: Any) -> None:
    """Acknowledge an alert: it stays listed until its condition clears."""
    settings = settings_from(params)
    who = by or f"cli:{_operator()}"

    async def ack(store: Database) -> Alert:
        return await alerts_store.acknowledge(store, alert_id, who, datetime.now(UTC))

    alert = with_store(settings, ack)
    if as_json:
        print_json(alert_json(alert))
    else:
        click.echo(f"{alert.id} {alert.kind.value} {alert.state.value}")
