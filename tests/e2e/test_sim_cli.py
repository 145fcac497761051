"""``smssync sim`` and ``smssync sim modem`` as processes: quirks from the command line,
``sim phone`` reaching the emulated modem, and a clean stop on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from smssync.cli import main
from tests.e2e.test_demo import port_free
from tests.ports import free_port

pytest.importorskip("serial")

SMSSYNC = [sys.executable, "-m", "smssync"]
MODEM = "+254700000100"


def wait_for(check: object, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{what} exited:\n{log.read_text()}"
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not start:\n{log.read_text()}")


def answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return False
    return True


def doctor(tmp_path: Path, *, smsc: str = "") -> subprocess.CompletedProcess[str]:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[backend]\nkind = "at"\n[backend.at]\nport = "{tmp_path / "ttyEMU0"}"\n'
        f'registration_wait_s = 1\nsmsc = "{smsc}"\n'
        '[[sync_urls]]\nurl = "http://127.0.0.1:9/smssync"\n'
    )
    return subprocess.run(
        [*SMSSYNC, "gateway", "doctor", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_sim_modem_quirks_phone_status_and_sigterm(tmp_path: Path) -> None:
    port = free_port()
    sim_log, modem_log = tmp_path / "sim.log", tmp_path / "modem.log"
    with sim_log.open("wb") as out:
        sim = subprocess.Popen(
            [*SMSSYNC, "sim", "--port", str(port), "--phone", MODEM],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    with modem_log.open("wb") as out:
        modem_args = ["--dir", str(tmp_path), "--quirk", "smsc=", "--quirk", "no_battery"]
        # Started at once, before the network answers: it waits for it.
        modem = subprocess.Popen(
            [*SMSSYNC, "sim", "--port", str(port), "modem", "--number", MODEM, *modem_args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/"), "smssync sim", sim, sim_log)
        device = tmp_path / "ttyEMU0"
        wait_for(device.exists, "smssync sim modem", modem, modem_log)

        report = doctor(tmp_path)
        assert "[FAIL] service centre: none on the SIM" in report.stdout, report.stdout
        assert "[backend.at] smsc" in report.stdout
        assert "[ok  ] registration: registered" in report.stdout
        assert "[--  ] battery: none reported" in report.stdout  # --quirk no_battery

        changed = subprocess.run(
            [*SMSSYNC, "sim", "--port", str(port), "phone", MODEM, "--no-service", "--battery=15"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert changed.returncode == 0 and '"registered": false' in changed.stdout
        deadline = time.monotonic() + 15
        while "[FAIL] registration: not registered" not in (report := doctor(tmp_path)).stdout:
            assert time.monotonic() < deadline, report.stdout
        # Set as the hint says, the service centre check passes.
        assert (
            "[ok  ] service centre: +254722500000" in doctor(tmp_path, smsc="+254722500000").stdout
        )

        modem.send_signal(signal.SIGTERM)
        assert modem.wait(15) == 0, modem_log.read_text()
        assert not device.exists() and not device.is_symlink()
        assert "unplugged" in modem_log.read_text()
        sim.send_signal(signal.SIGTERM)
        assert sim.wait(15) == 0, sim_log.read_text()
        assert port_free(port)
    finally:
        for proc in (modem, sim):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def test_a_bad_quirk_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["sim", "modem", "--number", MODEM, "--quirk", "nope=1"])
    assert result.exit_code == 2 and "unknown quirk 'nope'" in result.output
    result = CliRunner().invoke(
        main, ["sim", "modem", "--number", MODEM, "--quirk", "capacity=lots"]
    )
    assert result.exit_code == 2 and "'lots' is not a number" in result.output
