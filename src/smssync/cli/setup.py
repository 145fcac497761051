"""How a person points the SMSsync app at this server: the Sync URL, the secret, a QR code."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from smssync.records import Device
from smssync.regions import DefaultRegion
from smssync.serialize import import_payload, import_text
from smssync.server.credentials import IssuedCredentials
from smssync.settings import Settings


def credentials_json(
    settings: Settings,
    device: Device,
    issued: IssuedCredentials | None,
    region: DefaultRegion | None = None,
) -> dict[str, Any]:
    """Describe how to set up the phone: a new or re-keyed device (its secret in clear),
    or one shown again (``issued`` without a secret; None when its URL cannot be shown)."""
    url = None if issued is None else settings.device_url(issued.token)
    return {
        "name": device.name,
        "sync_url": url,
        "shared_sync_url": settings.sync_url,
        "secret": None if issued is None else issued.secret,
        "has_secret": device.has_secret,
        "basic_user": None if issued is None else issued.basic_user,
        "import_payload": None
        if url is None or issued is None
        else import_payload(device.name, url, issued.secret),
        "default_region": (region.code or None) if region is not None else None,
    }


def warn_if_unreachable(settings: Settings) -> None:
    """Warn on stderr when no phone can use the URLs these settings print."""
    if settings.reach_warning is not None:
        click.echo(f"WARNING: {settings.reach_warning}", err=True)


def print_setup(
    settings: Settings,
    device: Device,
    issued: IssuedCredentials | None,
    region: DefaultRegion | None = None,
) -> None:
    """Tell a person how to point the SMSsync app at this server, with a QR code."""
    import segno

    info = credentials_json(settings, device, issued, region)
    # No wrapping: a URL or secret cut in two cannot be copied, nor a phrase found.
    console = Console(stderr=False, soft_wrap=True)
    # The name and secret are the operator's words, not markup.
    name = escape(device.name)
    console.print(f"[bold]Device[/bold] {name}")
    if info["sync_url"] is None:
        console.print(
            "  Sync URL: (registered before URLs could be shown again: run"
            f" `smssync device rotate-secret {name}` for a new URL and secret)"
        )
    else:
        console.print(f"  Sync URL: [cyan]{escape(info['sync_url'])}[/cyan]")
    if info["secret"] is not None:
        console.print(f"  Secret:   [cyan]{escape(info['secret'])}[/cyan]")
    elif device.has_secret:
        console.print(
            "  Secret:   (set, but kept only as a hash: it cannot be shown again. Type it in"
            f" the app, or run `smssync device rotate-secret {name}` for a new one)"
        )
    else:
        console.print("  Secret:   (none)")
    if region is not None:
        console.print(f"  Numbers without +country code: {escape(region.describe())}")
    if info["import_payload"] is not None:
        console.print("  In the SMSsync app: Add Sync URL, or scan this code to import it.")
        payload = import_text(info["import_payload"])
        segno.make(payload, error="l").terminal(out=sys.stdout, compact=True)
