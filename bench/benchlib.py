"""Shared helpers for the benchmarks: server processes, databases, tools, tables.

Everything runs on 127.0.0.1 and cleans up after itself (processes, temp folders, databases).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SMSSYNC = (
    [str(BIN / "smssync")] if (BIN / "smssync").exists() else [sys.executable, "-m", "smssync"]
)

PGHOST = os.environ.get("PGHOST", "127.0.0.1")
PGPORT = os.environ.get("PGPORT", "5432")
PGUSER = os.environ.get("PGUSER", "postgres")


def log(text: str) -> None:
    """Print a progress line to stderr (the tables go to stdout)."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_tools(tools: dict[str, str]) -> None:
    """Make sure each command exists; apt-get install its package when missing and root."""
    missing = {cmd: pkg for cmd, pkg in tools.items() if shutil.which(cmd) is None}
    if not missing:
        return
    packages = sorted(set(missing.values()))
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log(f"installing {' '.join(packages)} with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env)
    still = [cmd for cmd in missing if shutil.which(cmd) is None]
    if still:
        raise SystemExit(
            f"missing: {', '.join(still)}; install {' '.join(packages)} (or run as root)"
        )


# --- PostgreSQL -----------------------------------------------------------------------------


def pg_conninfo(dbname: str = "postgres") -> str:
    """Return a libpq connection string for the local PostgreSQL."""
    return f"host={PGHOST} port={PGPORT} user={PGUSER} dbname={dbname}"


def pg_url(dbname: str) -> str:
    """Return the URL smssync takes for a database on the local PostgreSQL."""
    return f"postgresql://{PGUSER}@{PGHOST}:{PGPORT}/{dbname}"


@contextlib.contextmanager
def pg_database(prefix: str) -> Iterator[str]:
    """Create a scratch database, yield its smssync URL, drop it afterwards."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(5)}"
    with psycopg.connect(pg_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url(name)
    finally:
        with psycopg.connect(pg_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- processes ------------------------------------------------------------------------------


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a process group started by us: SIGTERM, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def wait_http(url: str, proc: subprocess.Popen[bytes], logfile: Path, timeout: float = 60) -> None:
    """Wait until ``url`` answers a GET with 200, or fail with the process's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited\n{tail(logfile)}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}: server did not answer within {timeout:.0f}s\n{tail(logfile)}")


def tail(path: Path, lines: int = 40) -> str:
    """Return the last lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


#: What uvicorn logs when a worker's startup is complete.
READY = "Application startup complete."


class SmssyncServer:
    """One ``smssync serve`` on a fresh store (SQLite in a folder, or a PostgreSQL URL)."""

    def __init__(self, workdir: Path, database_url: str = "", workers: int = 2) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.workers = workers
        self.env = {
            **os.environ,
            "SMSSYNC_DATA_DIR": str(workdir / "data"),
            "SMSSYNC_DATABASE_URL": database_url,
            "SMSSYNC_HOST": "127.0.0.1",
            "SMSSYNC_PORT": str(self.port),
            "SMSSYNC_DEFAULT_REGION": "KE",
        }
        self.logfile = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def store_url(self) -> str:
        """Return the URL ``open_store`` takes for this server's store."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.workdir / 'data' / 'smssync.db'}"

    def cli(self, *args: str) -> str:
        """Run ``smssync ARGS`` on the same store and return its stdout."""
        result = subprocess.run(
            [*SMSSYNC, *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(f"smssync {args[0]} failed:\n{result.stderr}")
        return result.stdout

    def add_device(self, name: str, secret: str) -> dict[str, Any]:
        """Register a device with ``smssync device add --json``; return what it prints."""
        info: dict[str, Any] = json.loads(
            self.cli("device", "add", name, "--secret", secret, "--json")
        )
        return info

    def start(self) -> None:
        """Start ``smssync serve --workers N`` and wait until it answers."""
        with self.logfile.open("ab") as out:
            self.proc = subprocess.Popen(
                [*SMSSYNC, "serve", "--port", str(self.port), "--workers", str(self.workers)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_http(self.base + "/smssync", self.proc, self.logfile)
        # Every worker listens on a socket of its own once its startup is complete: load
        # sent before that would all land on the first one (keep-alive keeps it there).
        deadline = time.monotonic() + 60
        while self.logfile.read_text(errors="replace").count(READY) < self.workers:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"not every worker started\n{tail(self.logfile)}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server."""
        stop_process(self.proc)
        self.proc = None

    def log_problems(self) -> list[str]:
        """Return log lines that look like errors (tracebacks, ERROR, 5xx)."""
        text = self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
        hits = [
            line
            for line in text.splitlines()
            if "Traceback" in line or "ERROR" in line or "Exception" in line
        ]
        return hits


# --- numbers and tables ---------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (0-100) by the nearest-rank method."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    """Return the median, NaN when empty."""
    return statistics.median(values) if values else float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render a plain-text table, numbers right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        out = []
        for i, cell in enumerate(row):
            numeric = cell.replace(".", "", 1).replace("×", "").replace(",", "").isdigit()
            out.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def machine_line() -> str:
    """Describe the machine briefly (no paths)."""
    return f"cpus={os.cpu_count()} python={sys.version.split()[0]} platform={sys.platform}"
