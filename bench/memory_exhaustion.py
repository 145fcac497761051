"""The server's memory under issue 14's unauthenticated requests: RSS before and after.

Starts ``smssync serve`` (SQLite, one device with a secret) and reads its VmRSS from
``/proc/PID/status`` at rest, after 30 requests with distinct 10 MB Bearer tokens to the API,
and after 150 incoming-SMS posts with distinct 1 MB secrets to the shared Sync URL. Linux only.

    .venv/bin/python bench/memory_exhaustion.py [--src DIR]

``--src`` runs another tree's ``src`` (say, an older commit unpacked with ``git archive``) to
compare; the default is this tree's.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mib(pid: int) -> float:
    """Return the resident set size of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def send_raw(port: int, request: bytes) -> bytes:
    """Send one request on a new connection and return the status line (or the error)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(request)
        except OSError as exc:  # refused early and closed while we were still sending
            return f"send: {exc}".encode()
        try:
            return sock.recv(4096).split(b"\r\n", 1)[0]
        except OSError as exc:
            return f"recv: {exc}".encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=None, help="src folder to run instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {
            **os.environ,
            "SMSSYNC_DATA_DIR": str(Path(tmp) / "data"),
            "SMSSYNC_PORT": str(port),
        }
        if args.src is not None:
            env["PYTHONPATH"] = str(args.src.resolve())
        cli = [sys.executable, "-m", "smssync"]
        subprocess.run(
            [*cli, "device", "add", "p1", "--secret", "right", "--json"],
            env=env,
            check=True,
            capture_output=True,
        )
        log = (Path(tmp) / "serve.log").open("wb")
        server = subprocess.Popen([*cli, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    httpx.get(base + "/smssync", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            figures = {"at rest": rss_mib(server.pid)}
            statuses: dict[str, set[str]] = {"tokens": set(), "secrets": set()}
            for i in range(30):
                token = (f"{i:08d}" + "a" * 10_000_000).encode()
                head = b"GET /api/v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                answer = send_raw(port, head + token + b"\r\n\r\n")
                statuses["tokens"].add(answer.decode("latin-1"))
            figures["after 30 x 10 MB Bearer tokens"] = rss_mib(server.pid)
            for i in range(150):
                body = f"from=%2B254700000001&message=hi&secret={i:08d}{'s' * 1_000_000}"
                reply = httpx.post(
                    base + "/smssync",
                    content=body,
                    headers={"content-type": "application/x-www-form-urlencoded"},
                    timeout=30,
                )
                statuses["secrets"].add(str(reply.status_code))
            figures["after 150 x 1 MB secrets"] = rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(10)
    print(
        json.dumps(
            {"rss_mib": figures, "answers": {k: sorted(v) for k, v in statuses.items()}}, indent=2
        )
    )


if __name__ == "__main__":
    main()
