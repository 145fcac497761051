"""The Gammu backend against libGammu's dummy driver (spec §8.5): adapter only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from smssync.backends.base import InboundSms
from smssync.backends.gammu import GammuBackend, GammuOptions

gammu = pytest.importorskip("gammu")
pytestmark = pytest.mark.gammu


def gammurc(tmp_path: Path) -> Path:
    device = tmp_path / "dummy"
    device.mkdir()
    rc = tmp_path / "gammurc"
    rc.write_text(f"[gammu]\nmodel = dummy\nconnection = none\ndevice = {device}\n")
    return rc


async def test_status_send_receive_and_delete_after_ack(tmp_path: Path) -> None:
    rc = gammurc(tmp_path)
    backend = GammuBackend(GammuOptions(rc, poll_interval_s=0.05))
    await backend.open()
    try:
        status = await backend.status()
        assert (status.battery_percent, status.registered, status.signal_level) == (100, True, 2)
        result = await backend.send("+254700000002", "hello " * 40, request_report=True)
        assert result.ok and result.reference and "2 part(s)" in result.detail
        assert (await backend.send("+254700000002", "Привет", False)).ok
        # A second StateMachine on the same directory plays the network.
        other = gammu.StateMachine()
        other.ReadConfig(0, Filename=str(rc))
        other.Init()
        other.AddSMS(
            {
                "Folder": 1,
                "State": "UnRead",
                "Number": "+254711000001",
                "Text": "from dummy",
                "SMSC": {"Location": 1},
            }
        )
        stream = backend.events()
        sms = await asyncio.wait_for(anext(stream), 10)
        assert isinstance(sms, InboundSms)
        assert (sms.from_addr, sms.content) == ("+254711000001", "from dummy")
        assert sms.handle == "1:10001"
        await backend.acknowledge(sms)
        await stream.aclose()
        with pytest.raises(gammu.ERR_EMPTY):
            other.GetNextSMS(Start=True, Folder=0)
    finally:
        await backend.close()
