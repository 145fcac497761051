"""``serve --workers N``: uvicorn's supervisor, one listening socket shared by its workers, one
unit with its parent."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.e2e.serverproc import Server


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return sorted(found)


def listeners(port: int) -> int:
    """How many sockets listen on ``port`` (state 0A in /proc/net/tcp)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if int(local.rsplit(":", 1)[1], 16) == port and state == "0A":
            count += 1
    return count


def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def workers(parent: int) -> list[int]:
    """The worker processes of a server (spawned children; not a resource tracker)."""
    return [pid for pid in children(parent) if b"spawn_main" in _cmdline(pid)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def gone(pid: int) -> bool:
    """The process has exited: no such process, or a zombie that its new parent (the
    container's init) has not reaped yet."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return "\nState:\tZ" in status


def answers(server: Server) -> bool:
    try:
        return httpx.get(server.base + "/smssync", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_each_worker_listens_and_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    server = Server(tmp_path, workers=2)
    server.start()
    try:
        eventually(lambda: listeners(server.port) == 1)  # the supervisor's, shared
        assert server.proc is not None
        parent = server.proc.pid
        before = workers(parent)
        assert len(before) == 2
        os.kill(before[0], signal.SIGKILL)
        eventually(lambda: len(set(workers(parent)) - set(before)) == 1)
        eventually(lambda: len(workers(parent)) == 2)
        eventually(lambda: listeners(server.port) == 1)
        assert answers(server)
        assert server.proc is not None and server.proc.poll() is None
    finally:
        server.stop()
    assert listeners(server.port) == 0


def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    server = Server(tmp_path, workers=2)
    server.start()
    assert server.proc is not None
    pids = workers(server.proc.pid)
    assert len(pids) == 2
    eventually(lambda: listeners(server.port) == 1)
    server.kill()
    eventually(lambda: all(gone(pid) for pid in pids))
    # multiprocessing's resource tracker may hold the socket until it sees the pipe close.
    eventually(lambda: listeners(server.port) == 0)
    assert not answers(server)
    server.start()  # the same port again
    try:
        proc = server.proc
        assert proc is not None
        eventually(lambda: len(workers(proc.pid)) == 2 and listeners(server.port) == 1)
    finally:
        server.stop()


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    first = Server(tmp_path / "a", workers=1)
    first.start()
    try:
        second = Server(tmp_path / "b", workers=2)
        second.port = first.port
        second.env["SMSSYNC_PORT"] = str(first.port)
        result = second.cli("serve", check=False)
        assert result.returncode != 0
        assert f"cannot listen on 127.0.0.1:{first.port}" in result.stderr
    finally:
        first.stop()
