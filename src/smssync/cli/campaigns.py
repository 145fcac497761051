"""Campaign commands (bulk sends) and the opt-out list."""

from __future__ import annotations

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from smssync import compose
from smssync.addresses import normalize_recipient
from smssync.cli.options import print_json, settings_from, store_options, with_store
from smssync.cli.tables import print_table
from smssync.records import Campaign, CampaignResult
from smssync.serialize import (
    RESULT_COLUMNS,
    campaign_json,
    campaign_result_json,
    iso,
    plan_json,
    spreadsheet_row,
)
from smssync.store import campaigns as store
from smssync.store import optouts, release
from smssync.store.engine import Database


def register(group: click.Group) -> None:
    """Add the campaign and opt-out commands."""
    group.add_command(campaign)
    group.add_command(optout)


@click.group()
def campaign() -> None:
    """Send one text to many numbers: a list or a CSV whose columns fill {placeholders}."""


def _rows(csv_file: Path | None, numbers: tuple[str, ...]) -> list[dict[str, str]]:
    if (csv_file is None) == (not numbers):
        raise click.UsageError("give the recipients with --csv FILE or --to (repeated)")
    if csv_file is None:
        return [{"to": number} for number in numbers]
    try:
        rows = compose.read_csv(csv_file.read_text(encoding="utf-8"))
    except (ValueError, csv.Error, UnicodeDecodeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--csv") from None
    if not rows:
        raise click.BadParameter("the CSV has no rows", param_hint="--csv")
    return rows


def _summary(data: dict[str, Any]) -> str:
    recipients = data["recipients"]
    messages = ", ".join(f"{k} {v}" for k, v in sorted(data["messages"].items())) or "none yet"
    return (
        f"campaign {data['id']} {data['name']!r}: {data['status']}, {data['total']} "
        f"recipients ({recipients['pending']} held, {recipients['released']} queued, "
        f"{recipients['invalid']} invalid, {recipients['opted_out']} opted out, "
        f"{recipients['cancelled']} cancelled); messages: {messages}"
    )


@campaign.command("create")
@store_options
@click.option("--template", required=True, help="The text, with {column} placeholders.")
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CSV with a header line: a number column (to, number, phone…) and the placeholders'.",
)
@click.option("--to", "numbers", multiple=True, help="A recipient (repeat), instead of --csv.")
@click.option("--number-column", default=None, help="The CSV column that holds the number.")
@click.option("--name", default="campaign", help="A label for listings.")
@click.option("--region", default=None, help="Region of national numbers (default: the setting).")
@click.option("--device", "device_name", default=None, help="Send through this device only.")
@click.option("--window", default=None, help="Daily hours, e.g. 08:00-20:00.")
@click.option("--window-tz", default=None, help="The window's zone (default: each recipient's).")
@click.option("--dry-run", is_flag=True, help="Check and preview only; store nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def campaign_create(
    template: str,
    csv_file: Path | None,
    numbers: tuple[str, ...],
    number_column: str | None,
    name: str,
    region: str | None,
    device_name: str | None,
    window: str | None,
    window_tz: str | None,
    dry_run: bool,
    as_json: bool,
    **params: Any,
) -> None:
    """Create a campaign: numbers that cannot be read are listed, opted-out ones skipped;
    a running server releases it at the phones' pacing, inside the window."""
    settings = settings_from(params)
    rows = _rows(csv_file, numbers)
    try:
        send_window = None if window is None else compose.parse_window(window, window_tz)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--window") from None
    if window is None and window_tz is not None:
        raise click.UsageError("--window-tz needs --window")
    try:
        plan = compose.plan(
            name,
            template,
            rows,
            region or settings.default_region,
            column=number_column,
            device=device_name,
            window=send_window,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--template") from None

    async def run(db: Database) -> tuple[compose.Plan, tuple[int, int], Campaign | None]:
        numbers = [r.to_addr for r in plan.campaign.recipients if r.to_addr]
        checked = compose.without(plan, await optouts.opted_out_among(db, numbers))
        rate = await store.fleet(db, device_name)
        if dry_run or not checked.segments:
            return checked, rate, None
        now = datetime.now(UTC)
        made = await store.create_campaign(db, checked.campaign, now)
        await db.write(release.release, made.id, now)
        return checked, rate, await store.campaign(db, made.id)

    plan, rate, made = with_store(settings, run)
    answer = plan_json(plan, *rate) | {"campaign": None if made is None else campaign_json(made)}
    if as_json:
        print_json(answer)
    else:
        for item in answer["invalid"]:
            click.echo(f"not sent: line {item['index'] + 1} {item['to']!r}: {item['message']}")
        for item in answer["preview"]:
            click.echo(f"preview {item['to']}: {item['body']}")
        click.echo(
            f"{answer['characters']} characters, {answer['encoding']}, "
            f"{answer['segments_per_message']} segment(s) each; {answer['segments']} segments "
            f"in all, about {answer['estimate']['minutes']} min at "
            f"{answer['estimate']['sms_per_minute']} SMS/min"
        )
        if made is not None:
            click.echo(_summary(answer["campaign"]))
    if not plan.segments:
        raise click.ClickException("no recipient can be sent")


@campaign.command("list")
@store_options
@click.option("--limit", type=click.IntRange(1, 1000), default=50)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def campaign_list(limit: int, as_json: bool, **params: Any) -> None:
    """List campaigns, newest first, with their counts."""
    settings = settings_from(params)
    found = with_store(settings, lambda db: store.list_campaigns(db, None, limit))
    rows = [campaign_json(c) for c in found]
    if as_json:
        print_json(rows)
        return
    print_table(
        ["id", "name", "status", "total", "held", "queued", "sent", "delivered", "failed"],
        (
            [
                str(r["id"]),
                r["name"],
                r["status"],
                str(r["total"]),
                str(r["recipients"]["pending"]),
                str(r["messages"].get("queued", 0)),
                str(r["messages"].get("sent", 0)),
                str(r["messages"].get("delivered", 0)),
                str(r["messages"].get("failed", 0)),
            ]
            for r in rows
        ),
    )


def _one(action: str, campaign_id: int, as_json: bool, params: dict[str, Any]) -> None:
    settings = settings_from(params)
    verbs = {
        "show": lambda db: store.campaign(db, campaign_id),
        "pause": lambda db: store.pause_campaign(db, campaign_id, datetime.now(UTC)),
        "resume": lambda db: store.resume_campaign(db, campaign_id, datetime.now(UTC)),
        "cancel": lambda db: store.cancel_campaign(db, campaign_id, datetime.now(UTC)),
    }
    data = campaign_json(with_store(settings, verbs[action]))
    if as_json:
        print_json(data)
    else:
        click.echo(_summary(data))


@campaign.command("show")
@store_options
@click.argument("campaign_id", type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def campaign_show(campaign_id: int, as_json: bool, **params: Any) -> None:
    """Show a campaign's recipients by state and its messages by status."""
    _one("show", campaign_id, as_json, params)


@campaign.command("pause")
@store_options
@click.argument("campaign_id", type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def campaign_pause(campaign_id: int, as_json: bool, **params: Any) -> None:
    """Pause: release nothing more, take back queued messages no phone has taken."""
    _one("pause", campaign_id, as_json, params)


@campaign.command("resume")
@store_options
@click.argument("campaign_id", type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def campaign_resume(campaign_id: int, as_json: bool, **params: Any) -> None:
    """Resume a paused campaign."""
    _one("resume", campaign_id, as_json, params)


@campaign.command("cancel")
@store_options
@click.argument("campaign_id", type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def campaign_cancel(campaign_id: int, as_json: bool, **params: Any) -> None:
    """Cancel held recipients and queued messages; what a phone took goes on."""
    _one("cancel", campaign_id, as_json, params)


@campaign.command("results")
@store_options
@click.argument("campaign_id", type=click.IntRange(1))
def campaign_results(campaign_id: int, **params: Any) -> None:
    """Print a campaign's results as CSV: one row per recipient, in the input's order."""
    settings = settings_from(params)

    async def read(db: Database) -> list[CampaignResult]:
        await store.campaign(db, campaign_id)
        found: list[CampaignResult] = []
        while True:
            after = found[-1].id if found else 0
            page = await store.campaign_results(db, campaign_id, after, 1000)
            found += page
            if len(page) < 1000:
                return found

    found = with_store(settings, read)
    writer = csv.DictWriter(sys.stdout, RESULT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in found:
        writer.writerow(spreadsheet_row(campaign_result_json(result)))


@click.group()
def optout() -> None:
    """The opt-out list: numbers every campaign skips."""


def _number(raw: str, region: str) -> str:
    try:
        return normalize_recipient(raw, region)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NUMBER") from None


@optout.command("add")
@store_options
@click.argument("number")
def optout_add(number: str, **params: Any) -> None:
    """Put a number on the list."""
    settings = settings_from(params)
    address = _number(number, settings.default_region)
    added = with_store(
        settings, lambda db: optouts.add_opt_out(db, address, "cli", datetime.now(UTC))
    )
    click.echo(f"{address} {'added' if added else 'already on the list'}")


@optout.command("remove")
@store_options
@click.argument("number")
def optout_remove(number: str, **params: Any) -> None:
    """Take a number off the list."""
    settings = settings_from(params)
    address = _number(number, settings.default_region)
    if not with_store(settings, lambda db: optouts.remove_opt_out(db, address)):
        raise click.ClickException(f"{address} is not on the list")
    click.echo(f"{address} removed")


@optout.command("list")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def optout_list(as_json: bool, **params: Any) -> None:
    """List the numbers on the list."""
    settings = settings_from(params)

    async def read(db: Database) -> list[tuple[str, str, datetime]]:
        found: list[tuple[str, str, datetime]] = []
        while True:
            page = await optouts.list_opt_outs(db, found[-1][0] if found else "", 1000)
            found += page
            if len(page) < 1000:
                return found

    rows: list[dict[str, str]] = [
        {"number": a, "source": s, "since": iso(t) or ""} for a, s, t in with_store(settings, read)
    ]
    if as_json:
        print_json(rows)
        return
    print_table(
        ["number", "source", "since"], ([r["number"], r["source"], r["since"]] for r in rows)
    )
