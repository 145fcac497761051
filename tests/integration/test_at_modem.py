"""The AT backend against the modem emulator, through a real pseudo-terminal and pyserial.

Real reader thread, real timeouts, real serial device node; the emulator is attached to an
in-process SimNetwork, so what the backend sends shows up in the network's outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from smssync.backends.at import AtBackend, AtOptions
from smssync.backends.base import (
    DELIVERED_NOT,
    DELIVERED_OK,
    BackendEvent,
    DeliveryReport,
    InboundSms,
    SendResult,
)
from smssync.errors import BackendError
from smssync.sim.backend import SimBackend
from smssync.sim.modem import ModemEmulator
from smssync.sim.modem_state import Quirks
from smssync.sim.network import Knobs, SimNetwork

pytest.importorskip("serial")

MODEM = "+254700000001"
PEER = "+254700000002"
LONG = "The quick brown fox jumps over the lazy dog. " * 5  # 225 GSM-7 characters


def fast(path: Path, **changes: object) -> AtOptions:
    """Options with short waits, so failing paths fail fast."""
    values: dict[str, object] = {
        "port": str(path),
        "registration_wait_s": 3.0,
        "wake_timeout_s": 0.5,
        "command_timeout_s": 3.0,
        "send_timeout_s": 5.0,
        "retry_delay_s": 0.05,
        "reconnect_max_s": 0.2,
    }
    values.update(changes)
    return AtOptions(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def modem(
    tmp_path: Path,
    quirks: Quirks | None = None,
    knobs: Knobs | None = None,
    **options: object,
) -> AsyncIterator[tuple[SimNetwork, ModemEmulator, AtBackend]]:
    """An emulator on a pty attached to a network, and an opened AtBackend on its port."""
    net = SimNetwork(knobs, seed=1)
    emulator = ModemEmulator(SimBackend(net, MODEM, poll_s=0.05), tmp_path, quirks)
    await emulator.start()
    backend = AtBackend(fast(emulator.path, **options))
    try:
        await asyncio.wait_for(backend.open(), 15)
        yield net, emulator, backend
    finally:
        await backend.close()
        await emulator.stop()


async def next_events(backend: AtBackend, count: int, ack: bool = True) -> list[BackendEvent]:
    """Collect ``count`` events (acknowledging each, as the gateway does)."""
    found: list[BackendEvent] = []
    stream = backend.events()
    try:
        while len(found) < count:
            event = await asyncio.wait_for(anext(stream), 10)
            found.append(event)
            if ack:
                await backend.acknowledge(event)
    finally:
        await stream.aclose()
    return found


async def until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait until ``check()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_start_up_sequence_and_a_long_send_with_reports(tmp_path: Path) -> None:
    async with modem(tmp_path) as (net, emulator, backend):
        assert emulator.commands[:4] == ["AT", "ATE0", "AT+CMEE=1", "AT+CPIN?"]
        for expected in ("AT+CMGF=0", "AT+CNMI=2,1,0,2,0", "AT+CMGL=4"):
            assert expected in emulator.commands
        result = await backend.send(PEER, LONG, request_report=True)
        assert result.ok and result.reference
        assert "MR [1, 2]" in result.detail
        assert [(s.to_addr, s.content) for s in net.outbox] == [(PEER, LONG)]
        [report] = await next_events(backend, 1)
        assert isinstance(report, DeliveryReport)
        assert (report.reference, report.delivered_code) == (result.reference, DELIVERED_OK)
        # Both part reports were read; the settling one deleted on acknowledgement.
        await until(lambda: not emulator.state.memories["SM"])


async def test_ucs2_send_and_a_failed_report(tmp_path: Path) -> None:
    async with modem(tmp_path, knobs=Knobs(report_failure=1.0)) as (net, _, backend):
        text = "Привет, мир! " * 7  # 91 Cyrillic-mixed characters: two UCS-2 parts
        result = await backend.send(PEER, text, request_report=True)
        assert result.ok
        assert net.outbox[0].content == text
        [report] = await next_events(backend, 1)
        assert isinstance(report, DeliveryReport) and report.delivered_code == DELIVERED_NOT


@pytest.mark.parametrize(
    "quirks",
    [Quirks(), Quirks(concat_16bit=True, reverse_parts=True), Quirks(echo=False)],
    ids=["8bit-ref", "16bit-ref-out-of-order", "echo-off"],
)
async def test_receive_joins_parts_and_deletes_only_after_ack(
    tmp_path: Path, quirks: Quirks
) -> None:
    async with modem(tmp_path, quirks) as (net, emulator, backend):
        await net.deliver("+254711000001", MODEM, LONG)
        [sms] = await next_events(backend, 1, ack=False)
        assert isinstance(sms, InboundSms)
        assert (sms.from_addr, sms.content) == ("+254711000001", LONG)
        assert sms.sent_at is not None and sms.sent_at.utcoffset() is not None
        assert len(emulator.state.memories["SM"]) == 2, "nothing is deleted before the ack"
        assert not any(c.startswith("AT+CMGD") for c in emulator.commands)
        await backend.acknowledge(sms)
        assert emulator.state.memories["SM"] == {}


async def test_a_restart_rereads_what_was_not_acknowledged(tmp_path: Path) -> None:
    async with modem(tmp_path) as (net, emulator, backend):
        await net.deliver("+254711000001", MODEM, "kept until stored")
        [first] = await next_events(backend, 1, ack=False)
        await backend.close()
        again = AtBackend(fast(emulator.path))
        await again.open()
        try:
            [second] = await next_events(again, 1)
        finally:
            await again.close()
        assert isinstance(first, InboundSms) and isinstance(second, InboundSms)
        assert second.natural_key == first.natural_key
        assert emulator.state.memories["SM"] == {}


async def test_urcs_in_the_middle_of_replies_and_split_writes(tmp_path: Path) -> None:
    quirks = Quirks(urc_mid_reply=True, rssi_flood=True, split_writes=True)
    async with modem(tmp_path, quirks) as (net, emulator, backend):
        emulator.state.rssi = 10
        stream = backend.events()
        # Arrives while the modem is busy answering AT+CSQ: +CMTI lands inside that reply.
        emulator._busy = True
        await net.deliver("+254711000001", MODEM, "mid reply")
        emulator._busy = False
        status = await backend.status()
        assert status.signal_dbm == -93 and status.signal_level == 2
        sms = await asyncio.wait_for(anext(stream), 10)
        await stream.aclose()
        assert isinstance(sms, InboundSms) and sms.content == "mid reply"


async def test_pin_is_entered_once_and_a_wrong_one_is_not_retried(tmp_path: Path) -> None:
    async with modem(tmp_path, Quirks(pin="1234"), pin="1234") as (_, emulator, backend):
        assert emulator.commands.count('AT+CPIN="1234"') == 1
        assert (await backend.send(PEER, "after pin", False)).ok
    with pytest.raises(BackendError, match="rejected the PIN"):
        async with modem(tmp_path, Quirks(pin="1234"), pin="9999"):
            pass
    with pytest.raises(BackendError, match="needs a PIN"):
        async with modem(tmp_path, Quirks(pin="1234")):
            pass


async def test_slow_and_lte_only_registration(tmp_path: Path) -> None:
    async with modem(tmp_path, Quirks(registration_delay_s=0.4)) as (_, emulator, backend):
        assert emulator.commands.count("AT+CREG?") > 1
        assert (await backend.status()).registered
    async with modem(tmp_path, Quirks(lte_only=True)) as (_, _, backend):
        status = await backend.status()
        assert status.registered and status.signal_dbm == -91  # RSRP 50 - 141


async def test_battery_where_there_is_one_and_none_on_a_stick(tmp_path: Path) -> None:
    async with modem(tmp_path) as (_, _, backend):
        assert backend.capabilities.battery
        assert (await backend.status()).battery_percent == 80
    async with modem(tmp_path, Quirks(no_battery=True)) as (_, _, backend):
        assert not backend.capabilities.battery
        assert (await backend.status()).battery_percent is None


async def test_send_errors_map_to_smssync_codes(tmp_path: Path) -> None:
    quirks = Quirks(send_errors=[304, 331, 500, 314])
    async with modem(tmp_path, quirks) as (net, _, backend):
        assert (await backend.send(PEER, "a", False)).sent_code == 3
        assert (await backend.send(PEER, "b", False)).sent_code == 4
        assert (await backend.send(PEER, "c", False)).sent_code == 1
        # 314 (SIM busy) is retried with backoff, then the send goes through.
        assert (await backend.send(PEER, "d", False)).ok
        assert [s.content for s in net.outbox] == ["d"]
        net.phone(MODEM).set_status(registered=False)
        assert (await backend.send(PEER, "e", False)).sent_code == 4


async def test_reports_inline_when_the_modem_refuses_ds2(tmp_path: Path) -> None:
    async with modem(tmp_path, Quirks(no_ds2=True)) as (_, emulator, backend):
        assert "AT+CNMI=2,1,0,1,0" in emulator.commands
        result = await backend.send(PEER, "report inline", True)
        [report] = await next_events(backend, 1)
        assert isinstance(report, DeliveryReport) and report.reference == result.reference


async def test_reports_in_the_sr_memory(tmp_path: Path) -> None:
    async with modem(tmp_path, Quirks(report_memory="SR")) as (_, emulator, backend):
        result = await backend.send(PEER, "report in SR", True)
        [report] = await next_events(backend, 1)
        assert isinstance(report, DeliveryReport) and report.reference == result.reference
        assert emulator.state.memories["SR"] == {}


async def test_reconnects_when_the_device_node_comes_back(tmp_path: Path) -> None:
    async with modem(tmp_path) as (net, emulator, backend):
        stream = backend.events()
        pending = asyncio.ensure_future(anext(stream))
        emulator.unplug()
        await until(lambda: not backend._connected.is_set())
        emulator.plug()
        await until(lambda: backend._connected.is_set() and emulator.commands[-1] == "AT+CMGL=4")
        assert (await backend.send(PEER, "after replug", False)).ok
        await net.deliver("+254711000001", MODEM, "after replug")
        sms = await asyncio.wait_for(pending, 10)
        await stream.aclose()
        assert isinstance(sms, InboundSms) and sms.content == "after replug"
        assert net.outbox[-1].content == "after replug"


async def test_a_reboot_banner_reruns_the_start_up(tmp_path: Path) -> None:
    async with modem(tmp_path) as (net, emulator, backend):
        stream = backend.events()
        pending = asyncio.ensure_future(anext(stream))
        starts = emulator.commands.count("ATE0")
        emulator.reboot()
        await until(lambda: emulator.commands.count("AT+CMGL=4") == 2)
        assert emulator.commands.count("ATE0") == starts + 1
        await net.deliver("+254711000001", MODEM, "after reboot")
        sms = await asyncio.wait_for(pending, 10)
        await stream.aclose()
        assert isinstance(sms, InboundSms) and sms.content == "after reboot"


class SlowResult(SimBackend):
    """A radio whose send result comes back after the delivery report (a remote network)."""

    async def send(self, to_addr: str, content: str, request_report: bool) -> SendResult:
        result = await super().send(to_addr, content, request_report)
        await asyncio.sleep(0.3)
        return result


@pytest.mark.parametrize("inline", [False, True])
async def test_reports_at_0_s_for_parallel_sends_are_all_delivered(
    tmp_path: Path, inline: bool
) -> None:
    # Inline (+CDS with its PDU) inside the +CMGS reply, the backend reads the report before
    # it has parsed the reference it belongs to: it must wait as an orphan, not be dropped.
    net = SimNetwork(Knobs(report_delay_s=0.0), seed=1)
    quirks = Quirks(urc_mid_reply=inline, no_ds2=inline)
    emulator = ModemEmulator(SlowResult(net, MODEM, poll_s=0.02), tmp_path, quirks)
    await emulator.start()
    backend = AtBackend(fast(emulator.path))
    try:
        await asyncio.wait_for(backend.open(), 15)
        peers = [f"+25470000010{i}" for i in range(6)]
        # Reading events while sending, as the gateway does.
        collecting = asyncio.create_task(next_events(backend, len(peers)))
        sent = await asyncio.gather(*(backend.send(p, "hello", True) for p in peers))
        assert all(r.ok and r.reference for r in sent)
        reports = await collecting
        assert all(isinstance(r, DeliveryReport) for r in reports)
        assert sorted(r.reference for r in reports if isinstance(r, DeliveryReport)) == sorted(
            r.reference or "" for r in sent
        )
    finally:
        await backend.close()
        await emulator.stop()


async def test_an_sms_whose_notice_was_lost_is_found_by_the_sweep_once(tmp_path: Path) -> None:
    quirks = Quirks(drop_cmti=1)
    async with modem(tmp_path, quirks, sweep_interval_s=0.1) as (net, emulator, backend):
        found: list[BackendEvent] = []

        async def read() -> None:
            async for event in backend.events():
                found.append(event)

        reader = asyncio.create_task(read())
        try:
            await net.deliver("+254711000001", MODEM, "no notice for me")
            await net.deliver("+254711000002", MODEM, "announced")
            await until(lambda: len(found) >= 2, 10)
            # Not acknowledged yet, so still on the SIM: later sweeps list them again, and
            # they must not come out twice.
            sweeps = emulator.commands.count("AT+CMGL=4")
            await until(lambda: emulator.commands.count("AT+CMGL=4") >= sweeps + 3, 10)
            for event in found:
                await backend.acknowledge(event)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        texts = sorted(e.content for e in found if isinstance(e, InboundSms))
        assert texts == ["announced", "no notice for me"]
        assert len(found) == 2
        assert emulator.state.memories["SM"] == {}
