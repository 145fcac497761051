"""Gateway commands: run, init, status, test, doctor."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from smssync.errors import DriverMissing, SmssyncError
from smssync.gateway.config import GatewayConfig, load_config
from smssync.gateway.records import UrlCounts
from smssync.gateway.store import GatewayStore

DEFAULT_CONFIG = "gateway.toml"

config_option = click.option(
    "--config",
    "config_path",
    envvar="SMSSYNC_GATEWAY_CONFIG",
    show_envvar=True,
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"The gateway's TOML configuration [default: {DEFAULT_CONFIG}].",
)


def _path(config_path: Path | None) -> Path:
    # A subcommand's --config wins; else the group's (smssync gateway --config X status).
    if config_path is not None:
        return config_path
    ctx = click.get_current_context()
    parent = ctx.parent.params.get("config_path") if ctx.parent else None
    return Path(parent) if parent else Path(DEFAULT_CONFIG)


def _load(path: Path | None) -> GatewayConfig:
    try:
        return load_config(_path(path))
    except SmssyncError as exc:
        raise click.ClickException(exc.message) from None


@click.group(invoke_without_command=True)
@config_option
@click.option("-q", "--quiet", is_flag=True, help="Print only warnings and the backlog display.")
@click.pass_context
def gateway(ctx: click.Context, config_path: Path | None, quiet: bool) -> None:
    """Play the SMSsync app: forward received SMS, send the server's, report results."""
    if ctx.invoked_subcommand is not None:
        return
    config = _load(config_path)
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # httpx logs every URL, and task URLs carry the secret.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        asyncio.run(_run(config))
    except DriverMissing as exc:
        from smssync.gateway.doctor import install_hint

        raise click.ClickException(f"{exc.message}: {install_hint(exc.extra)}") from None
    except SmssyncError as exc:
        raise click.ClickException(exc.message) from None


def make_backend(config: GatewayConfig) -> Any:
    """Build the backend ``[backend] kind`` names; its driver is imported only when chosen."""
    chosen = config.backend
    folder = Path(config.store).parent
    if chosen.kind == "at":
        from smssync.backends.at import AtBackend, AtOptions

        if not chosen.at.port:
            raise SmssyncError("[backend.at] port is not set")
        return AtBackend(AtOptions(**chosen.at.model_dump()))
    if chosen.kind == "termux":
        from smssync.backends.termux import TermuxBackend, TermuxOptions

        cursor = Path(config.store).with_suffix(".termux-cursor")
        return TermuxBackend(TermuxOptions(**chosen.termux.model_dump(), cursor_file=cursor))
    if chosen.kind == "gammu":
        from smssync.backends.gammu import GammuBackend, GammuOptions

        values = chosen.gammu.model_dump()
        values["config"] = folder / values["config"]
        return GammuBackend(GammuOptions(**values))
    from smssync.sim.backend import RemoteSimBackend

    return RemoteSimBackend(chosen.url, chosen.number)


async def _run(config: GatewayConfig) -> None:
    from smssync.gateway.runner import Gateway

    store = GatewayStore(Path(config.store))
    await store.open()
    backend = make_backend(config)
    runner = Gateway(config, backend, store)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    where = (
        f"phone {config.backend.number} on {config.backend.url}"
        if config.backend.kind == "sim"
        else f"{config.backend.kind} backend"
    )
    click.echo(
        f"smssync gateway: {where}, Sync URLs: {', '.join(runner.clients)}; store {config.store}",
        err=True,
    )
    display = asyncio.create_task(_backlog_display(runner, store, stop))
    try:
        await runner.run(stop)
    finally:
        display.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await display
        await store.close()


async def _backlog_display(runner: Any, store: GatewayStore, stop: asyncio.Event) -> None:
    """Print the draining backlog once a second while uploads are pending."""
    started: float | None = None
    done_at_start = 0
    while not stop.is_set():
        await asyncio.sleep(1.0)
        pending = await store.pending_count()
        forwarded = runner.progress.forwarded
        if pending == 0:
            if started is not None:
                elapsed = time.monotonic() - started
                click.echo(
                    f"backlog drained: {forwarded - done_at_start} uploads in {elapsed:.1f} s",
                    err=True,
                )
                started = None
            continue
        if started is None:
            started, done_at_start = time.monotonic(), forwarded
        elapsed = max(time.monotonic() - started, 1e-6)
        rate = (forwarded - done_at_start) / elapsed
        click.echo(
            f"backlog: {pending} pending, {forwarded - done_at_start} forwarded "
            f"({rate:.0f}/s), {runner.progress.failed_attempts} failed attempts",
            err=True,
        )


