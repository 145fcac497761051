"""``smssync demo`` as a person runs it: its printed commands, two at once, TERM and Ctrl-C."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.ports import free_port

#: The venv's own script, as ``scripts/bootstrap`` leaves it: not on PATH.
SCRIPT = Path(sys.executable).parent / "smssync"
#: A PATH without the venv, as in a fresh terminal after bootstrap.
BARE_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("SMSSYNC_")},
    "PATH": "/usr/bin:/bin",
}


class Demo:
    """One ``smssync demo`` process in its own folder, on its own ports."""

    def __init__(self, folder: Path, demo_dir: Path | None = None) -> None:
        self.folder = folder
        self.demo_dir = demo_dir or folder / "demo"
        self.server_port, self.sim_port = free_port(), free_port()
        folder.mkdir()
        self.out = folder / "demo.out"
        with self.out.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    str(SCRIPT),
                    "demo",
                    "--dir",
                    str(self.demo_dir),
                    "--server-port",
                    str(self.server_port),
                    "--sim-port",
                    str(self.sim_port),
                ],
                cwd=folder,
                env=BARE_ENV,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def printed(self, timeout_s: float = 90) -> str:
        """Wait for the instructions; return them."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.out.read_text()
            if "stops everything" in text:
                return text
            assert self.proc.poll() is None, f"demo exited:\n{text}"
            time.sleep(0.2)
        raise AssertionError(f"demo did not start:\n{self.out.read_text()}")

    def command(self, pattern: str) -> str:
        """Return the printed command line matching ``pattern``, comment stripped."""
        for line in self.printed().splitlines():
            line = line.split("  # ")[0].strip()
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no printed command matches {pattern!r}")

    def descendants(self) -> list[int]:
        """Return the pids of every process under the demo (from /proc)."""
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except FileNotFoundError:
                continue
            found += [int(c) for c in children]
            todo += [int(c) for c in children]
        return found

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def run_printed(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a printed command through a shell, from another folder, without the venv on PATH."""
    return subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=BARE_ENV, capture_output=True, text=True, timeout=60
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but not yet reaped by its new parent.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def stop_and_check(demo: Demo, signum: int) -> None:
    children = demo.descendants()
    # serve, sim and gateway (serve's workers, if any, come on top).
    assert len(children) >= 3, children
    demo.proc.send_signal(signum)
    assert demo.proc.wait(30) == 0, demo.out.read_text()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in children if alive(p)] == []
    assert port_free(demo.server_port) and port_free(demo.sim_port)


def test_two_demos_printed_commands_and_clean_stops(tmp_path: Path) -> None:
    first, second = Demo(tmp_path / "a"), Demo(tmp_path / "b")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    try:
        for demo in (first, second):
            text = demo.printed()
            # Not on PATH: the printed commands name the script itself.
            assert f"{shlex.quote(str(SCRIPT))} sim --port {demo.sim_port} sms" in text
            config = (demo.demo_dir / "gateway.toml").read_text()
            assert f"127.0.0.1:{demo.server_port}/" in config
            assert f"127.0.0.1:{demo.sim_port}" in config
        # Each demo's printed commands, run as printed, reach its own server.
        for demo, words in ((first, "Hello from a"), (second, "Hello from b")):
            sms = demo.command(r" sms --from ").replace("Hello server", words)
            assert run_printed(sms, elsewhere).returncode == 0
        for demo, words, other in (
            (first, "Hello from a", "Hello from b"),
            (second, "Hello from b", "Hello from a"),
        ):
            messages = demo.command(r" messages$")
            deadline = time.monotonic() + 60
            while True:
                listed = run_printed(messages, elsewhere)
                assert listed.returncode == 0, listed.stderr
                if words in listed.stdout or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert words in listed.stdout and other not in listed.stdout
        stop_and_check(first, signal.SIGTERM)
        stop_and_check(second, signal.SIGINT)
    finally:
        first.kill()
        second.kill()


def test_a_killed_demo_takes_its_children_and_a_rerun_on_other_ports_works(tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    demo = Demo(tmp_path / "one", kept)
    try:
        demo.printed()
        # Even killed outright, the demo takes its children with it (Linux: PDEATHSIG).
        children = demo.descendants()
        demo.kill()
        deadline = time.monotonic() + 15
        while any(alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in children if alive(p)] == []
        assert port_free(demo.server_port) and port_free(demo.sim_port)
    finally:
        demo.kill()
    # The same demo folder on other ports: the saved device is reused, the config rewritten.
    rerun = Demo(tmp_path / "two", kept)
    try:
        rerun.printed()
        config = (kept / "gateway.toml").read_text()
        assert f"127.0.0.1:{rerun.server_port}/" in config
        assert f"127.0.0.1:{rerun.sim_port}" in config
        assert run_printed(rerun.command(r" sms --from "), tmp_path).returncode == 0
        messages = rerun.command(r" messages$")
        deadline = time.monotonic() + 60
        while "Hello server" not in run_printed(messages, tmp_path).stdout:
            assert time.monotonic() < deadline, (kept / "gateway.log").read_text()
            time.sleep(0.5)
        stop_and_check(rerun, signal.SIGTERM)
    finally:
        rerun.kill()
