"""Application API commands: apikey, webhook, rule."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import click

from smssync.cli.options import print_json, settings_from, store_options, with_store
from smssync.records import ApiKey, DeliveryState, Event, NewRule, Rule, RuleKind, Scope
from smssync.serialize import delivery_json, iso
from smssync.server.apikeys import create_key, generate_signing_secret
from smssync.store import apikeys, rules, webhooks
from smssync.store.engine import Database


def register(group: click.Group) -> None:
    """Add the API commands."""
    group.add_command(apikey)
    group.add_command(webhook)
    group.add_command(rule)


def key_json(key: ApiKey) -> dict[str, Any]:
    """Describe a stored key (never the key itself)."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": sorted(key.scopes),
        "created_at": iso(key.created_at),
        "revoked_at": iso(key.revoked_at),
    }


@click.group()
def apikey() -> None:
    """Create, list and revoke keys for the HTTP API (/api/v1)."""


@apikey.command("create")
@store_options
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice([s.value for s in Scope]),
    help="send, read or admin (admin includes the others); repeat for several.",
)
@click.option("--name", default="api", help="A label for listings.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def apikey_create(scopes: tuple[str, ...], name: str, as_json: bool, **params: Any) -> None:
    """Create a key and print it (shown only now) with its webhook signing secret."""
    settings = settings_from(params)

    async def run(store: Database) -> tuple[ApiKey, str]:
        return await create_key(store, name, [Scope(s) for s in scopes], datetime.now(UTC))

    stored, key = with_store(settings, run)
    if as_json:
        print_json({**key_json(stored), "key": key, "signing_secret": stored.signing_secret})
        return
    click.echo(key)
    click.echo(f"status callbacks are signed with: {stored.signing_secret}", err=True)


@apikey.command("list")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def apikey_list(as_json: bool, **params: Any) -> None:
    """List keys by prefix, scopes and state."""
    settings = settings_from(params)
    keys = [key_json(k) for k in with_store(settings, lambda store: apikeys.list_api_keys(store))]
    if as_json:
        print_json(keys)
        return
    for k in keys:
        state = "revoked" if k["revoked_at"] else "active"
        click.echo(f"{k['id']}\t{k['prefix']}…\t{','.join(k['scopes'])}\t{state}\t{k['name']}")


@apikey.command("revoke")
@store_options
@click.argument("key_id", type=int)
def apikey_revoke(key_id: int, **params: Any) -> None:
    """Revoke a key by id; running servers refuse it at once."""
    settings = settings_from(params)
    with_store(settings, lambda store: apikeys.revoke_api_key(store, key_id, datetime.now(UTC)))
    click.echo(f"revoked {key_id}")


@click.group()
def webhook() -> None:
    """Manage webhook receivers and their dead letters."""


@webhook.command("add")
@store_options
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    type=click.Choice([e.value for e in Event]),
    help="An event to receive (default: all); repeat for several.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def webhook_add(url: str, events: tuple[str, ...], as_json: bool, **params: Any) -> None:
    """Register a receiver and print its signing secret (shown only now)."""
    settings = settings_from(params)
    if not re.match(r"^https?://\S+$", url):
        raise click.BadParameter("must be an http:// or https:// URL", param_hint="URL")
    refused = settings.egress.check_url(url)
    if refused is not None:
        raise click.BadParameter(refused, param_hint="URL")
    chosen = list(events) or [e.value for e in Event]
    secret = generate_signing_secret()

    async def run(store: Database) -> int:
        return await webhooks.add_webhook(store, url, chosen, secret, datetime.now(UTC))

    endpoint_id = with_store(settings, run)
    if as_json:
        print_json({"id": endpoint_id, "url": url, "events": sorted(chosen), "secret": secret})
    else:
        click.echo(f"webhook {endpoint_id}: {url}")
        click.echo(f"signing secret: {secret}")


@webhook.command("list")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def webhook_list(as_json: bool, **params: Any) -> None:
    """List receivers and their events."""
    settings = settings_from(params)
    config = with_store(settings, lambda store: rules.hook_config(store))
    rows: list[dict[str, Any]] = [
        {"id": e.id, "url": e.url, "events": sorted(e.events)} for e in config.endpoints
    ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        click.echo(f"{row['id']}\t{row['url']}\t{','.join(row['events'])}")


@webhook.command("remove")
@store_options
@click.argument("webhook_id", type=int)
def webhook_remove(webhook_id: int, **params: Any) -> None:
    """Delete a receiver and its undelivered events."""
    settings = settings_from(params)
    with_store(settings, lambda store: webhooks.remove_webhook(store, webhook_id))
    click.echo(f"removed {webhook_id}")


@webhook.command("dead-letters")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def webhook_dead_letters(as_json: bool, **params: Any) -> None:
    """List deliveries whose retries ran out."""
    settings = settings_from(params)
    found = with_store(
        settings, lambda store: webhooks.deliveries(store, DeliveryState.DEAD.value, 1000)
    )
    rows = [delivery_json(d) for d in found]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        click.echo(f"{row['id']}\t{row['event']}\t{row['url']}\t{row['last_error']}")


@webhook.command("redrive")
@store_options
@click.argument("delivery_ids", type=int, nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every dead letter.")
def webhook_redrive(delivery_ids: tuple[int, ...], everything: bool, **params: Any) -> None:
    """Send dead letters again, with a fresh retry window."""
    settings = settings_from(params)
    if everything == bool(delivery_ids):
        raise click.UsageError("give delivery ids or --all")
    wanted = None if everything else list(delivery_ids)
    count = with_store(settings, lambda store: webhooks.redrive(store, wanted, datetime.now(UTC)))
    click.echo(f"redriven: {count}")


def rule_json(found: Rule) -> dict[str, Any]:
    """Describe a rule."""
    return {
        "id": found.id,
        "position": found.position,
        "kind": found.kind.value,
        "pattern": found.pattern,
        "auto_reply": found.auto_reply,
        "forward_webhook_id": found.forward_endpoint_id,
        "tag": found.tag,
    }


@click.group()
def rule() -> None:
    """Route incoming SMS: auto-reply, forward to a webhook, tag. First match wins."""


@rule.command("add")
@store_options
@click.option("--keyword", default=None, help="Match the first word, any case.")
@click.option("--regex", default=None, help="Match a regular expression anywhere.")
@click.option("--sender", default=None, help="Match the sender's number.")
@click.option("--auto-reply", default=None, help="Text sent back to the sender.")
@click.option("--forward", "forward", type=int, default=None, help="Webhook id to forward to.")
@click.option("--tag", default=None, help="Tag stored with the SMS.")
@click.option("--position", type=click.IntRange(1), default=None, help="Default: last.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def rule_add(
    keyword: str | None,
    regex: str | None,
    sender: str | None,
    auto_reply: str | None,
    forward: int | None,
    tag: str | None,
    position: int | None,
    as_json: bool,
    **params: Any,
) -> None:
    """Add a rule; running servers apply it at once."""
    settings = settings_from(params)
    given = [(k, v) for k, v in (("keyword", keyword), ("regex", regex), ("sender", sender)) if v]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --keyword, --regex, --sender")
    if not (auto_reply or forward or tag):
        raise click.UsageError("give an action: --auto-reply, --forward or --tag")
    kind, pattern = RuleKind(given[0][0]), given[0][1]
    if kind is RuleKind.REGEX:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise click.BadParameter(str(exc), param_hint="--regex") from None
    new = NewRule(kind, pattern, auto_reply, forward, tag, position)
    added = with_store(settings, lambda store: rules.add_rule(store, new, datetime.now(UTC)))
    if as_json:
        print_json(rule_json(added))
    else:
        click.echo(f"rule {added.id} at position {added.position}")


@rule.command("list")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def rule_list(as_json: bool, **params: Any) -> None:
    """List rules in evaluation order."""
    settings = settings_from(params)
    config = with_store(settings, lambda store: rules.hook_config(store))
    rows = [rule_json(r) for r in config.rules]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        actions = {k: row[k] for k in ("auto_reply", "forward_webhook_id", "tag") if row[k]}
        click.echo(f"{row['id']}\t{row['position']}\t{row['kind']}={row['pattern']}\t{actions}")


@rule.command("remove")
@store_options
@click.argument("rule_id", type=int)
def rule_remove(rule_id: int, **params: Any) -> None:
    """Delete a rule."""
    settings = settings_from(params)
    with_store(settings, lambda store: rules.remove_rule(store, rule_id))
    click.echo(f"removed {rule_id}")
