"""``smssync demo``: a server, a simulated network and a gateway, started together.

Each part runs as its own ``smssync`` process, exactly as a person would start them, so the
demo shows the real thing; Ctrl-C stops all three.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

GATEWAY_NUMBER = "+254700000100"
DEVICE_NAME = "demo-gateway"
SMSSYNC = [sys.executable, "-m", "smssync"]


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


def gateway_config(sync_url: str, secret: str, sim_port: int, store: str) -> str:
    """Return the demo gateway's TOML: quick task polls, results API on, reports on."""
    return f"""\
store = "{store}"

[device]
device_id = "{DEVICE_NAME}"
own_number = "{GATEWAY_NUMBER}"

[backend]
kind = "sim"
url = "http://127.0.0.1:{sim_port}"
number = "{GATEWAY_NUMBER}"

[[sync_urls]]
title = "demo"
url = "{sync_url}"
secret = {json.dumps(secret)}

[forward]
first_delay_s = 2
cap_s = 60

[tasks]
interval_s = 5
"""


def run_demo(folder: Path, server_port: int, sim_port: int) -> int:
    """Start the three processes, print what to try, wait for Ctrl-C."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SMSSYNC_DATA_DIR": str(folder / "server"),
        "SMSSYNC_PORT": str(server_port),
        "SMSSYNC_SIM_PORT": str(sim_port),
    }
    env.pop("SMSSYNC_DATABASE_URL", None)
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], log_name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = folder / log_name
        with log.open("ab") as out:
            proc = subprocess.Popen([*SMSSYNC, *args], env=env, stdout=out, stderr=out)
        procs.append(proc)
        return proc, log

    try:
        server, log = start(["serve"], "server.log")
        base = f"http://127.0.0.1:{server_port}"
        _wait_http(base + "/smssync", server, log)
        config_path = folder / "gateway.toml"
        if not config_path.exists():
            added = subprocess.run(
                [*SMSSYNC, "device", "add", DEVICE_NAME, "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            info = json.loads(added.stdout)
            config_path.write_text(
                gateway_config(info["sync_url"], info["secret"] or "", sim_port, "gateway.db")
            )
        sim, log = start(["sim", "--phone", GATEWAY_NUMBER], "sim.log")
        _wait_http(f"http://127.0.0.1:{sim_port}/", sim, log)
        start(["gateway", "--config", str(config_path)], "gateway.log")
        print(_instructions(folder, base, server_port, sim_port))
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("a demo process stopped; see the logs in", folder, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _instructions(folder: Path, base: str, server_port: int, sim_port: int) -> str:
    env = f"SMSSYNC_DATA_DIR={folder / 'server'} SMSSYNC_PORT={server_port}"
    return f"""
smssync demo is running (logs and databases in {folder}/):
  server            {base}/smssync   (health: {base}/readyz)
  simulated network http://127.0.0.1:{sim_port}/   (phones and knobs)
  gateway           phone {GATEWAY_NUMBER}, config {folder / "gateway.toml"}

Try, in another terminal:
  smssync sim --port {sim_port} sms --from +254711000001 --to {GATEWAY_NUMBER} "Hello server"
  {env} smssync messages                     # the SMS arrived on the server
  {env} smssync send --to +254722000002 "Hi from the server"
  smssync sim --port {sim_port} outbox              # ...sent by the simulated phone
  {env} smssync messages --direction out     # sent, then delivered
  smssync gateway --config {folder / "gateway.toml"} status
  smssync sim --port {sim_port} phone {GATEWAY_NUMBER} --battery 10   # battery alert

Ctrl-C stops everything.
"""
