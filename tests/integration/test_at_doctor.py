"""``gateway doctor`` against the modem emulator and fake Sync URLs."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from smssync.backends.at import AtBackend
from smssync.gateway.config import parse_config
from smssync.gateway.doctor import Check, probe_backend, probe_urls, render
from smssync.sim.backend import SimBackend
from smssync.sim.modem import ModemEmulator
from smssync.sim.modem_state import Quirks
from smssync.sim.network import SimNetwork
from tests.integration.test_at_modem import fast

CONFIG = """
[[sync_urls]]
title = "good"
url = "http://good.test/s"
secret = "s"
[[sync_urls]]
title = "wrong-secret"
url = "http://bad.test/s"
secret = "nope"
[[sync_urls]]
title = "down"
url = "http://down.test/s"
"""


def server(request: httpx.Request) -> httpx.Response:
    if request.url.host == "down.test":
        raise httpx.ConnectError("connection refused")
    ok = request.url.host == "good.test"
    body = b'{"payload":{"success":%s,"error":null}}' % (b"true" if ok else b"false")
    return httpx.Response(200 if ok else 403, content=body)


async def test_doctor_reports_device_and_urls_with_hints(tmp_path: Path) -> None:
    emulator = ModemEmulator(
        SimBackend(SimNetwork(), "+254700000001"), tmp_path, Quirks(no_battery=True)
    )
    await emulator.start()
    try:
        checks = await probe_backend("at", AtBackend(fast(emulator.path)))
    finally:
        await emulator.stop()
    checks += await probe_urls(parse_config(CONFIG), httpx.MockTransport(server))
    by_name = {c.name: c for c in checks}
    assert by_name["device"].ok and by_name["registration"].ok and by_name["signal"].ok
    assert by_name["battery"].ok is None
    assert by_name["good: secret"].ok
    assert by_name["wrong-secret: reachable"].ok and not by_name["wrong-secret: secret"].ok
    assert not by_name["down: reachable"].ok
    text = render(checks)
    assert "hint: the secret" in text and "hint: check the URL" in text


async def test_doctor_explains_a_missing_modem(tmp_path: Path) -> None:
    [check] = await probe_backend("at", AtBackend(fast(tmp_path / "ttyUSB-gone")))
    assert not check.ok and "dialout" in check.hint


@contextlib.asynccontextmanager
async def emulated(tmp_path: Path, quirks: Quirks) -> AsyncIterator[ModemEmulator]:
    emulator = ModemEmulator(SimBackend(SimNetwork(), "+254700000001"), tmp_path, quirks)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.stop()


def named(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


async def test_a_sim_that_needs_a_pin_says_to_set_it(tmp_path: Path) -> None:
    async with emulated(tmp_path, Quirks(pin="1234")) as emulator:
        checks = named(await probe_backend("at", AtBackend(fast(emulator.path))))
    assert checks["device"].ok and checks["SIM"].ok is False
    assert "[backend.at] pin" in checks["SIM"].hint and "wrong" not in checks["SIM"].hint
    assert not any(c.startswith('AT+CPIN="') for c in emulator.commands)


async def test_a_wrong_pin_is_tried_once_and_named_as_wrong(tmp_path: Path) -> None:
    async with emulated(tmp_path, Quirks(pin="1234")) as emulator:
        checks = named(await probe_backend("at", AtBackend(fast(emulator.path, pin="9999"))))
    assert checks["SIM"].ok is False and "is wrong" in checks["SIM"].hint
    assert "3 wrong PINs" in checks["SIM"].hint
    assert emulator.commands.count('AT+CPIN="9999"') == 1
    assert "hint: the PIN in [backend.at] pin is wrong" in render(list(checks.values()))


async def test_no_service_centre_fails_and_names_the_smsc_setting(tmp_path: Path) -> None:
    async with emulated(tmp_path, Quirks(smsc="")) as emulator:
        checks = named(await probe_backend("at", AtBackend(fast(emulator.path))))
        assert checks["service centre"].ok is False
        assert "[backend.at] smsc" in checks["service centre"].hint
        # Set as the hint says, the service centre is written to the SIM and the check passes.
        configured = AtBackend(fast(emulator.path, smsc="+254722500000"))
        fixed = named(await probe_backend("at", configured))
    assert fixed["service centre"].ok and fixed["service centre"].detail == "+254722500000"


async def test_missing_pyserial_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes ``import serial`` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "serial", None)
    async with emulated(tmp_path, Quirks()) as emulator:
        [check] = await probe_backend("at", AtBackend(fast(emulator.path)))
    assert check.name == "driver" and check.ok is False
    assert "pyserial is not installed" in check.detail
    assert "smssync[serial]" in check.hint and "pip install -e '.[serial]'" in check.hint


def test_gateway_doctor_and_gateway_without_pyserial_print_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from smssync.cli import main

    monkeypatch.setitem(sys.modules, "serial", None)
    # `smssync gateway` configures logging onto CliRunner's stream: undo it afterwards.
    monkeypatch.setattr(logging.root, "handlers", list(logging.root.handlers))
    monkeypatch.setattr(logging.root, "level", logging.root.level)
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[backend]\nkind = "at"\n[backend.at]\nport = "/dev/ttyUSB-none"\n'
        '[[sync_urls]]\nurl = "http://127.0.0.1:9/smssync"\n'
    )
    runner = CliRunner()
    doctor = runner.invoke(main, ["gateway", "doctor", "--config", str(config)])
    assert doctor.exit_code == 1, doctor.output
    assert "[FAIL] driver: pyserial is not installed" in doctor.output
    assert "pip install -e '.[serial]'" in doctor.output and "Traceback" not in doctor.output
    run = runner.invoke(main, ["gateway", "--config", str(config)])
    assert run.exit_code == 1 and "Traceback" not in run.output
    assert "pyserial is not installed" in run.output and "smssync[serial]" in run.output