@gateway.command("init")
@config_option
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option(
    "--backend",
    type=click.Choice(["sim", "at", "termux", "gammu"]),
    default=None,
    help="[backend] kind [default: sim; at when --at-port is given].",
)
@click.option(
    "--at-port", default=None, metavar="PATH", help="[backend.at] port: the modem's AT port."
)
@click.option(
    "--device-json",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Take the Sync URL, secret and device_id from what `smssync device add NAME --json` "
    "printed (saved to a file).",
)
@click.option("--own-number", default=None, help="[device] own_number: this SIM's number.")
def init(
    config_path: Path | None,
    force: bool,
    backend: str | None,
    at_port: str | None,
    device_json: Path | None,
    own_number: str | None,
) -> None:
    """Write a commented example configuration, with the values given filled in."""
    from smssync.gateway.initconfig import InitValues, filled_example, from_device_json

    config_path = _path(config_path)
    if config_path.exists() and not force:
        raise click.ClickException(f"{config_path} exists (use --force to overwrite)")
    try:
        device = from_device_json(device_json) if device_json else {}
        text = filled_example(
            InitValues(
                backend=backend,
                # Absolute: the gateway may be started from another folder.
                at_port=str(Path(at_port).absolute()) if at_port else None,
                sync_url=device.get("sync_url"),
                secret=(device.get("secret") or "") if device else None,
                device_id=device.get("name"),
                own_number=own_number,
            )
        )
    except SmssyncError as exc:
        raise click.ClickException(exc.message) from None
    # It may hold a Sync URL secret: readable by its owner only.
    config_path.touch(mode=0o600, exist_ok=True)
    config_path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {config_path}; check it, then run: smssync gateway --config {config_path}")


def _iso(epoch_s: float | None) -> str | None:
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def status_json(config: GatewayConfig, counts: list[UrlCounts]) -> list[dict[str, Any]]:
    """Describe each configured Sync URL's uploads and last contact."""
    by_name = {c.sync_url: c for c in counts}
    rows = []
    for url in config.sync_urls:
        found = by_name.get(url.name, UrlCounts(url.name))
        rows.append(
            {
                "sync_url": url.name,
                "enabled": url.enabled,
                "pending": found.pending,
                "failed": found.failed,
                "forwarded": found.forwarded,
                "filtered": found.filtered,
                "dropped": found.dropped,
                "last_contact": _iso(found.last_contact_at),
                "last_success": _iso(found.last_ok_at),
                "last_error": found.last_error,
            }
        )
    return rows


@gateway.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(config_path: Path | None, as_json: bool) -> None:
    """Per Sync URL: pending, failed (retrying) and forwarded SMS, and the last contact."""
    config = _load(config_path)

    async def read() -> list[UrlCounts]:
        store = GatewayStore(Path(config.store))
        await store.open()
        try:
            return await store.counts()
        finally:
            await store.close()

    try:
        rows = status_json(config, asyncio.run(read()))
    except SmssyncError as exc:
        raise click.ClickException(exc.message) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from smssync.cli.tables import print_table

    print_table(
        ["Sync URL", "pending", "failed", "forwarded", "filtered", "last contact"],
        (
            [
                row["sync_url"] + ("" if row["enabled"] else " (disabled)"),
                str(row["pending"]),
                str(row["failed"]),
                str(row["forwarded"]),
                str(row["filtered"]),
                row["last_contact"] or "never",
            ]
            for row in rows
        ),
    )


@gateway.command("test")
@config_option
def test_integration(config_path: Path | None) -> None:
    """Send the App's "test integration" request to every enabled Sync URL."""
    from smssync.gateway.client import SyncClient

    config = _load(config_path)

    async def run() -> bool:
        ok = True
        for url in config.enabled_urls:
            client = SyncClient(url, config.device.user_agent, config.forward.timeout_s)
            try:
                await client.test_integration()
                click.echo(f"{url.name}: ok")
            except SmssyncError as exc:
                ok = False
                click.echo(f"{url.name}: failed: {exc.message}")
            finally:
                await client.close()
        return ok

    if not asyncio.run(run()):
        raise SystemExit(1)


@gateway.command("doctor")
@config_option
def doctor(config_path: Path | None) -> None:
    """Probe the backend (SIM, registration, signal, battery) and each Sync URL."""
    from smssync.gateway.doctor import probe_backend, probe_urls, render

    config = _load(config_path)

    async def run() -> list[Any]:
        try:
            backend = make_backend(config)
        except SmssyncError as exc:
            from smssync.gateway.doctor import Check

            checks = [Check("device", False, exc.message, "fix [backend] in the config")]
        else:
            checks = await probe_backend(config.backend.kind, backend)
        return [*checks, *await probe_urls(config)]

    checks = asyncio.run(run())
    click.echo(render(checks))
    if any(c.ok is False for c in checks):
        raise SystemExit(1)


def register(group: click.Group) -> None:
    """Add the gateway commands."""
    group.add_command(gateway)
