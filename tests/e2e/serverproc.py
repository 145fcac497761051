"""A real ``smssync serve`` process on a free port, and the CLI beside it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.pg import create_pg_database, drop_pg_database, pg_url
from tests.ports import free_port

# Re-exported for the e2e tests: where their scratch databases and ports come from.
__all__ = ["Server", "create_pg_database", "drop_pg_database", "free_port", "pg_url"]

SMSSYNC = [sys.executable, "-m", "smssync"]


class Server:
    """One ``smssync serve`` subprocess and the environment its CLI shares."""

    def __init__(
        self,
        tmp: Path,
        database_url: str = "",
        workers: int = 1,
        *,
        host: str = "127.0.0.1",
        wrap: tuple[str, ...] = (),
    ) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://{host}:{self.port}"
        #: What runs ``serve`` elsewhere (``ip netns exec NAME``); the CLI runs here.
        self.wrap = wrap
        self.env = {
            **os.environ,
            "SMSSYNC_DATA_DIR": str(tmp / "data"),
            "SMSSYNC_DATABASE_URL": database_url,
            "SMSSYNC_PORT": str(self.port),
            "SMSSYNC_HOST": host,
            "SMSSYNC_WORKERS": str(workers),
            "SMSSYNC_DEFAULT_REGION": "KE",
            # serve --workers N makes its metrics folder here: one a kill -9 leaves behind
            # goes with the test's folder.
            "TMPDIR": str(tmp),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / f"server-{self.port}.log"

    def cli(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``smssync ARGS`` against the same store (``input`` on its stdin)."""
        result = subprocess.run(
            [*SMSSYNC, *args], env=self.env, capture_output=True, text=True, timeout=60, input=input
        )
        if check and result.returncode != 0:
            raise AssertionError(f"smssync {' '.join(args)} failed:\n{result.stderr}")
        return result

    def cli_json(self, *args: str) -> Any:
        """Run a CLI command with ``--json`` and parse what it prints."""
        return json.loads(self.cli(*args, "--json").stdout)

    def add_device(self, name: str, *extra: str) -> dict[str, Any]:
        """Register a device and return its credentials."""
        info: dict[str, Any] = self.cli_json("device", "add", name, *extra)
        return info

    def start(self) -> None:
        """Start the server and wait until it answers."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*self.wrap, *SMSSYNC, "serve"], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        # Generous: under pytest-xdist, a start competes with the other workers' tests. One
        # client for the polls: building one costs tens of ms of CPU (its TLS context).
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=1) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited:\n{self.log.read_text()}")
                try:
                    if client.get(self.base + "/smssync").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise AssertionError(f"server did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        """Kill the server with SIGKILL (nothing flushed, nothing closed)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        """Stop the server politely."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
