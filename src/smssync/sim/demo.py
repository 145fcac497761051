"""``smssync demo``: a server, a simulated network and a gateway, started together.

Each part runs as its own ``smssync`` process, exactly as a person would start them, so the
demo shows the real thing. Each child runs in its own session, so a Ctrl-C or a TERM reaches
the demo alone, which then stops the gateway, the network and the server in that order and
waits for each: nothing is left holding a port. On Linux a child also gets TERM when the
demo dies without cleaning up (``kill -9``).
"""

from __future__ import annotations

import ctypes
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

GATEWAY_NUMBER = "+254700000100"
DEVICE_NAME = "demo-gateway"
SMSSYNC = [sys.executable, "-m", "smssync"]
#: What the demo keeps of ``smssync device add --json``, so a re-run reuses the device.
DEVICE_FILE = "device.json"
#: prctl(2) option: the signal a child gets when its parent dies.
_PR_SET_PDEATHSIG = 1
#: Variables of the caller that would point a child at another store or config.
_FOREIGN_ENV = ("SMSSYNC_DATABASE_URL", "SMSSYNC_GATEWAY_CONFIG", "SMSSYNC_PUBLIC_URL")


class _Stop(Exception):
    """TERM or HUP: leave the wait loop and clean up, as for Ctrl-C."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def _die_with_parent() -> None:
    """In a child, before exec: get TERM when the demo dies, even of a SIGKILL (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited early; see {log}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not start; see {log}")


def cli_command() -> str:
    """Return how a person runs this very ``smssync``: the bare name only when PATH finds it.

    After ``scripts/bootstrap`` the script is in ``.venv/bin``, usually not on PATH, so the
    demo prints its absolute path; run as ``python -m smssync``, that is printed instead.
    """
    ours: Path | None = None
    argv0 = Path(sys.argv[0])
    if argv0.name == "smssync" and argv0.is_file():
        ours = argv0.absolute()
    elif (beside := Path(sys.executable).parent / "smssync").is_file():
        ours = beside.absolute()
    if ours is None:
        return f"{shlex.quote(sys.executable)} -m smssync"
    found = shutil.which("smssync")
    if found and Path(found).absolute() == ours:
        return "smssync"
    return shlex.quote(str(ours))


def gateway_config(sync_url: str, secret: str, sim_port: int, store: str) -> str:
    """Return the demo gateway's TOML: quick task polls, results API on, reports on."""
    return f"""\
store = {json.dumps(store)}

[device]
device_id = "{DEVICE_NAME}"
own_number = "{GATEWAY_NUMBER}"

[backend]
kind = "sim"
url = "http://127.0.0.1:{sim_port}"
number = "{GATEWAY_NUMBER}"

[[sync_urls]]
title = "demo"
url = {json.dumps(sync_url)}
secret = {json.dumps(secret)}

[forward]
first_delay_s = 2
cap_s = 60

[tasks]
interval_s = 5
"""


def on_port(url: str, port: int) -> str:
    """Return ``url`` on 127.0.0.1:``port`` (a re-run may serve on another port)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))


def _device(folder: Path, env: dict[str, str]) -> dict[str, Any]:
    """Register the demo's gateway once; later runs read what the first one saved."""
    saved = folder / DEVICE_FILE
    if saved.exists():
        info: dict[str, Any] = json.loads(saved.read_text(encoding="utf-8"))
        return info
    added = subprocess.run(
        [*SMSSYNC, "device", "add", DEVICE_NAME, "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    if added.returncode != 0:
        raise RuntimeError(
            f"smssync device add {DEVICE_NAME} failed: {added.stderr.strip()} "
            f"(a demo folder without {DEVICE_FILE}: remove {folder} and start again)"
        )
    saved.touch(mode=0o600)
    saved.write_text(added.stdout, encoding="utf-8")
    info = json.loads(added.stdout)
    return info


def run_demo(folder: Path, server_port: int, sim_port: int) -> int:
    """Start the three processes, print what to try, wait for Ctrl-C or TERM."""
    folder = folder.absolute()
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SMSSYNC_DATA_DIR": str(folder / "server"),
        "SMSSYNC_HOST": "127.0.0.1",
        "SMSSYNC_PORT": str(server_port),
        "SMSSYNC_SIM_PORT": str(sim_port),
    }
    for name in _FOREIGN_ENV:
        env.pop(name, None)
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], log_name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = folder / log_name
        with log.open("ab") as out:
            # A session of its own: the terminal's Ctrl-C goes to the demo, which stops
            # the children in order instead of racing them.
            proc = subprocess.Popen(
                [*SMSSYNC, *args],
                env=env,
                stdout=out,
                stderr=out,
                start_new_session=True,
                # The demo runs no threads, so a pre-exec hook is safe here.
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        procs.append(proc)
        return proc, log

    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        server, log = start(["serve"], "server.log")
        base = f"http://127.0.0.1:{server_port}"
        _wait_http(base + "/healthz", server, log)
        info = _device(folder, env)
        # Written on every run: the ports may differ from the last one's.
        config_path = folder / "gateway.toml"
        config_path.write_text(
            gateway_config(
                on_port(info["sync_url"], server_port),
                info["secret"] or "",
                sim_port,
                str(folder / "gateway.db"),
            ),
            encoding="utf-8",
        )
        config_path.chmod(0o600)
        sim, log = start(["sim", "--phone", GATEWAY_NUMBER], "sim.log")
        _wait_http(f"http://127.0.0.1:{sim_port}/", sim, log)
        start(["gateway", "--config", str(config_path)], "gateway.log")
        print(instructions(folder, base, server_port, sim_port), flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("a demo process stopped; see the logs in", folder, file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _Stop):
        return 0
    except RuntimeError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        # A second TERM while stopping must not cut the clean-up short.
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _stop_all(procs)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """TERM the children, newest first (the gateway before what it talks to), and reap them."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def instructions(folder: Path, base: str, server_port: int, sim_port: int) -> str:
    """Return what the demo prints: its parts, and commands that work as printed."""
    cli = cli_command()
    data_dir = shlex.quote(str(folder / "server"))
    env = f"SMSSYNC_DATA_DIR={data_dir} SMSSYNC_PORT={server_port} {cli}"
    sim = f"{cli} sim --port {sim_port}"
    config = shlex.quote(str(folder / "gateway.toml"))
    return f"""
smssync demo is running (logs and databases in {folder}/):
  server            {base}/smssync   (health: {base}/readyz)
  simulated network http://127.0.0.1:{sim_port}/   (phones and knobs)
  gateway           phone {GATEWAY_NUMBER}, config {folder / "gateway.toml"}

Try, in another terminal:
  {sim} sms --from +254711000001 --to {GATEWAY_NUMBER} "Hello server"
  {env} messages                     # the SMS arrived on the server
  {env} send --to +254722000002 "Hi from the server"
  {sim} outbox              # ...sent by the simulated phone
  {env} messages --direction out     # sent, then delivered
  {cli} gateway --config {config} status
  {sim} phone {GATEWAY_NUMBER} --battery 10   # battery alert

Ctrl-C (or kill -TERM {os.getpid()}) stops everything.
"""
