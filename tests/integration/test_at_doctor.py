"""``gateway doctor`` against the modem emulator and fake Sync URLs."""

from __future__ import annotations

from pathlib import Path

import httpx

from smssync.backends.at import AtBackend
from smssync.gateway.config import parse_config
from smssync.gateway.doctor import probe_backend, probe_urls, render
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
