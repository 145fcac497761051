"""Simulated-network commands: ``smssync sim`` (serve), ``sim sms``, ``sim outbox``,
``sim modem``, ``demo``."""

from __future__ import annotations

import json
import signal
import sys
import urllib.parse
from pathlib import Path
from types import FrameType
from typing import Any

import click
import httpx

from smssync.sim.control import DEFAULT_SIM_PORT

port_option = click.option(
    "--port",
    envvar="SMSSYNC_SIM_PORT",
    show_envvar=True,
    type=click.IntRange(1, 65535),
    default=DEFAULT_SIM_PORT,
    help="Port of the simulated network's control interface on 127.0.0.1.",
)


def _call(port: int, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = httpx.request(method, f"http://127.0.0.1:{port}{path}", timeout=10, **kwargs)
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"no simulated network on port {port} ({exc}); start one with: smssync sim"
        ) from None
    if response.status_code >= 400:
        raise click.ClickException(response.json().get("error", response.text))
    return response.json()


@click.group(invoke_without_command=True)
@port_option
@click.option("--phone", "phones", multiple=True, metavar="NUMBER", help="Register a phone.")
@click.option("--seed", type=int, default=0, help="Seed of the network's random source.")
@click.option("--delay-s", type=click.FloatRange(0), default=0.0, help="Delivery delay.")
@click.option("--loss", type=click.FloatRange(0, 1), default=0.0, help="Chance an SMS is lost.")
@click.option(
    "--send-failure", type=click.FloatRange(0, 1), default=0.0, help="Chance a send fails."
)
@click.option("--send-failure-code", type=click.IntRange(1, 4), default=1)
@click.option("--duplicate", type=click.FloatRange(0, 1), default=0.0, help="Chance of a re-read.")
@click.option("--report-delay-s", type=click.FloatRange(0), default=0.0)
@click.option("--report-failure", type=click.FloatRange(0, 1), default=0.0)
@click.pass_context
def sim(ctx: click.Context, /, port: int, phones: tuple[str, ...], seed: int, **knobs: Any) -> None:
    """Run a simulated phone network with a small control interface (or use a subcommand)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"port": port}
        return
    import uvicorn

    from smssync.sim.control import create_control_app
    from smssync.sim.network import Knobs, SimNetwork

    network = SimNetwork(Knobs(**knobs), seed=seed)
    for number in phones:
        network.phone(number)
    click.echo(f"simulated network on http://127.0.0.1:{port} (phones: {', '.join(phones) or '-'})")
    click.echo(
        f"  deliver an SMS:  smssync sim --port {port} sms --from +254711000001 --to NUMBER TEXT"
    )
    click.echo(f"  what phones sent: smssync sim --port {port} outbox", nl=True)
    sys.stdout.flush()
    # uvicorn stops gracefully on TERM/INT, then raises the signal again for the handler it
    # found: make that one a normal exit, so a stopped network is not reported as killed.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_quietly)
    uvicorn.run(create_control_app(network), host="127.0.0.1", port=port, log_level="warning")


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _port(ctx: click.Context, port: int | None) -> int:
    if port is not None:
        return port
    return int((ctx.obj or {}).get("port", DEFAULT_SIM_PORT))


sub_port_option = click.option(
    "--port",
    # Read from the environment by the group's --port only, so that the group's flag wins.
    allow_from_autoenv=False,
    type=click.IntRange(1, 65535),
    default=None,
    help="Port of the control interface [env SMSSYNC_SIM_PORT; default 8090].",
)


@sim.command("sms")
@click.option("--from", "from_addr", required=True, help="Sender number or name.")
@click.option("--to", "to_addr", required=True, help="The simulated phone that receives it.")
@click.argument("text")
@sub_port_option
@click.pass_context
def sms(ctx: click.Context, from_addr: str, to_addr: str, text: str, port: int | None) -> None:
    """Deliver an SMS to a simulated phone."""
    _call(_port(ctx, port), "POST", "/sms", json={"from": from_addr, "to": to_addr, "text": text})
    click.echo(f"delivered to {to_addr}")


@sim.command("outbox")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@sub_port_option
@click.pass_context
def outbox(ctx: click.Context, as_json: bool, port: int | None) -> None:
    """List what the simulated phones sent, with results and delivery reports."""
    rows = _call(_port(ctx, port), "GET", "/outbox")
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    from smssync.cli.tables import print_table

    print_table(
        ["#", "from", "to", "text", "sent", "delivered"],
        (
            [
                str(row["seq"]),
                row["from"],
                row["to"],
                row["text"],
                "ok" if row["sent_code"] == -1 else f"failed ({row['sent_code']})",
                {None: "-", -1: "yes", 0: "no"}.get(row["delivered_code"], "?"),
            ]
            for row in rows
        ),
    )


@sim.command("phone")
@click.argument("number")
@click.option("--battery", type=click.IntRange(0, 100), default=None, help="Battery percent.")
@click.option("--registered/--no-service", default=None, help="Network registration.")
@click.option("--radio/--radio-off", default=None)
@sub_port_option
@click.pass_context
def phone(
    ctx: click.Context,
    number: str,
    battery: int | None,
    registered: bool | None,
    radio: bool | None,
    port: int | None,
) -> None:
    """Show or change a simulated phone's battery, registration and radio."""
    changes: dict[str, Any] = {}
    if battery is not None:
        changes["battery_percent"] = battery
    if registered is not None:
        changes["registered"] = registered
    if radio is not None:
        changes["radio_on"] = radio
    path = f"/phones/{urllib.parse.quote(number, safe='')}/status"
    result = _call(_port(ctx, port), "PUT" if changes else "GET", path, json=changes or None)
    click.echo(json.dumps(result))


