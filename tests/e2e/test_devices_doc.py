"""docs/devices.md "Try it without hardware", run as written.

The test reads the section's shell block from the page itself and feeds it, a line at a
time, to one bash (so ``export`` and ``cd`` carry over, and ``&`` backgrounds as in a
terminal). After a line that starts something in the background it waits, as a person
would, for that thing to answer; the last line is repeated until the SMS is on the server.
Only the ``pip install`` line is skipped: ``scripts/bootstrap tests`` installed the extra.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_demo import alive, port_free
from tests.ports import free_port

pytest.importorskip("serial")

DOC = Path(__file__).parents[2] / "docs" / "devices.md"


def doc_block(heading: str = "### Try it without hardware") -> list[str]:
    """Return the lines of the first ```sh block under ``heading``."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, f"no sh block under {heading}"
    return [line for line in match.group(1).splitlines() if line.strip()]


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


class Shell:
    """One bash fed line by line; everything it and its jobs print goes to one file."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.log = cwd / "shell.log"
        self.out = self.log.open("wb")
        self.proc = subprocess.Popen(
            ["bash"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.count = 0

    def run(self, line: str, timeout_s: float = 60) -> tuple[int, str]:
        """Run one line; return its exit status and what was printed meanwhile."""
        assert self.proc.stdin is not None
        self.count += 1
        start, end = f"@@start {self.count}@@", f"@@rc {self.count} "
        self.proc.stdin.write(f"echo '{start}'\n{line}\necho \"{end}$?@@\"\n".encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if (found := re.search(re.escape(end) + r"(\d+)@@", text)) is not None:
                return int(found.group(1)), text[text.index(start) + len(start) : found.start()]
            assert self.proc.poll() is None, f"bash exited:\n{text}"
            time.sleep(0.1)
        raise AssertionError(f"{line!r} did not finish:\n{self.log.read_text()}")

    def stop(self) -> list[int]:
        """TERM the whole session (bash and its jobs); return the pids it had."""
        pids = [
            int(p)
            for p in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
            .read_text()
            .split()
        ]
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(15)
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.out.close()
        return pids


def test_try_it_without_hardware_runs_as_written(tmp_path: Path) -> None:
    server_port, sim_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SMSSYNC_")},
        # The venv's smssync first, as after `. .venv/bin/activate`.
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "SMSSYNC_PORT": str(server_port),
        "SMSSYNC_SIM_PORT": str(sim_port),
    }
    lines = doc_block()
    shell = Shell(tmp_path, env)
    folder = tmp_path
    waits: list[tuple[str, Callable[[], bool]]] = [
        ("smssync serve &", lambda: answers(f"http://127.0.0.1:{server_port}/readyz")),
        ("smssync sim --phone", lambda: answers(f"http://127.0.0.1:{sim_port}/")),
        ("smssync sim modem", lambda: (folder / "ttyEMU0").exists()),
        ("smssync gateway &", lambda: True),
    ]
    try:
        for line in lines:
            command = line.split("  #")[0].strip()
            if command.startswith("pip install"):
                continue
            if moved := re.search(r"(?:^|&&\s*)cd (\S+)", command):
                folder = folder / moved.group(1)
            if command == "smssync messages":
                deadline = time.monotonic() + 60
                while "hello modem" not in (result := shell.run(line))[1]:
                    assert time.monotonic() < deadline, shell.log.read_text()
                    time.sleep(0.5)
                continue
            rc, output = shell.run(line)
            assert rc == 0, f"{line!r} failed ({rc}):\n{output}\n{shell.log.read_text()}"
            if command.endswith("&"):
                ready = [check for prefix, check in waits if command.startswith(prefix)]
                assert ready, f"the test does not know how to wait for {command!r}"
                deadline = time.monotonic() + 60
                while not ready[0]():
                    assert time.monotonic() < deadline, f"{command}:\n{shell.log.read_text()}"
                    time.sleep(0.1)
            if command.startswith("smssync gateway doctor"):
                assert "[FAIL]" not in output and "service centre: +" in output, output
        assert result[0] == 0
        assert (folder / "gateway.toml").stat().st_mode & 0o077 == 0
    finally:
        pids = shell.stop()
    # TERM stops each of them: server, network, modem and gateway.
    deadline = time.monotonic() + 15
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in pids if alive(p)] == []
    assert not (folder / "ttyEMU0").is_symlink()
    assert port_free(server_port) and port_free(sim_port)