def _quirk_names() -> list[str]:
    import dataclasses

    from smssync.sim.modem_state import Quirks

    return [f.name for f in dataclasses.fields(Quirks)]


_QUIRK_NAMES = _quirk_names()


def _quirks(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, object]:
    from smssync.sim.modem_state import Quirks

    try:
        return dict(Quirks.parse(value) for value in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@sim.command("modem")
@click.option("--number", required=True, help="The modem SIM's number on the network.")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the device symlink [default: a temporary folder].",
)
@click.option("--pin", default="", help="Make the SIM ask for this PIN.")
@click.option("--echo/--no-echo", default=True, help="Echo at power-up (real modems do).")
@click.option("--no-battery", is_flag=True, help="Answer AT+CBC with ERROR, like a USB stick.")
@click.option(
    "--quirk",
    "quirks",
    multiple=True,
    metavar="NAME[=VALUE]",
    callback=_quirks,
    help="Turn on a quirk of smssync.sim.modem_state.Quirks, e.g. --quirk smsc= (no service "
    "centre), --quirk send_errors=500,331, --quirk lte_only, --quirk registration_delay_s=5. "
    f"Known: {', '.join(_QUIRK_NAMES)}.",
)
@sub_port_option
@click.pass_context
def modem(
    ctx: click.Context,
    number: str,
    folder: Path | None,
    pin: str,
    echo: bool,
    no_battery: bool,
    quirks: dict[str, object],
    port: int | None,
) -> None:
    """Run an emulated AT modem on a pseudo-terminal, attached to the simulated network.

    It runs until Ctrl-C or TERM (start it with & or in its own terminal); the device
    symlink is removed when it stops. `smssync sim phone NUMBER --no-service` or
    `--battery N` reach it: AT+CREG?, AT+CSQ and AT+CBC answer what the network says.
    """
    import asyncio
    import tempfile

    from smssync.sim.backend import RemoteSimBackend
    from smssync.sim.modem import ModemEmulator
    from smssync.sim.modem_state import Quirks

    sim_port = _port(ctx, port)
    _wait_for_network(sim_port)
    directory = (folder or Path(tempfile.mkdtemp(prefix="smssync-modem-"))).absolute()
    directory.mkdir(parents=True, exist_ok=True)
    chosen = Quirks(pin=pin, echo=echo, no_battery=no_battery)
    chosen.update(quirks)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        radio = RemoteSimBackend(f"http://127.0.0.1:{sim_port}", number)
        emulator = ModemEmulator(radio, directory, chosen)
        await emulator.start()
        click.echo(f"modem {number} on {emulator.path}", nl=True)
        click.echo(
            f'  in gateway.toml: [backend] kind = "at"; [backend.at] port = "{emulator.path}"'
        )
        sys.stdout.flush()
        try:
            await stop.wait()
        finally:
            await emulator.stop()
        click.echo(f"modem {number} unplugged")

    asyncio.run(serve())


def _wait_for_network(port: int, seconds: float = 10.0) -> None:
    """Wait a little for a network started just before (``smssync sim ... &``), then fail."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            _call(port, "GET", "/")
            return
        except click.ClickException:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


@click.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("smssync-demo"),
    help="Folder for the demo's databases and config.",
)
@click.option("--server-port", type=click.IntRange(1, 65535), default=8080)
@click.option("--sim-port", type=click.IntRange(1, 65535), default=DEFAULT_SIM_PORT)
def demo(folder: Path, server_port: int, sim_port: int) -> None:
    """Try the whole system without a phone: server, simulated network and gateway."""
    from smssync.sim.demo import run_demo

    sys.exit(run_demo(folder, server_port, sim_port))


def register(group: click.Group) -> None:
    """Add the simulated-network commands and the demo."""
    group.add_command(sim)
    group.add_command(demo)
